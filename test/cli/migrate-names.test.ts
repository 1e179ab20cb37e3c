import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { env, exactSnapshot, makeAuthDb, subtree } from '../helpers/migtree.js';
import { makeUser } from '../helpers/tree.js';

const work: string[] = [];
afterAll(() => {
  for (const d of work) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * An old tree whose users are named like folders of the new layout: `db` and `users` (which the new layout
 * creates at data/db and data/users), `backups` (an old system folder), `sqlite` and `migrations_archive`.
 */
function namedTree(names: string[]): string {
  const root = tempDir('scitex-names-');
  work.push(root);
  const data = path.join(root, 'data');
  fs.mkdirSync(data);
  makeAuthDb(path.join(data, 'scitex_cloud.db'), ['alice', ...names]);
  for (const [i, n] of ['alice', ...names].entries()) makeUser(data, n, i + 1);
  // Folders inside the workspaces that collide with what the new layout would create there.
  if (names.includes('db')) fs.mkdirSync(path.join(data, 'db', 'sqlite'));
  if (names.includes('users')) {
    fs.rmSync(path.join(data, 'users', 'workspace_info.json')); // evidenced by auth_user and proj/ only
    fs.mkdirSync(path.join(data, 'users', 'users'));
    fs.writeFileSync(path.join(data, 'users', 'users', 'list.txt'), 'not a layout folder');
  }
  return root;
}

/** Asserts that each user's whole tree now sits, unchanged, at data/users/<name>. */
function assertUsersMoved(before: Record<string, string>, after: Record<string, string>, names: string[]): void {
  for (const n of names) expect(subtree(after, `data/users/${n}`)).toEqual(subtree(before, `data/${n}`, `data/users/${n}`));
}

describe('migrate: users named like folders of the layout', () => {
  it('moves users db, users, backups, sqlite and migrations_archive intact, and --rollback gives them back exactly', () => {
    const names = ['db', 'users', 'backups', 'sqlite', 'migrations_archive'];
    const root = namedTree(names);
    const before = exactSnapshot(root);
    const dry = cli(['--root', root, 'migrate', '--dry-run'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    for (const n of names) expect(dry.stdout).toContain(`data/${n} -> data/users/${n}`);
    const r = cli(['--root', root, 'migrate', '--yes'], { env });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const after = exactSnapshot(root);
    assertUsersMoved(before, after, ['alice', ...names]);
    expect(after['data/db/sqlite/scitex_cloud.db']).toBeDefined();
    expect(fs.readdirSync(path.join(root, 'data')).filter((n) => n !== '.gitignore').sort()).toEqual(['.scitex-data-migrate.journal', '.scitex-data.lock', 'db', 'users']);
    const back = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(back.code, back.stderr).toBe(0);
    const restored = exactSnapshot(root);
    // The whole old tree is back: every user's tree exactly (directory mtimes too), the database, nothing else in data/.
    for (const n of ['alice', ...names]) expect(subtree(restored, `data/${n}`)).toEqual(subtree(before, `data/${n}`));
    expect(restored['data/scitex_cloud.db']).toEqual(before['data/scitex_cloud.db']);
    expect(fs.readdirSync(path.join(root, 'data')).filter((n) => !n.startsWith('.scitex-data-migrate.journal') && n !== '.scitex-data.lock').sort()).toEqual(['alice', 'scitex_cloud.db', ...names].sort());
  });

  it('stops when data/db both holds the layout and looks like the workspace of a user "db"', () => {
    const root = namedTree([]);
    fs.mkdirSync(path.join(root, 'data/db/sqlite'), { recursive: true });
    fs.writeFileSync(path.join(root, 'data/db/sqlite/old.db'), '');
    fs.writeFileSync(path.join(root, 'data/db/workspace_info.json'), JSON.stringify({ username: 'db' }));
    // The lock file (and so data/'s mtime) is the only trace a refused run leaves.
    const unlocked = (snap: Record<string, string>) => Object.fromEntries(Object.entries(snap).filter(([k]) => k !== 'data' && !k.startsWith('data/.scitex-data.lock')));
    const snap = unlocked(exactSnapshot(root));
    const r = cli(['--root', root, 'migrate', '--yes'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--user db or --system db/);
    expect(unlocked(exactSnapshot(root))).toEqual(snap);
  });

  it('refuses a planted data/db symlink: the layout is never created or filled through a link', () => {
    const root = namedTree([]);
    const elsewhere = tempDir('scitex-elsewhere-');
    work.push(elsewhere);
    fs.symlinkSync(elsewhere, path.join(root, 'data/db'));
    const r = cli(['--root', root, 'migrate', '--yes'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/data\/db is a symlink/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    expect(fs.existsSync(path.join(root, 'data/scitex_cloud.db'))).toBe(true);
  });

  it('--rollback stops before moving anything when the old places are taken again', () => {
    const root = namedTree(['db']);
    expect(cli(['--root', root, 'migrate', '--yes'], { env }).code).toBe(0);
    // The app, on the new layout, created a database where user "db" would go back, and a new data/alice.
    fs.writeFileSync(path.join(root, 'data/db/sqlite/new.db'), '');
    fs.mkdirSync(path.join(root, 'data/alice'));
    const unlocked = (snap: Record<string, string>) => Object.fromEntries(Object.entries(snap).filter(([k]) => k !== 'data' && !k.startsWith('data/.scitex-data.lock')));
    const snap = unlocked(exactSnapshot(root));
    const r = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Rollback stopped before moving anything: data\/alice exists again while data\/users\/alice is to move back there.*\(1 more problem/);
    expect(unlocked(exactSnapshot(root))).toEqual(snap);
    fs.rmdirSync(path.join(root, 'data/alice'));
    const snap2 = unlocked(exactSnapshot(root));
    const again = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(again.stderr).toMatch(/data\/db\/sqlite\/new\.db appeared after the migration: user "db" cannot get data\/db back/);
    expect(unlocked(exactSnapshot(root))).toEqual(snap2);
  });

  it('a forward run refuses to start over a half-finished rollback, which a re-run of --rollback finishes', () => {
    const root = namedTree(['db', 'users']);
    const before = exactSnapshot(root);
    expect(cli(['--root', root, 'migrate', '--yes'], { env }).code).toBe(0);
    const killed = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env: { ...env, SCITEX_DATA_TEST_KILL_AFTER: '3' } });
    expect(killed.code).not.toBe(0);
    const fwd = cli(['--root', root, 'migrate', '--yes'], { env });
    expect(fwd.code).toBe(1);
    expect(fwd.stderr).toMatch(/A rollback of the migration was interrupted.*migrate --rollback/);
    const back = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(back.code, back.stderr).toBe(0);
    const after = exactSnapshot(root);
    for (const n of ['alice', 'db', 'users']) expect(subtree(after, `data/${n}`)).toEqual(subtree(before, `data/${n}`));
  });

  it('survives SIGKILL after every journal record with users named db and users: a re-run finishes, --rollback gives them back', () => {
    const template = namedTree(['db', 'users']);
    let landed = 0;
    for (let k = 1; k <= 40; k++) {
      const root = tempDir('scitex-names-kill-');
      work.push(root);
      execFileSync('cp', ['-a', `${template}/.`, root]);
      const copied = exactSnapshot(root);
      const killed = cli(['--root', root, 'migrate', '--yes'], { env: { ...env, SCITEX_DATA_TEST_KILL_AFTER: String(k) } });
      if (killed.code === 0) break; // k is past the last record: the whole run completed
      expect(fs.existsSync(path.join(root, 'data/.scitex-data-migrate.journal'))).toBe(true); // the kill landed mid-run
      landed++;
      if (k % 2) {
        const finish = cli(['--root', root, 'migrate', '--yes'], { env });
        expect([k, finish.code, finish.stderr]).toEqual([k, 0, '']);
        assertUsersMoved(copied, exactSnapshot(root), ['alice', 'db', 'users']);
      }
      // Rolling back an interrupted (odd k: completed) migration gives the old tree back.
      const back = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
      expect([k, back.code, back.stderr]).toEqual([k, 0, '']);
      const restored = exactSnapshot(root);
      for (const n of ['alice', 'db', 'users']) expect([k, subtree(restored, `data/${n}`)]).toEqual([k, subtree(copied, `data/${n}`)]);
      fs.rmSync(root, { recursive: true, force: true });
    }
    expect(landed).toBeGreaterThan(3);
  });
});
