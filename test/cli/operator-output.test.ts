import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, cli, tempDir } from '../helpers/cli.js';
import { appTreeWithAlice } from '../helpers/apptree.js';

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };

function fresh(): void {
  root = appTreeWithAlice();
}

describe('--quiet: quiet on success, never on failure', () => {
  it('verify --backups with no backups exits 3 and prints the failing checks and the summary', () => {
    fresh();
    const r = cli(['--root', root, '--quiet', 'verify', '--backups'], { env });
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^FAIL\s+backups\.freshness\.database\s+no database backup/m);
    expect(r.stdout).toMatch(/^FAIL\s+backups\.freshness\.users\s+no users backup/m);
    expect(r.stdout).toMatch(/→ Run `scitex-data backup/);
    expect(r.stdout).toMatch(/checks: \d+ passed, 0 warned, 2 failed$/m);
    // Only what failed: the passing checks stay quiet.
    expect(r.stdout).not.toMatch(/^PASS/m);
  });

  it('verify --backups that passes prints nothing', () => {
    fresh();
    expect(cli(['--root', root, '--quiet', 'backup'], { env })).toEqual({ code: 0, stdout: '', stderr: '' });
    expect(cli(['--root', root, '--quiet', 'verify', '--backups'], { env })).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it('an error is printed under --quiet (stderr, one line)', () => {
    root = tempDir();
    const r = cli(['--root', root, '--quiet', 'backup'], { env });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: .*data does not exist/);
  });

  it('a retention run that deletes backups prints each deletion under --quiet', () => {
    fresh();
    // Two older backups of the same day as the new one: --keep-daily 1 keeps only the newest.
    const dir = path.join(root, 'data/db/backups');
    for (const ts of ['20200101_000000', '20200102_000000']) {
      fs.copyFileSync(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), path.join(dir, `scitex_cloud_dev_${ts}.db`));
    }
    const r = cli(['--root', root, '--quiet', 'backup', 'db', '--keep-daily', '1'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\s*deleted\s.*scitex_cloud_dev_20200101_000000\.db\s*$/m);
    expect(r.stdout).toMatch(/^\s*deleted\s.*scitex_cloud_dev_20200102_000000\.db\s*$/m);
    expect(r.stdout).toMatch(/^1 kept, 2 deleted$/m);
  });
});

describe('--json: exactly one JSON document, also for usage errors', () => {
  it.each([
    [['bakup'], /unknown command 'bakup'/],
    [['backup', '--level', 'x'], /--level <n>.*invalid/],
    [['backup', '--compression', 'rar'], /--compression <kind>.*invalid/],
    [['restore', 'db', '--from'], /--from <file>.*missing/],
    [['backup', '--no-such-flag'], /unknown option '--no-such-flag'/],
    [['restore'], /a command is missing/],
  ])('%j: exit 2, one document with ok false and the error, nothing on stderr', (args, message) => {
    root = tempDir();
    const r = cli(['--root', root, '--json', ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as { ok: boolean; exitCode: number; error: { message: string; hint: string } };
    expect(doc.ok).toBe(false);
    expect(doc.exitCode).toBe(2);
    expect(doc.error.message).toMatch(message);
    expect(doc.error.hint).toMatch(/--help/);
  });

  it('--help and --version with --json are one document too', () => {
    const h = cli(['--json', '--help']);
    expect(h.code).toBe(0);
    expect((JSON.parse(h.stdout) as { output: string }).output).toMatch(/^Usage: scitex-data/);
    const v = cli(['--json', '--version']);
    expect((JSON.parse(v.stdout) as { output: string }).output.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('a command group without its subcommand is a usage error', () => {
  it.each([[['restore']], [[]]])('scitex-data %j: help on stderr, exit 2', (args) => {
    const r = cli(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^Usage: scitex-data/);
    expect(r.stderr).toMatch(/^error: a command is missing/m);
  });

  it('explicit help still exits 0', () => {
    expect(cli(['restore', '--help']).code).toBe(0);
    expect(cli(['help', 'restore']).code).toBe(0);
  });
});

describe('colours never reach a file or a pipe', () => {
  it('with stdout on a terminal, stderr written to a file has no escape codes (errors and warnings)', () => {
    root = tempDir();
    const err = path.join(root, 'stderr.txt');
    // `script` gives the CLI a terminal on stdout; stderr goes to the file.
    const cmd = `${process.execPath} ${BIN} --root ${root}/nowhere backup 2>${err}`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '' , TERM: 'xterm' } });
    expect(r.status).toBe(2);
    const text = fs.readFileSync(err, 'utf8');
    expect(text).toMatch(/^error: /);
    expect(text).not.toMatch(/\x1b\[/);
  });

  it('nothing coloured in pipes, on either stream, with or without --json', () => {
    fresh();
    for (const args of [['verify', '--backups'], ['--json', 'verify', '--backups'], ['bakup'], ['--root', '/nonexistent', 'backup']]) {
      const r = cli(['--root', root, ...args], { env: { ...env, FORCE_COLOR: '1' } });
      expect(r.stdout + r.stderr).not.toMatch(/\x1b\[/);
    }
  });
});
