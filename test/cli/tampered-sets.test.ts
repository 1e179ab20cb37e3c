import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cli, tempDir } from '../helpers/cli.js';
import { makeUser } from '../helpers/tree.js';

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const backupSet = (): string => {
  const r = cli(['--root', root, '--json', 'backup', 'users']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { set: string }).set;
};

/** Runs the CLI with stdout and stderr in one stream, in the order they were written. */
const combined = (args: string[]): { code: number; lines: string[] } => {
  const r = spawnSync('bash', ['-c', 'exec "$0" "$@" 2>&1', process.execPath, BIN, ...args], { env: cleanEnv(), encoding: 'utf8', input: '' });
  return { code: r.status ?? -1, lines: r.stdout.split('\n').filter(Boolean) };
};

/**
 * Two sets; alice changes in between, so bob's archive in the second set is a hard link to the first one's.
 * Then the first set's files are aged and the app's own cleanup runs, verbatim from
 * scripts/deployment/backup_database.sh: it deletes every old .gz below, including the linked archive of the
 * newest set, and leaves both manifests.
 */
function cleanedUp(): { first: string; second: string } {
  root = tempDir('scitex-tamper-');
  expect(cli(['--root', root, 'init']).code).toBe(0);
  makeUser(path.join(root, 'data/users'), 'alice', 1);
  makeUser(path.join(root, 'data/users'), 'bob', 2);
  const first = backupSet();
  fs.writeFileSync(path.join(root, 'data/users/alice/proj/neuro-analysis/new.txt'), 'changed');
  const second = backupSet();
  expect(fs.statSync(path.join(first, 'bob.tar.gz')).ino).toBe(fs.statSync(path.join(second, 'bob.tar.gz')).ino);
  for (const n of fs.readdirSync(first)) execFileSync('touch', ['-h', '-d', '10 days ago', path.join(first, n)]);
  execFileSync('find', [path.join(root, 'data/db/backups'), '-name', '*.gz', '-mtime', '+7', '-delete']);
  expect(fs.readdirSync(first).sort()).toEqual(['MANIFEST.json', 'SHA256SUMS']);
  expect(fs.existsSync(path.join(second, 'alice.tar.gz'))).toBe(true);
  return { first, second };
}

describe('user sets damaged by other tools', () => {
  it('list marks every set a find -delete cleanup damaged; verify names the likely cause', () => {
    const { first, second } = cleanedUp();
    const r = cli(['--root', root, 'list', 'users']);
    expect(r.code, r.stderr).toBe(0);
    const line = (set: string) => r.stdout.split('\n').find((l) => l.endsWith(path.basename(set)) || l.includes(`${path.basename(set)} `))!;
    expect(line(first)).toMatch(/DAMAGED: 2 archive\(s\) missing/);
    expect(line(second)).toMatch(/DAMAGED: 1 archive\(s\) missing/);
    const json = JSON.parse(cli(['--root', root, '--json', 'list', 'users']).stdout) as { backups: { name: string; damaged: boolean; set: { damage: { missing: string[] } } }[] };
    expect(json.backups.find((b) => b.name === path.basename(second))!.set.damage.missing).toEqual(['bob.tar.gz']);

    const v = cli(['--root', root, '--json', 'verify', '--skip-db', '--backups']);
    const checks = JSON.parse(v.stdout).checks as { name: string; status: string; found: string }[];
    const sums = checks.find((c) => c.name === 'backups.checksums')!;
    expect(sums.status).toBe('fail');
    expect(sums.found).toContain(`${path.basename(second)}: 1 of 2 archive(s) missing (bob.tar.gz)`);
    expect(sums.found).toMatch(/find <backups> -name "\*\.gz" -mtime \+N -delete` style cleanup/);
    // The damaged newest set does not count as a backup of the users.
    expect(checks.find((c) => c.name === 'backups.freshness.users')!.status).toBe('fail');
  });

  it('list marks a set whose archive has another size than its manifest says', () => {
    root = tempDir('scitex-tamper-');
    expect(cli(['--root', root, 'init']).code).toBe(0);
    makeUser(path.join(root, 'data/users'), 'alice', 1);
    const set = backupSet();
    fs.truncateSync(path.join(set, 'alice.tar.gz'), 100);
    const r = cli(['--root', root, 'list', 'users']);
    expect(r.stdout).toMatch(/DAMAGED: 1 of another size/);
  });

  it('restore says the set is damaged before printing anything else', () => {
    const { first, second } = cleanedUp();
    const to = tempDir('scitex-to-');
    try {
      const r = combined(['--root', root, 'restore', 'users', '--user', 'alice', '--to', to, '--dry-run']);
      expect(r.lines[0]).toContain(`${path.basename(second)}, the set this restore uses, is damaged: 1 of 2 archive(s) missing (bob.tar.gz)`);
      expect(r.lines[0]).toContain('find <backups> -name "*.gz"');
      expect(r.lines[1]).toContain(`another set is damaged: ${path.basename(first)}`);
      // alice's own archive is intact: the restore itself can go on.
      expect(r.code, r.lines.join('\n')).toBe(0);
      const all = combined(['--root', root, 'restore', 'users', '--to', to, '--dry-run', '--from', first]);
      expect(all.lines[0]).toContain(`${path.basename(first)}, the set this restore uses, is damaged: 2 of 2 archive(s) missing`);
      expect(all.code).not.toBe(0);
    } finally {
      fs.rmSync(to, { recursive: true, force: true });
    }
  });
});
