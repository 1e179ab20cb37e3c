import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import './sqlitekeep.js';
import { ScitexError } from '../errors.js';

/** SQLite side files that belong to a database and move with it. */
export const SQLITE_SIDE_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

/** The side-file paths of a database, whether or not they exist. */
export function sideFilePaths(db: string): string[] {
  return SQLITE_SIDE_SUFFIXES.map((s) => db + s);
}


/** Opens a database read-only, failing clearly when it is missing or not SQLite. */
export function openReadOnly(file: string): Database.Database {
  if (!fs.existsSync(file)) throw new ScitexError(`SQLite database ${file} does not exist.`, 'Check the configuration (`scitex-data config`).');
  try {
    return new Database(file, { readonly: true, fileMustExist: true, timeout: 10_000 });
  } catch (err) {
    throw new ScitexError(`Cannot open SQLite database ${file}: ${(err as Error).message}.`, 'Check that it is a SQLite file and readable.', 1, { cause: err });
  }
}

/**
 * Consistent online snapshot with SQLite's backup API, including what sits in the -wal file.
 * All pages are copied in one step, so a writer in another process cannot make it restart forever.
 */
export async function snapshot(src: string, dest: string): Promise<void> {
  const db = openReadOnly(src);
  try {
    await db.backup(dest, { progress: () => 0x7fffffff });
  } finally {
    db.close();
  }
  // A backup is one self-contained file: rollback-journal mode, so that opening it (or a plain `cp` of
  // it) never depends on, or leaves behind, -wal/-shm side files.
  setJournalMode(dest, 'delete');
}

/** Sets the persistent journal mode; closing afterwards folds and removes any -wal. */
export function setJournalMode(file: string, mode: 'wal' | 'delete'): void {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma(`journal_mode = ${mode}`);
  } finally {
    db.close();
  }
}

/** True when the file's header marks it as a WAL-mode database (bytes 18 and 19 are 2). */
function isWalMode(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    const b = Buffer.alloc(20);
    fs.readSync(fd, b, 0, 20, 0);
    fs.closeSync(fd);
    return b[18] === 2 && b[19] === 2;
  } catch {
    return false;
  }
}

/**
 * The journal mode recorded in a file's header, read as bytes (never opened by SQLite, never through a
 * symlink): 'wal' or 'delete', or null when the file is missing or its header is not SQLite's (corrupt).
 */
export function headerJournalMode(file: string): 'wal' | 'delete' | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const b = Buffer.alloc(20);
    if (fs.readSync(fd, b, 0, 20, 0) < 20 || b.subarray(0, 16).toString('latin1') !== 'SQLite format 3\0') return null;
    return b[18] === 2 && b[19] === 2 ? 'wal' : 'delete';
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * `PRAGMA quick_check` (or integrity_check when `full`); returns the problems, empty when sound.
 * A WAL-mode file is checked through a private copy when opening it in place would create side files next
 * to it: without its -shm (root-owned -wal/-shm in data/db/sqlite lock the app out), or, when `untouched`,
 * without its -wal (e.g. inside the backup directory).
 */
export function checkDatabase(file: string, full = false, untouched = false): string[] {
  const check = (db: Database.Database) => {
    const rows = db.pragma(full ? 'integrity_check' : 'quick_check') as Record<string, string>[];
    const msgs = rows.map((r) => Object.values(r)[0] ?? '');
    return msgs.length === 1 && msgs[0] === 'ok' ? [] : msgs;
  };
  if (isWalMode(file) && (!fs.existsSync(file + '-shm') || (untouched && !fs.existsSync(file + '-wal')))) {
    try {
      return withPrivateCopy(file, check);
    } catch (err) {
      return [(err as Error).message];
    }
  }
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    return [(err as Error).message];
  }
  try {
    return check(db);
  } catch (err) {
    return [(err as Error).message];
  } finally {
    db.close();
  }
}

/** Row count of every table, for comparing a restored copy with the live one. */
export function tableCounts(file: string): Record<string, number> {
  const db = openReadOnly(file);
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
    const out: Record<string, number> = {};
    for (const { name } of tables) out[name] = (db.prepare(`SELECT count(*) AS n FROM "${name.replace(/"/g, '""')}"`).get() as { n: number }).n;
    return out;
  } finally {
    db.close();
  }
}

/** Copies a regular file (never through a symlink, never blocking on a FIFO) to `dest`; false when it is not one. */
function copyRegularFile(file: string, dest: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return false;
    const out = fs.openSync(dest, 'wx', 0o600);
    try {
      const buf = Buffer.alloc(1 << 20);
      for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) fs.writeSync(out, buf, 0, n);
    } finally {
      fs.closeSync(out);
    }
    return true;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Runs `fn` on a private copy of a database and its -wal and -journal (not -shm, which SQLite rebuilds), so
 * that reading writes nothing next to the original: opening a WAL database in place, even read-only, creates
 * or rewrites its -wal and -shm. The copy is exact (committed rows in the -wal included, a hot journal rolled
 * back); `immutable=1` would miss the -wal, and this build of SQLite takes no URI filenames.
 */
export function withPrivateCopy<T>(file: string, fn: (db: Database.Database) => T): T {
  if (fs.lstatSync(file).isFile() && !isWalMode(file) && !sideFilePaths(file).some((p) => fs.existsSync(p))) {
    // A rollback-journal database without side files is read in place, read-only: that creates nothing.
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-read-'));
  try {
    const copy = path.join(dir, 'copy.db');
    if (!copyRegularFile(file, copy)) throw new ScitexError(`${file} is not a regular file.`);
    for (const side of ['-wal', '-journal']) copyRegularFile(file + side, copy + side);
    const db = new Database(copy, { fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Usernames in a Django auth_user table, or [] when the file has none; read from a private copy (writes nothing). */
export function authUsernames(file: string): string[] {
  try {
    return withPrivateCopy(file, (db) => (db.prepare('SELECT username FROM auth_user').all() as { username: string }[]).map((r) => r.username));
  } catch {
    return [];
  }
}

/** The first 16 bytes say whether a file is a SQLite database. */
export function isSqliteFile(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(16);
    fs.readSync(fd, buf, 0, 16, 0);
    fs.closeSync(fd);
    return buf.toString('latin1') === 'SQLite format 3\0';
  } catch {
    return false;
  }
}

/**
 * `PRAGMA quick_check` of a snapshot this process just wrote into its private backup directory, on a
 * worker thread, so the caller can hash the file on the main thread meanwhile (both cores in use).
 * The snapshot is in rollback-journal mode (see snapshot), so opening it read-only creates nothing.
 */
export function checkSnapshot(file: string): Promise<string[]> {
  return new Promise((resolve) => {
    const w = new Worker(new URL('./sqlitecheck.js', import.meta.url), { workerData: { file } });
    let got: string[] | null = null;
    w.once('message', (m: string[]) => (got = m));
    w.once('error', (e) => (got ??= [e.message]));
    w.once('exit', (code) => resolve(got ?? [`the check stopped (exit ${code})`]));
  });
}
