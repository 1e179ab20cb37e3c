import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { ScitexError } from '../core/errors.js';

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
 * A WAL-mode file is checked through a private copy when `untouched`: opening it in place would create
 * -wal/-shm files next to it (e.g. inside the backup directory).
 */
export function checkDatabase(file: string, full = false, untouched = false): string[] {
  if (untouched && isWalMode(file) && !fs.existsSync(file + '-wal')) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-check-'));
    try {
      fs.copyFileSync(file, path.join(dir, 'copy.db'));
      return checkDatabase(path.join(dir, 'copy.db'), full);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    return [(err as Error).message];
  }
  try {
    const rows = db.pragma(full ? 'integrity_check' : 'quick_check') as Record<string, string>[];
    const msgs = rows.map((r) => Object.values(r)[0] ?? '');
    return msgs.length === 1 && msgs[0] === 'ok' ? [] : msgs;
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

/** Usernames in a Django auth_user table, or [] when the file has none. */
export function authUsernames(file: string): string[] {
  let db: Database.Database | undefined;
  try {
    db = openReadOnly(file);
    return (db.prepare('SELECT username FROM auth_user').all() as { username: string }[]).map((r) => r.username);
  } catch {
    return [];
  } finally {
    db?.close();
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
