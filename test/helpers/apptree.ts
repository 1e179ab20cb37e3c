import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import { cli, tempDir } from './cli.js';
import { makeUser } from './tree.js';

/** The app on its SQLite fallback, so that no PostgreSQL is needed. */
export const SQLITE_ENV = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };

/**
 * A fresh initialised root with the dev SQLite database whose auth_user holds `usernames`, and (unless
 * `workspaces` is false) a workspace for each, seeded 1, 2, ... so their contents differ.
 */
export function appTree(usernames: string[], opts: { prefix?: string; workspaces?: boolean } = {}): string {
  const root = tempDir(opts.prefix);
  expect(cli(['--root', root, 'init']).code).toBe(0);
  const db = new Database(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'));
  db.exec('CREATE TABLE auth_user(id INTEGER PRIMARY KEY, username TEXT)');
  const add = db.prepare('INSERT INTO auth_user(username) VALUES (?)');
  for (const u of usernames) add.run(u);
  db.close();
  if (opts.workspaces !== false) usernames.forEach((u, i) => makeUser(path.join(root, 'data/users'), u, i + 1));
  return root;
}

/** A fresh initialised root with the dev SQLite database (auth_user: alice) and alice's workspace. */
export const appTreeWithAlice = (): string => appTree(['alice']);

/** YYYYMMDD_HHMMSS (UTC) of a date, as backup names carry it. */
export const stamp = (d: Date): string => d.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);

/** SHA-256 of a file's contents. */
export const sha256 = (file: string): string => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Runs the CLI on `root` with the SQLite environment. */
export const runOn = (root: string, ...args: string[]) => cli(['--root', root, ...args], { env: SQLITE_ENV });

/** Runs the CLI on `root` and expects exit 0 (stderr shown otherwise). */
export const okOn = (root: string, ...args: string[]) => {
  const r = runOn(root, ...args);
  expect(r.code, r.stderr).toBe(0);
  return r;
};

/** An initialised root with users alice and bob, and an empty directory outside it (for hostile-archive tests). */
export function aliceAndBob(): { root: string; outside: string } {
  const root = tempDir();
  const outside = tempDir('scitex-outside-');
  expect(cli(['--root', root, 'init']).code).toBe(0);
  makeUser(path.join(root, 'data/users'), 'alice');
  makeUser(path.join(root, 'data/users'), 'bob', 2);
  return { root, outside };
}
