import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { LockedError, ScitexError } from './errors.js';
import { dataDir } from './layout.js';

/** A held lock; release() is optional since the kernel releases it when the process dies. */
export interface Lock {
  release(): void;
}

/** Lock file under data/, shared by migrate, backup, restore and prune. */
export const lockPath = (root: string): string => path.join(dataDir(root), '.scitex-data.lock');

/**
 * Takes the lock at `file` or throws LockedError naming the holder; `what` names the locked thing.
 * The lock is an exclusive SQLite transaction, i.e. a POSIX fcntl lock: the kernel drops it when the
 * holder dies (kill -9, power loss), so a killed run can never leave a stale lock behind.
 */
export function acquireLockAt(file: string, what: string, command: string): Lock {
  const info = `${file}.info`;
  if (!fs.existsSync(path.dirname(file))) {
    throw new ScitexError(`${path.dirname(file)} does not exist.`, 'Check --root, or run `scitex-data init` first.');
  }
  const db = new Database(file, { timeout: 0 });
  try {
    fs.chmodSync(file, 0o600);
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      let holder = 'another scitex-data run';
      try {
        const h = JSON.parse(fs.readFileSync(info, 'utf8')) as { pid: number; command: string; started: string };
        holder = `scitex-data ${h.command} (pid ${h.pid}, started ${h.started})`;
      } catch {
        /* the holder may not have written its info yet */
      }
      throw new LockedError(`${holder} holds the lock on ${what}.`, 'Wait for it to finish, then re-run.');
    }
    throw err;
  }
  fs.writeFileSync(info, JSON.stringify({ pid: process.pid, command, started: new Date().toISOString() }) + '\n', { mode: 0o600 });
  return {
    release() {
      if (!db.open) return;
      try {
        fs.rmSync(info, { force: true });
        db.exec('COMMIT');
      } finally {
        db.close();
      }
    },
  };
}

/** Takes the per-root lock (data/.scitex-data.lock) or throws LockedError naming the holder. */
export function acquireLock(root: string, command: string): Lock {
  return acquireLockAt(lockPath(root), dataDir(root), command);
}

/** Runs `fn` while holding the lock, releasing it afterwards (also on error). */
export async function withLock<T>(root: string, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = acquireLock(root, command);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
