import fs from 'node:fs';
import path from 'node:path';

/**
 * The one owner of SQLite's side-file rules, used by migrate (forward and rollback), backup and restore.
 * A database is its main file plus whatever side files exist: committed rows can sit only in `-wal`, and a
 * non-empty `-journal` ("hot journal") means a writer died mid-transaction and SQLite will roll back from it
 * on the next open. So side files always move together with their database, never separately, and are
 * never left behind at a path where a different (restored) database file will appear.
 */

/** SQLite side files that belong to a database and move with it. */
export const SQLITE_SIDE_SUFFIXES = ['-wal', '-shm', '-journal'] as const;

/** True when `name` is one of the SQLite database file names (with or without side-file suffix). */
export function isSqliteFileName(name: string): boolean {
  return /\.db(-wal|-shm|-journal)?$/.test(name) || /\.sqlite3?(-wal|-shm|-journal)?$/.test(name);
}

/** True when `name` is a side file (`x.db-wal`, ...), not a database itself. */
export function isSideFileName(name: string): boolean {
  return SQLITE_SIDE_SUFFIXES.some((s) => name.endsWith(s));
}

/** The side-file paths of a database, whether or not they exist. */
export function sideFilePaths(db: string): string[] {
  return SQLITE_SIDE_SUFFIXES.map((s) => db + s);
}

/** The side files of `db` that exist now (lstat: a planted symlink counts as existing). */
export function presentSideFiles(db: string): string[] {
  return sideFilePaths(db).filter((p) => {
    try {
      fs.lstatSync(p);
      return true;
    } catch {
      return false;
    }
  });
}

/** True when `db` has a hot rollback journal: a writer died mid-transaction and recovery has not run. */
export function hasHotJournal(db: string): boolean {
  try {
    const st = fs.lstatSync(db + '-journal');
    return st.isFile() && st.size > 0;
  } catch {
    return false;
  }
}

/** A database file and its existing side files, relative to `base`, in the order they should move. */
export function databaseFamily(base: string, relDb: string): string[] {
  return [relDb, ...presentSideFiles(path.join(base, relDb)).map((p) => path.relative(base, p))];
}
