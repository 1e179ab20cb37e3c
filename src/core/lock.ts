import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import '../adapters/sqlitekeep.js';
import { LockedError, ScitexError } from '../errors.js';
import { dataDir } from './layout/paths.js';
import { PlantedLinkError } from './fs/nofollow.js';

/** A held lock; release() is optional since the kernel releases it when the process dies. */
export interface Lock {
  release(): void;
}

/** Lock file under data/, shared by migrate, backup, restore and prune. */
export const lockPath = (root: string): string => path.join(dataDir(root), '.scitex-data.lock');

const { O_RDWR, O_CREAT, O_NOFOLLOW } = fs.constants;

/**
 * Opens (or creates) the lock file without following a link, and refuses anything but a plain file with
 * one name: a planted symlink or hard link must not make a root run chmod or lock another file.
 */
function openLockFile(file: string): number {
  let fd: number;
  try {
    fd = fs.openSync(file, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new PlantedLinkError(file, 'a plain lock file');
    throw err;
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile() || st.nlink !== 1) {
    fs.closeSync(fd);
    throw new PlantedLinkError(file, 'a plain lock file');
  }
  if (typeof process.geteuid === 'function' && st.uid === process.geteuid() && (st.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
  return fd;
}

/** Replaces `file` with `text` through an exclusive temp name and a rename: never writes through a link. */
function writeInfo(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.partial-${process.pid}-${crypto.randomBytes(3).toString('hex')}`);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  try {
    fs.writeSync(fd, text);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      /* already closed */
    }
    fs.rmSync(tmp, { force: true }); // a full disk must not leave our temp name behind
    throw err;
  }
}

/**
 * Removes temporary .info names left by a holder killed while writing them: we hold the lock, so no other run
 * writes one now. unlink removes a planted link (or file) itself, never its target; anything else is left.
 */
function removeStaleInfo(info: string): void {
  const prefix = `.${path.basename(info)}.partial-`;
  for (const n of fs.readdirSync(path.dirname(info))) {
    if (!n.startsWith(prefix)) continue;
    try {
      fs.unlinkSync(path.join(path.dirname(info), n));
    } catch {
      /* a directory planted under that name: not ours, left alone */
    }
  }
}

/** The first 4 KiB of a file, not following a link (the .info file is written by whoever holds the lock). */
function readSmall(file: string): string {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(4096);
    return buf.subarray(0, fs.readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Takes the lock at `file` or throws LockedError naming the holder; `what` names the locked thing.
 * The lock is an exclusive SQLite transaction, i.e. a POSIX fcntl lock: the kernel drops it when the
 * holder dies (kill -9, power loss), so a killed run can never leave a stale lock behind. SQLite opens
 * the file through our descriptor, so the path cannot be swapped between our checks and its open.
 */
export function acquireLockAt(file: string, what: string, command: string): Lock {
  const info = `${file}.info`;
  if (!fs.existsSync(path.dirname(file))) {
    throw new ScitexError(`${path.dirname(file)} does not exist.`, 'Check --root, or run `scitex-data init` first.');
  }
  const fd = openLockFile(file);
  let db: Database.Database;
  try {
    db = new Database(`/proc/${process.pid}/fd/${fd}`, { timeout: 0 });
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  const close = () => {
    db.close();
    fs.closeSync(fd);
  };
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    close();
    if ((err as { code?: string }).code === 'SQLITE_BUSY') {
      let holder = 'another scitex-data run';
      try {
        const h = JSON.parse(readSmall(info)) as { pid: number; command: string; started: string };
        holder = `scitex-data ${String(h.command)} (pid ${Number(h.pid)}, started ${String(h.started)})`;
      } catch {
        /* the holder may not have written its info yet */
      }
      throw new LockedError(`${holder} holds the lock on ${what}.`, 'Wait for it to finish, then re-run.');
    }
    if ((err as { code?: string }).code === 'SQLITE_NOTADB') throw new ScitexError(`${file} is not a scitex-data lock file.`, 'Nothing runs: inspect it and remove it, then re-run.');
    throw err;
  }
  removeStaleInfo(info);
  writeInfo(info, JSON.stringify({ pid: process.pid, command, started: new Date().toISOString() }) + '\n');
  return {
    release() {
      if (!db.open) return;
      try {
        fs.rmSync(info, { force: true }); // unlink removes a planted link itself, never its target
        db.exec('COMMIT');
      } finally {
        close();
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
