import fs from 'node:fs';
import path from 'node:path';
import { SQLITE_SIDE_SUFFIXES, sideFilePaths } from '../../adapters/sqlite.js';
import { openFilesOf } from '../../adapters/procfs.js';

/** True when something exists at `p` (lstat: a planted symlink counts). */
function lexists(p: string): boolean {
  return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
}

/**
 * The one owner of SQLite's side-file rules, used by migrate (forward and rollback), backup and restore.
 * A database is its main file plus whatever side files exist: committed rows can sit only in `-wal`, and a
 * non-empty `-journal` ("hot journal") means a writer died mid-transaction and SQLite will roll back from it
 * on the next open. So side files always move together with their database, never separately, and are
 * never left behind at a path where a different (restored) database file will appear.
 */


/** True when `name` is one of the SQLite database file names (with or without side-file suffix). */
export function isSqliteFileName(name: string): boolean {
  return /\.db(-wal|-shm|-journal)?$/.test(name) || /\.sqlite3?(-wal|-shm|-journal)?$/.test(name);
}

/** True when `name` is a side file (`x.db-wal`, ...), not a database itself. */
export function isSideFileName(name: string): boolean {
  return SQLITE_SIDE_SUFFIXES.some((s) => name.endsWith(s));
}


/** The side files of `db` that exist now (lstat: a planted symlink counts as existing). */
export function presentSideFiles(db: string): string[] {
  return sideFilePaths(db).filter(lexists);
}

/**
 * True when `db` has a hot rollback journal: a writer died mid-transaction and recovery has not run.
 * Like SQLite's own test, a journal whose first byte is zero is not hot (journal_mode=PERSIST zeroes the
 * header instead of deleting the file), so such a database is not refused forever.
 */
export function hasHotJournal(db: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(db + '-journal', fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return false;
    const b = Buffer.alloc(1);
    return fs.readSync(fd, b, 0, 1, 0) === 1 && b[0] !== 0;
  } finally {
    fs.closeSync(fd);
  }
}

/** A database file and its existing side files, relative to `base`, in the order they should move. */
export function databaseFamily(base: string, relDb: string): string[] {
  return [relDb, ...presentSideFiles(path.join(base, relDb)).map((p) => path.relative(base, p))];
}

/** The database file followed by all its side-file paths, whether or not they exist. */
export function familyPaths(db: string): string[] {
  return [db, ...sideFilePaths(db)];
}

/**
 * The first name `base`+`ext`, `base_2`+`ext`, … whose whole family is free (lstat: a planted symlink
 * counts as taken). A safety copy takes a database's side files along, so a name whose `-wal` or
 * `-journal` exists is not free: that file would be replayed into (or be overwritten by) the copy.
 */
export function freeFamilyName(base: string, ext: string): string {
  for (let i = 1; ; i++) {
    const name = `${base}${i === 1 ? '' : `_${i}`}${ext}`;
    if (familyPaths(name).every((p) => !lexists(p))) return name;
  }
}

/** A member of a database family that exists and is not a regular file (a symlink, directory, …). */
export function irregularMember(db: string): { path: string; what: string } | null {
  for (const p of familyPaths(db)) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue;
    }
    if (!st.isFile()) return { path: p, what: st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file' };
  }
  return null;
}

/**
 * How a database family moves to another name: one [from, to] pair per existing member (main file
 * first). This is the rule restore follows before a restored file takes the live path: side files left
 * by a crashed app belong to the old file and go with it into its safety copy; left in place they would be
 * replayed into the restored file (a -wal) or roll it "back" to pages of the old one (a hot -journal).
 */
export function familyMoves(fromDb: string, toDb: string): { from: string; to: string }[] {
  return familyPaths(fromDb)
    .map((from, i) => ({ from, to: familyPaths(toDb)[i]! }))
    .filter((m) => lexists(m.from));
}


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

/** The database a side-file name belongs to (`x.db-wal` -> `x.db`), or the name itself. */
export function databaseOf(name: string): string {
  const s = SQLITE_SIDE_SUFFIXES.find((x) => name.endsWith(x));
  return s ? name.slice(0, -s.length) : name;
}
