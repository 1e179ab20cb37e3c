import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');

describe('README', () => {
  it('command reference equals the CLI\'s --help', () => {
    const r = spawnSync(process.execPath, [path.join(repo, 'scripts/readme-help.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
  it('opens with the two fresh-machine commands and documents every exit code the code uses', () => {
    const head = readme.split('\n').slice(0, 30).join('\n');
    expect(head).toContain('npm ci && npm run demo');
    expect(head).toContain('npm test');
    const src = fs.readFileSync(path.join(repo, 'src/errors.ts'), 'utf8');
    const codes = [...src.matchAll(/^\s+([A-Z]+): (\d),$/gm)].map((m) => m[2]);
    expect(codes).toEqual(['0', '1', '2', '3', '4']);
    for (const c of codes) expect(readme).toMatch(new RegExp(`^\\| ${c} \\|`, 'm'));
  });
});
