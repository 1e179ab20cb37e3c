import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../../src/index.js';
import { dotenvValues, parseDotenv } from '../../src/core/config/dotenv.js';
import { tempDir } from '../helpers/cli.js';

let root = '';
afterEach(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = '';
});

const values = (text: string, environ: Record<string, string> = {}) => dotenvValues(parseDotenv(text), environ);

// Statements in the styles real .env files use, with the value python-dotenv 1.x gives each one.
const CASES: [string, Record<string, string>][] = [
  ['export KEY=abc#def', { KEY: 'abc#def' }],
  ['KEY=abc #comment', { KEY: 'abc' }],
  ['KEY=abc\t# tab comment', { KEY: 'abc' }],
  ["KEY='single # quoted'", { KEY: 'single # quoted' }],
  ['KEY="double # quoted" # trailing', { KEY: 'double # quoted' }],
  [String.raw`KEY="say \"hi\"\n\tend\\"`, { KEY: 'say "hi"\n\tend\\' }],
  [String.raw`KEY='it\'s \n raw'`, { KEY: "it's \\n raw" }],
  ['KEY=  # only a comment', { KEY: '# only a comment' }],
  ['KEY=#starts-with-hash', { KEY: '#starts-with-hash' }],
  ['KEY=', { KEY: '' }],
  ['  export   KEY = spaced value   ', { KEY: 'spaced value' }],
  ["'quoted key'=qk", { 'quoted key': 'qk' }],
  ['KEY="multi\nline"', { KEY: 'multi\nline' }],
  ['BARE_KEY_WITHOUT_VALUE', {}],
  ['this is garbage\nAFTER=1', { AFTER: '1' }],
  ['KEY="a"trailing\nAFTER=2', { AFTER: '2' }],
  ['KEY=1\nKEY=2', { KEY: '2' }],
  ['\ufeffKEY=bom', { '\ufeffKEY': 'bom' }],
  ['A=1\r\nB=2\r\n', { A: '1', B: '2' }],
  ['KEY=€uro \\ back', { KEY: '€uro \\ back' }],
  ['KEY=nbsp\u00a0#comment', { KEY: 'nbsp' }],
  ['A=x\nB=${A}-${MISSING:-dflt}-${MISSING}-end', { A: 'x', B: 'x-dflt--end' }],
  ['PRESET=from-file\nC=${PRESET}', { PRESET: 'from-file', C: 'from-file' }],
  ["A=x\nB='${A}'", { A: 'x', B: 'x' }],
];

describe('.env parsed as python-dotenv parses it', () => {
  it.each(CASES)('%j', (text, expected) => {
    expect(values(text)).toEqual(expected);
  });

  it('the environment wins, also inside ${VAR} (load_dotenv(override=False))', () => {
    expect(values('HOME_DIR=${FROM_ENV}/x\nFROM_ENV=dotenv', { FROM_ENV: '/env' })).toEqual({ HOME_DIR: '/env/x' });
  });

  it('reports the lines it skips', () => {
    expect(parseDotenv('A=1\nthis is garbage\nB=2\n').errorLines).toEqual([2]);
  });

  // The real python-dotenv (when the local Python has it) must agree with us on every case at once.
  const hasDotenv = spawnSync('python3', ['-c', 'import dotenv'], { stdio: 'ignore' }).status === 0;
  it.skipIf(!hasDotenv)('agrees with the real python-dotenv on every case', () => {
    root = tempDir();
    const cases = CASES;
    const files = cases.map(([t], i) => {
      const f = path.join(root, `case${i}.env`);
      fs.writeFileSync(f, t);
      return f;
    });
    const environ: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', FROM_ENV: '/env', PRESET: 'from-env' };
    // One fresh environment per file, as each .env is loaded by its own process.
    const script = [
      'import json, os, sys',
      'from dotenv import load_dotenv',
      'base = dict(os.environ)',
      'out = []',
      'for f in sys.argv[1:]:',
      '    os.environ.clear(); os.environ.update(base)',
      '    load_dotenv(f, override=False)',
      '    out.append({k: v for k, v in os.environ.items() if k not in base})',
      'print(json.dumps(out))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', script, ...files], { env: environ, encoding: 'utf8' });
    expect(r.stderr.replace(/.*could not parse statement.*\n?/g, '')).toBe('');
    const theirs = JSON.parse(r.stdout) as Record<string, string>[];
    // Python may add start-up variables of its own to os.environ; only the keys the file names count.
    const ours = cases.map(([t]) => dotenvValues(parseDotenv(t), environ));
    const named = (o: Record<string, string>, t: string) => Object.fromEntries(Object.entries(o).filter(([k]) => t.includes(k)));
    expect(ours).toEqual(theirs.map((o, i) => named(o, cases[i]![0])));
    expect(ours.filter((o) => Object.keys(o).length > 0).length).toBeGreaterThan(18);
    expect(ours.find((o) => 'C' in o)).toEqual({ C: 'from-env' }); // PRESET stays the environment's
  });

  it('a password with # survives into the configuration, through a symlinked .env, with and without Python', () => {
    root = tempDir();
    fs.writeFileSync(path.join(root, 'real.env'), 'export SCITEX_CLOUD_DB_PASSWORD_DEV=abc#def\nexport SCITEX_CLOUD_DB_USER_DEV="app # user"\n');
    fs.symlinkSync('real.env', path.join(root, '.env'));
    const c = resolveConfig(root, { python: '/nonexistent' }, {});
    if (c.database.kind !== 'postgres') throw new Error('expected postgres');
    expect(c.database.password).toEqual({ value: 'abc#def', source: '.env', variable: 'SCITEX_CLOUD_DB_PASSWORD_DEV' });
    expect(c.database.user.value).toBe('app # user');
  });

  it('PYTHON_DOTENV_DISABLED=true ignores .env, as load_dotenv() does', () => {
    root = tempDir();
    fs.writeFileSync(path.join(root, '.env'), 'SCITEX_CLOUD_DB_NAME_DEV=from_file\n');
    const c = resolveConfig(root, { python: '/nonexistent' }, { PYTHON_DOTENV_DISABLED: 'true' });
    expect(c.database.kind === 'postgres' && c.database.name.value).toBe('scitex_cloud_dev');
    expect(c.warnings.join('\n')).toMatch(/PYTHON_DOTENV_DISABLED/);
  });
});
