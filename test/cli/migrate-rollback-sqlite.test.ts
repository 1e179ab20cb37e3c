import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { countRows, env, exactSnapshot, holdOpen, makeAuthDb } from '../helpers/migtree.js';
import { makeUser } from '../helpers/tree.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WRITER = path.join(HERE, '../helpers/sqlite-writer.cjs');
const work: string[] = [];
afterAll(() => {
  for (const d of work) fs.rmSync(d, { recursive: true, force: true });
});

/** A migrated tree: data/app.db (rollback-journal mode, 20 committed rows in t) now at data/db/sqlite/app.db. */
function migrated(mode: 'delete' | 'wal' = 'delete'): string {
  const root = tempDir('scitex-rbsql-');
  work.push(root);
  fs.mkdirSync(path.join(root, 'data'));
  makeAuthDb(path.join(root, 'data/app.db'), ['alice'], mode);
  makeUser(path.join(root, 'data'), 'alice');
  const r = cli(['--root', root, 'migrate', '--yes'], { env });
  expect(r.code, r.stderr).toBe(0);
  expect(fs.readdirSync(path.join(root, 'data/db/sqlite')).sort()).toEqual(['.gitkeep', 'app.db']);
  return root;
}

/**
 * The app crashing mid-transaction: a child opens the database in rollback-journal mode, commits 2000 rows,
 * then begins a write that changes more pages than its cache holds (so uncommitted pages reach the database
 * file) and is SIGKILLed: the database file now needs its hot journal to be whole.
 */
function crashMidTransaction(file: string): void {
  const code = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.exec('PRAGMA journal_mode = DELETE');
    const ins = db.prepare('INSERT INTO t(v) VALUES (?)'); // one kept statement: Node 24 aborts when the GC finalizes dropped ones
    db.transaction(() => { for (let i = 0; i < 2000; i++) ins.run('committed ' + 'x'.repeat(400)); })();
    db.exec('PRAGMA cache_size = 1');
    db.exec('BEGIN IMMEDIATE');
    db.exec("UPDATE t SET v = 'uncommitted'");
    process.kill(process.pid, 'SIGKILL');`;
  const r = spawnSync(process.execPath, ['-e', code, file], { cwd: path.join(HERE, '../..') });
  expect(r.signal).toBe('SIGKILL');
  expect(fs.statSync(file + '-journal').size).toBeGreaterThan(0);
}

/** Everything but our lock file and data/'s mtime (which taking the lock changes). */
const unlocked = (snap: Record<string, string>) => Object.fromEntries(Object.entries(snap).filter(([k]) => k !== 'data' && !k.startsWith('data/.scitex-data.lock')));

describe('migrate --rollback follows the SQLite side-file rules', () => {
  it('stops before moving anything when the database has a hot journal (the app crashed mid-write)', () => {
    const root = migrated();
    const db = path.join(root, 'data/db/sqlite/app.db');
    crashMidTransaction(db);
    const uncommitted = "t WHERE v = 'uncommitted'";
    expect(countRows(db, uncommitted)).toBe(0); // with its journal, the database holds only committed rows
    expect(countRows(db, uncommitted, [])).toBeGreaterThan(0); // parted from it, uncommitted rows show
    const snap = unlocked(exactSnapshot(root));
    for (const args of [['--rollback', '--dry-run'], ['--rollback', '--yes']]) {
      const r = cli(['--root', root, 'migrate', ...args], { env });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/Rollback stopped before moving anything: data\/db\/sqlite\/app\.db has a hot journal/);
      expect(unlocked(exactSnapshot(root))).toEqual(snap);
    }
    // Once the journal is recovered (the app or sqlite3 opens the database once), the rollback runs.
    const recover = spawnSync(process.execPath, ['-e', "new (require('better-sqlite3'))(process.argv[1]).prepare('SELECT count(*) FROM t').get()", db], { cwd: path.join(HERE, '../..') });
    expect(recover.status).toBe(0);
    const r = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(countRows(path.join(root, 'data/app.db'), 't')).toBe(2020);
    expect(countRows(path.join(root, 'data/app.db'), uncommitted, [])).toBe(0);
  });

  it('moves -wal and -shm back with their database: committed rows only in the -wal are kept', () => {
    const root = migrated('wal');
    const db = path.join(root, 'data/db/sqlite/app.db');
    // The app, now on the new layout, commits 60 row pairs and dies: they sit only in app.db-wal.
    spawnSync(process.execPath, [WRITER, db, 'nocheckpoint', '60']);
    expect(fs.statSync(db + '-wal').size).toBeGreaterThan(0);
    const r = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(path.join(root, 'data')).filter((n) => n.startsWith('app.db')).sort()).toEqual(['app.db', 'app.db-shm', 'app.db-wal']);
    expect(fs.existsSync(path.join(root, 'data/db'))).toBe(false); // the layout it created is gone with it
    expect(countRows(path.join(root, 'data/app.db'), 'a')).toBe(60);
    expect(countRows(path.join(root, 'data/app.db'), 't')).toBe(20);
  });

  it('stops while a process holds the database open, and when a stale side file waits at the old place', async () => {
    const root = migrated('wal');
    const db = path.join(root, 'data/db/sqlite/app.db');
    const snap = unlocked(exactSnapshot(root));
    const hold = await holdOpen(db);
    try {
      const r = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Rollback stopped before moving anything: data\/db\/sqlite\/app\.db is in use by pid \d+ \(\w+\): stop the app first/);
      expect(unlocked(exactSnapshot(root))).toEqual(snap);
    } finally {
      hold.kill('SIGKILL');
    }
    fs.writeFileSync(path.join(root, 'data/app.db-wal'), 'stale');
    const r = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/data\/app\.db-wal exists without its database/);
    expect(fs.existsSync(db)).toBe(true);
  });

  it('never moves a database back through a folder the app user swapped for a symlink', () => {
    const root = migrated();
    const elsewhere = tempDir('scitex-elsewhere-');
    work.push(elsewhere);
    fs.writeFileSync(path.join(elsewhere, 'app.db'), 'not the database: a file the link points at');
    fs.renameSync(path.join(root, 'data/db/sqlite'), path.join(root, 'data/db/sqlite.real'));
    fs.symlinkSync(elsewhere, path.join(root, 'data/db/sqlite'));
    const r = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Rollback stopped before moving anything: data\/db\/sqlite is reached through a symlink/);
    expect(fs.readdirSync(elsewhere)).toEqual(['app.db']);
    expect(fs.existsSync(path.join(root, 'data/app.db'))).toBe(false);
  });
});
