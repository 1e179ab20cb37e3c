import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { expect } from 'vitest';
import type { ObjectStore } from '../../src/index.js';
import { cli, tempDir } from './cli.js';
import { makeUser } from './tree.js';

/**
 * A project with a SQLite database (table t: 'hello') and users; `big` bytes of incompressible bulk per user make
 * an archive multipart and a copy long enough to interrupt. Its root is pushed on `dirs` for cleanup.
 */
export function offsiteProject(dirs: string[], users: string[], big = 0): string {
  const root = tempDir();
  dirs.push(root);
  expect(cli(['--root', root, 'init']).code).toBe(0);
  const db = new Database(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'));
  db.exec("CREATE TABLE t(x); INSERT INTO t VALUES ('hello');");
  db.close();
  users.forEach((u, i) => {
    makeUser(path.join(root, 'data/users'), u, i + 1);
    if (big) fs.writeFileSync(path.join(root, 'data/users', u, 'bulk.bin'), crypto.randomBytes(big));
  });
  return root;
}

/** SHA-256 of bytes. */
export const sha = (buf: Buffer): string => crypto.createHash('sha256').update(buf).digest('hex');

/** An object's bytes. */
export async function download(s: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await s.download(key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A new age key pair in `dir`: the secret key's file and the public key. */
export function ageKey(dir: string, name = 'key.txt'): { key: string; pub: string } {
  const key = path.join(dir, name);
  execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
  return { key, pub: execFileSync('age-keygen', ['-y', key]).toString().trim() };
}
