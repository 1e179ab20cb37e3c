import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cli, tempDir } from '../helpers/cli.js';
import { makeUser } from '../helpers/tree.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
const SQLITE = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };

/** A fresh root with a SQLite database and the given users. */
function makeRoot(users: string[] = ['alice', 'bob']): string {
  const root = tempDir();
  dirs.push(root);
  expect(cli(['--root', root, 'init']).code).toBe(0);
  users.forEach((u, i) => makeUser(path.join(root, 'data/users'), u, i + 1));
  execFileSync('sqlite3', [path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), 'CREATE TABLE t(x); INSERT INTO t VALUES (1);']);
  return root;
}

const backupJson = (root: string, args: string[], env: Record<string, string> = {}) => {
  const r = cli(['--root', root, '--json', 'backup', ...args], { env: { ...SQLITE, ...env } });
  expect(r.code, r.stderr).toBe(0);
  return { ...JSON.parse(r.stdout), stderr: r.stderr } as { set: string; warnings: string[]; artifacts: { path: string }[]; stderr: string };
};

describe('a set never claims an archive that no longer matches its checksum', () => {
  it('a bit flip in an old archive is not linked into the next set: fresh archive, loud warning naming the file', () => {
    const root = makeRoot();
    const first = backupJson(root, ['users']);
    const old = path.join(first.set, 'alice.tar.gz');
    const bytes = fs.readFileSync(old);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x10;
    fs.writeFileSync(old, bytes);
    const second = backupJson(root, ['users']);
    expect(second.warnings.join('\n')).toMatch(/DAMAGED/);
    expect(second.warnings.join('\n')).toContain(old);
    const fresh = path.join(second.set, 'alice.tar.gz');
    expect(fs.statSync(fresh).ino).not.toBe(fs.statSync(old).ino);
    // The unchanged, intact user is still shared.
    expect(fs.statSync(path.join(second.set, 'bob.tar.gz')).ino).toBe(fs.statSync(path.join(first.set, 'bob.tar.gz')).ino);
    execFileSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: second.set, stdio: 'pipe' });
    const m = JSON.parse(fs.readFileSync(path.join(second.set, 'MANIFEST.json'), 'utf8')) as { users: { username: string; reused: boolean }[] };
    expect(m.users.find((u) => u.username === 'alice')!.reused).toBe(false);
    // Once the damaged set is gone, the new one still restores alice.
    fs.rmSync(first.set, { recursive: true });
    const r = cli(['--root', root, 'restore', 'users', '--user', 'alice', '--yes']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('a truncated old archive is reported the same way', () => {
    const root = makeRoot(['alice']);
    const first = backupJson(root, ['users']);
    fs.truncateSync(path.join(first.set, 'alice.tar.gz'), 100);
    const second = backupJson(root, ['users']);
    expect(second.warnings.join('\n')).toMatch(/DAMAGED BACKUP: .*alice\.tar\.gz has 100 bytes/);
    execFileSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: second.set, stdio: 'pipe' });
  });
});

describe('backup validates everything before it writes anything', () => {
  const nothingWritten = (root: string) => expect(fs.readdirSync(path.join(root, 'data/db/backups'))).toEqual(['.gitkeep']);

  it('an unknown --user: exit 2, and no database snapshot was written', () => {
    const root = makeRoot();
    const r = cli(['--root', root, 'backup', '--user', 'nosuchuser'], { env: SQLITE });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nosuchuser/);
    nothingWritten(root);
  });

  it('a bad --level or an unusable backup directory: exit 2, nothing written', () => {
    const root = makeRoot();
    expect(cli(['--root', root, 'backup', '--level', '42'], { env: SQLITE }).code).toBe(2);
    nothingWritten(root);
    const file = path.join(root, 'not-a-dir');
    fs.writeFileSync(file, 'x');
    const r = cli(['--root', root, 'backup', '--backup-dir', file], { env: SQLITE });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/not a directory/);
    const inside = cli(['--root', root, 'backup', '--backup-dir', path.join(root, 'data/users/alice/bk')], { env: SQLITE });
    expect(inside.code).toBe(2);
    expect(fs.existsSync(path.join(root, 'data/users/alice/bk'))).toBe(false);
    nothingWritten(root);
  });
});

describe('two roots sharing one backup directory', () => {
  it('the backup directory has its own lock: a second root waits its turn (exit 4)', async () => {
    const a = makeRoot(['alice']);
    const shared = tempDir('scitex-shared-');
    dirs.push(shared);
    expect(cli(['--root', a, 'backup', 'users', '--backup-dir', shared]).code).toBe(0);
    // Hold the backup directory's lock the way a running backup of another root does.
    const holder = spawn(process.execPath, ['-e', `const D = require('better-sqlite3'); const d = new D(${JSON.stringify(path.join(shared, '.scitex-data.lock'))}); d.exec('BEGIN EXCLUSIVE'); console.log('locked'); setInterval(() => {}, 1000);`], { cwd: path.dirname(BIN), stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.once('data', () => resolve());
        holder.once('exit', (c) => reject(new Error(`lock holder exited ${c}`)));
      });
      const b = makeRoot(['bob']);
      const r = cli(['--root', b, 'backup', '--backup-dir', shared], { env: SQLITE });
      expect(r.code, r.stderr).toBe(4);
      expect(r.stderr).toContain(shared);
      expect(fs.readdirSync(shared).filter((n) => !n.startsWith('.'))).toHaveLength(1); // only a's set
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it("a set and a database backup record their root; restore refuses another root's unless named with --from", () => {
    const a = makeRoot(['alice']);
    const b = makeRoot(['alice']);
    const shared = tempDir('scitex-shared-');
    dirs.push(shared);
    const env = { ...SQLITE, SCITEX_DATA_BACKUP_DIR: shared };
    const doc = backupJson(a, ['all'], env);
    const m = JSON.parse(fs.readFileSync(path.join(doc.set, 'MANIFEST.json'), 'utf8'));
    expect(m.origin).toEqual({ root: fs.realpathSync(a), env: 'dev' });
    const dbFile = doc.artifacts.map((x) => x.path).find((p) => p.endsWith('.db'))!;
    expect(JSON.parse(fs.readFileSync(dbFile + '.origin.json', 'utf8'))).toEqual({ root: fs.realpathSync(a), env: 'dev' });

    const users = cli(['--root', b, 'restore', 'users', '--dry-run'], { env });
    expect(users.code).toBe(2);
    expect(users.stderr).toMatch(new RegExp(`another root \\(${fs.realpathSync(a)}, dev\\).*--from`));
    const db = cli(['--root', b, 'restore', 'db', '--dry-run'], { env });
    expect(db.code).toBe(2);
    expect(db.stderr).toMatch(/another root/);
    // Named explicitly, it is the operator's choice.
    expect(cli(['--root', b, 'restore', 'users', '--from', doc.set, '--dry-run'], { env }).code).toBe(0);
    expect(cli(['--root', b, 'restore', 'db', '--from', dbFile, '--dry-run'], { env }).code).toBe(0);
    // The same root in the other environment is another origin too.
    expect(cli(['--root', a, '--env', 'prod', 'restore', 'users', '--dry-run'], { env }).code).toBe(2);
    // Its own root restores as before.
    expect(cli(['--root', a, 'restore', 'users', '--dry-run'], { env }).code).toBe(0);
  });
});

describe('a closed standard output', () => {
  it('`scitex-data list | head -1` exits quietly with the command\'s own code, no EPIPE stack trace', async () => {
    const root = makeRoot(['alice']);
    backupJson(root, ['all']);
    for (const args of [['list'], ['--json', 'list']]) {
      const child = spawn(process.execPath, [BIN, '--root', root, ...args], { env: cleanEnv(SQLITE), stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.destroy(); // the reader is gone before the first line is written
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
      expect(stderr).toBe('');
      expect(code).toBe(0);
    }
  });
});
