import fs from 'node:fs';
import path from 'node:path';
import { openFilesOf } from '../adapters/procfs.js';

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

const lexists = (p: string) => fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;

/**
 * Why a database may not move now from `fromRel` to `toRel` (paths relative to `base`), checked before anything
 * moves (migrate forward and --rollback): a process holds it or a side file open; a hot journal waits at either
 * place (moving would part it from its database, whose file then holds uncommitted pages); or side files
 * already sit at the destination without their database, where the moved database would be joined with them.
 */
export function databaseMoveProblems(base: string, fromRel: string, toRel: string): string[] {
  const from = path.join(base, fromRel);
  const to = path.join(base, toRel);
  const problems: string[] = [];
  const holders = openFilesOf([from, ...sideFilePaths(from), to, ...sideFilePaths(to)]);
  if (holders.length) problems.push(`${path.relative(base, holders[0]!.file)} is in use by ${holders.map((h) => `pid ${h.pid} (${h.command})`).join(', ')}: stop the app first.`);
  for (const rel of [fromRel, toRel]) {
    if (hasHotJournal(path.join(base, rel))) problems.push(`${rel} has a hot journal (${rel}-journal): a writer died mid-transaction; open it once with the app or sqlite3 to recover it, then re-run.`);
  }
  if (lexists(from) && !lexists(to)) {
    for (const p of presentSideFiles(to)) problems.push(`${path.relative(base, p)} exists without its database: ${fromRel} would be joined with it; move it aside first.`);
  }
  return problems;
}

/** The moves that carry a database and its existing side files from `fromDb` to `toDb`: the database first. */
export function familyMoves(fromDb: string, toDb: string): [string, string][] {
  return [[fromDb, toDb], ...presentSideFiles(fromDb).map((p): [string, string] => [p, toDb + p.slice(fromDb.length)])];
}

/** The database a side-file name belongs to (`x.db-wal` -> `x.db`), or the name itself. */
export function databaseOf(name: string): string {
  const s = SQLITE_SIDE_SUFFIXES.find((x) => name.endsWith(x));
  return s ? name.slice(0, -s.length) : name;
}
