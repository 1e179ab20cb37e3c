import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { snapshotTree } from './tree.js';

// PostgreSQL is not configured in these tests; point it at a closed port so the auth_user probe fails fast.
export const env = { SCITEX_CLOUD_DB_PORT_DEV: '1', SCITEX_CLOUD_DB_HOST_DEV: '127.0.0.1' };

/** Every entry with type, mode, owner, size, mtime (ns) and content hash: two equal snapshots mean nothing was written. */
export function exactSnapshot(dir: string): Record<string, string> {
  const out = snapshotTree(dir);
  const visit = (rel: string) => {
    const st = fs.lstatSync(path.join(dir, rel), { bigint: true });
    out[rel] = `${out[rel]} mtime=${st.mtimeNs} size=${st.size}`;
    if (st.isDirectory()) for (const n of fs.readdirSync(path.join(dir, rel))) visit(rel ? `${rel}/${n}` : n);
  };
  visit('');
  return out;
}

/** The snapshot of one subtree, renamed to `to`: a rename changes its parent's mtime, nothing inside it. */
export function subtree(snap: Record<string, string>, prefix: string, to = prefix): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(snap)) if (k === prefix || k.startsWith(prefix + '/')) out[to + k.slice(prefix.length)] = v;
  return out;
}

/** A database in rollback-journal mode with an auth_user table naming `users` (evidence for migrate). */
export function makeAuthDb(file: string, users: string[], mode: 'delete' | 'wal' = 'delete'): void {
  const db = new Database(file);
  db.pragma(`journal_mode = ${mode}`);
  db.exec('CREATE TABLE auth_user(id INTEGER PRIMARY KEY, username TEXT UNIQUE); CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
  const ins = db.prepare('INSERT INTO auth_user(username) VALUES (?)');
  for (const u of users) ins.run(u);
  for (let i = 0; i < 20; i++) db.prepare('INSERT INTO t(v) VALUES (?)').run(`committed ${i}`);
  db.close();
}

/** Row count of a table, read from a private copy of the database and its side files (the original stays untouched). */
export function countRows(file: string, table: string, sides = ['-wal', '-journal']): number {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-count-'));
  try {
    for (const s of ['', ...sides]) if (fs.existsSync(file + s)) fs.copyFileSync(file + s, path.join(dir, 'c.db' + s));
    const db = new Database(path.join(dir, 'c.db'));
    try {
      return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    } finally {
      db.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A process holding `file` open, as the running app would; resolves once the descriptor is open. */
export async function holdOpen(file: string): Promise<ChildProcess> {
  const child = spawn('bash', ['-c', `exec 3<'${file}'; echo open; exec sleep 60`], { stdio: ['ignore', 'pipe', 'ignore'] });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  return child;
}
