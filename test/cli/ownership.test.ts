import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';

// scitex-data runs as root (cron, sudo) while the app runs as its own user that owns data/.
// These tests play both: root runs the CLI, uid 65534 ("the app") must keep working afterwards.
const APP = 65534;
/** The app on its SQLite fallback, so that verify needs no PostgreSQL. */
const SQLITE = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };
const asRoot = process.getuid?.() === 0;

/** Runs a command as the app user; returns its exit code and stderr. */
function asApp(cmd: string, args: string[]): { code: number; stderr: string } {
  const r = spawnSync('setpriv', [`--reuid=${APP}`, `--regid=${APP}`, '--clear-groups', cmd, ...args], { encoding: 'utf8' });
  return { code: r.status ?? -1, stderr: r.stderr };
}

/** A project root whose data/ belongs to the app user, as in a real deployment. */
function appTree(): string {
  const root = tempDir();
  fs.chmodSync(root, 0o755);
  fs.mkdirSync(path.join(root, 'data'));
  fs.chownSync(path.join(root, 'data'), APP, APP);
  return root;
}

const owner = (root: string, rel: string) => {
  const st = fs.lstatSync(path.join(root, rel));
  return `${st.uid}:${st.gid} ${(st.mode & 0o777).toString(8)}`;
};

let root = '';
afterEach(() => {
  if (root) fs.rmSync(root, { recursive: true, force: true });
  root = '';
});

describe.runIf(asRoot)('ownership: a root run leaves the app able to use its data', () => {
  it('init as root: app directories stay the app\'s (0755), only backups are private; the plan lists every change', () => {
    root = appTree();
    const dry = cli(['--root', root, 'init', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/mkdir data\/db \(0755, owner 65534:65534/);
    expect(dry.stdout).toMatch(/mkdir data\/db\/backups \(0700/);
    expect(fs.readdirSync(path.join(root, 'data'))).toEqual([]);
    expect(cli(['--root', root, 'init']).code).toBe(0);
    for (const d of ['data/db', 'data/db/sqlite', 'data/db/migrations_archive', 'data/users']) expect(owner(root, d)).toBe(`${APP}:${APP} 755`);
    expect(owner(root, 'data/db/backups')).toBe('0:0 700');
    // The app (not root) creates its database and a workspace: "unable to open database file" before the fix.
    const db = asApp('sqlite3', [path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), 'create table t(a); insert into t values (1);']);
    expect(db).toEqual({ code: 0, stderr: '' });
    expect(asApp('mkdir', [path.join(root, 'data/users/alice')]).code).toBe(0);
    expect(cli(['--root', root, 'verify'], { env: SQLITE }).code).toBe(0);
  });

  it('verify fails when an app directory was made root-only, and --fix gives it back (listed first)', () => {
    root = appTree();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    // What the first version did to every deployment: data/db root-owned 0700.
    fs.chownSync(path.join(root, 'data/db'), 0, 0);
    fs.chmodSync(path.join(root, 'data/db'), 0o700);
    const r = cli(['--root', root, '--json', 'verify']);
    expect(r.code).toBe(3);
    const c = JSON.parse(r.stdout).checks.find((x: { name: string }) => x.name === 'permissions.app-directories');
    expect(c.status).toBe('fail');
    expect(c.found).toMatch(/data\/db \(0:0 700\) is not usable by uid 65534/);
    expect(asApp('sqlite3', [path.join(root, 'data/db/sqlite/x.db'), 'create table t(a);']).code).not.toBe(0);
    const dry = cli(['--root', root, 'verify', '--fix', '--dry-run']);
    expect(dry.stdout).toMatch(/chown 65534:65534 data\/db && chmod 755 data\/db/);
    expect(owner(root, 'data/db')).toBe('0:0 700');
    cli(['--root', root, 'verify', '--fix']);
    expect(owner(root, 'data/db')).toBe(`${APP}:${APP} 755`);
    expect(asApp('sqlite3', [path.join(root, 'data/db/sqlite/x.db'), 'create table t(a);']).code).toBe(0);
  });

  it('a fresh tree passes verify without any directory of the app being 0700', () => {
    root = appTree();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    const r = cli(['--root', root, '--json', 'verify'], { env: SQLITE });
    expect(r.code).toBe(0);
    const names = JSON.parse(r.stdout).checks.filter((x: { status: string }) => x.status !== 'pass');
    expect(names).toEqual([]);
  });
});

describe.runIf(asRoot)('planted links never redirect a root run', () => {
  it('a symlink planted at the lock\'s .info file is replaced, never written through', () => {
    root = appTree();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    const victim = path.join(root, 'victim');
    fs.writeFileSync(victim, 'precious\n', { mode: 0o644 });
    fs.symlinkSync(victim, path.join(root, 'data/.scitex-data.lock.info'));
    const r = cli(['--root', root, 'backup', 'users']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    expect((fs.statSync(victim).mode & 0o777).toString(8)).toBe('644');
  });

  it('a symlink planted at the lock file is refused (exit 1, one line), the target neither chmodded nor written', () => {
    root = appTree();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    const victim = path.join(root, 'victim');
    fs.writeFileSync(victim, 'precious\n', { mode: 0o644 });
    fs.symlinkSync(victim, path.join(root, 'data/.scitex-data.lock'));
    const r = cli(['--root', root, 'backup', 'users']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/\.scitex-data\.lock is not a plain lock file.*refusing to follow it/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
    expect((fs.statSync(victim).mode & 0o777).toString(8)).toBe('644');
  });

  it('a hard link planted at the lock file is refused too', () => {
    root = appTree();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    const victim = path.join(root, 'data/victim');
    fs.writeFileSync(victim, '', { mode: 0o644 });
    fs.linkSync(victim, path.join(root, 'data/.scitex-data.lock'));
    const r = cli(['--root', root, 'backup', 'users']);
    expect(r.code).toBe(1);
    expect((fs.statSync(victim).mode & 0o777).toString(8)).toBe('644');
  });

  it('a symlink planted at data/db/backups is refused, nothing written through it', () => {
    root = appTree();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    const elsewhere = path.join(root, 'elsewhere');
    fs.mkdirSync(elsewhere, { mode: 0o755 });
    fs.rmSync(path.join(root, 'data/db/backups'), { recursive: true });
    fs.symlinkSync(elsewhere, path.join(root, 'data/db/backups'));
    const r = cli(['--root', root, 'backup', 'users']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to follow it/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    expect((fs.statSync(elsewhere).mode & 0o777).toString(8)).toBe('755');
  });
});

describe.runIf(asRoot)('migrate as root keeps the app\'s ownership', () => {
  it('lists every directory it creates with owner and mode, and the app can use the migrated database', async () => {
    const { makeOldTree } = await import('../helpers/oldtree.js');
    root = tempDir();
    fs.chmodSync(root, 0o755);
    makeOldTree(root);
    execFileSync('chown', ['-R', `${APP}:${APP}`, path.join(root, 'data')]);
    const dry = cli(['--root', root, 'migrate', '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/mode +mkdir data\/db \(0755, owner 65534:65534 like data\/\)/);
    expect(dry.stdout).toMatch(/mode +mkdir data\/db\/backups \(0700/);
    const r = cli(['--root', root, 'migrate', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    for (const d of ['data/db', 'data/db/sqlite', 'data/users']) expect(owner(root, d)).toBe(`${APP}:${APP} 755`);
    const db = fs.readdirSync(path.join(root, 'data/db/sqlite')).find((n) => n.endsWith('.db'))!;
    expect(asApp('sqlite3', [path.join(root, 'data/db/sqlite', db), 'create table app_write(a); drop table app_write;'])).toEqual({ code: 0, stderr: '' });
  });
});
