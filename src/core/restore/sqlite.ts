import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { checkDatabase, headerJournalMode, isSqliteFile, setJournalMode } from '../../adapters/sqlite.js';
import { openFilesOf } from '../../adapters/procfs.js';
import { ScitexError } from '../../errors.js';
import { fsyncDir, partialName, removePartials } from '../fs/atomic.js';
import { isGzip } from '../fs/hash.js';
import { timestamp } from '../time.js';
import type { Logger } from '../logger.js';
import { describeSafety, type DbRestoreOptions, type DbRestoreResult } from './types.js';
import { familyMoves, familyPaths, freeFamilyName, irregularMember } from '../sqlite/rules.js';
import { sideFilePaths } from '../../adapters/sqlite.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;

/** Owner, group and permission bits of a file. */
export interface FileIdentity {
  uid: number;
  gid: number;
  mode: number;
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

/**
 * The owner, group and mode a restored database takes. Replacing a file: exactly its own (the app runs as
 * that user). No live file: owner and group of the directory (the app's: init and migrate leave
 * data/db/sqlite to it) with mode 0640, since a database holds password hashes and tokens; 0660 when the
 * directory is group-writable, as a group that may create the side files must also write the database.
 */
export function restoredIdentity(target: string): FileIdentity {
  const live = lstatOrNull(target);
  if (live?.isFile()) return { uid: live.uid, gid: live.gid, mode: live.mode & 0o777 };
  const dir = fs.statSync(path.dirname(target));
  return { uid: dir.uid, gid: dir.gid, mode: dir.mode & 0o020 ? 0o660 : 0o640 };
}

/** Refuses a live path (or a side file of it, or its directory) that is a symlink or not a regular file. */
function refuseIrregular(target: string): void {
  const dir = lstatOrNull(path.dirname(target));
  const bad = dir && !dir.isDirectory() ? { path: path.dirname(target), what: dir.isSymbolicLink() ? 'a symbolic link' : 'not a directory' } : irregularMember(target);
  if (bad) {
    throw new ScitexError(
      `${bad.path} is ${bad.what}: restore writes only regular files in a real directory and never follows a link under data/.`,
      'Check where it points and who made it, remove it, then re-run. Nothing was changed.',
    );
  }
}

/**
 * Restores a SQLite backup over `target`. The current database is never opened: its file and whatever side
 * files it has (even when the file is corrupt or missing) are kept together as the safety copy, by hard
 * links made before anything at the live path changes, so a stale -wal or hot -journal can never be replayed
 * into the restored file. The swap itself is one rename; only when the old file had side files is there a
 * moment (between unlinking them and that rename) where the live path holds the old file without them; the
 * complete old database is already in the safety copy then.
 */
export async function restoreSqlite(target: string, file: string, log: Logger, opts: DbRestoreOptions): Promise<DbRestoreResult> {
  refuseIrregular(target);
  const present = familyPaths(target).some((p) => lstatOrNull(p));
  const base = path.join(path.dirname(target), `${path.basename(target, '.db')}_pre_restore_${timestamp()}`);
  const safety = present ? (opts.safetyName ?? freeFamilyName(base, '.db')) : null;
  const moves = safety ? familyMoves(target, safety) : [];
  const result: DbRestoreResult = { backup: file, kind: 'sqlite', target, safetyCopy: safety, safetyFiles: moves.map((m) => m.to), dryRun: !!opts.dryRun };
  if (opts.dryRun) return result;
  const taken = moves.find((m) => lstatOrNull(m.to));
  if (taken) throw new ScitexError(`${taken.to} appeared after the plan was made.`, 'Check who made it; nothing was changed. Re-run the restore.');
  const holders = openFilesOf(familyPaths(target));
  if (holders.length) {
    throw new ScitexError(`${target} is open by ${holders.map((h) => `pid ${h.pid} (${h.command})`).join(', ')}.`, 'Stop the app (or those processes) first, then re-run the restore.');
  }
  const dir = path.dirname(target);
  await ensureDirLikeParent(dir);
  // Temp files of an interrupted restore (we hold the lock, so none is in use).
  for (const n of await removePartials(dir)) log.debug(`removed leftover ${n}`);
  const identity = restoredIdentity(target);
  const tmp = partialName(target);
  try {
    await writeNew(file, tmp);
    if (!isSqliteFile(tmp)) throw new ScitexError(`${path.basename(file)} is not a SQLite database.`, 'Nothing was changed.');
    const problems = checkDatabase(tmp, true);
    if (problems.length) throw new ScitexError(`${path.basename(file)} fails PRAGMA integrity_check: ${problems[0]}.`, 'Nothing was changed. Restore an older backup with --from or --at.');
    // Keep the live database's journal mode (the app may rely on WAL), read from its header bytes only:
    // the live file may be corrupt. Backups are stored in DELETE mode.
    if (headerJournalMode(target) === 'wal') setJournalMode(tmp, 'wal');
    await setIdentity(tmp, identity);
    const renamed = await keepAside(moves);
    const kept = describeSafety(result);
    if (kept) log.info(`kept ${kept}`);
    // Side files of the live path go before the restored file arrives (the rule in sqliterules.ts).
    if (!renamed) for (const m of moves) if (m.from !== target) await fsp.unlink(m.from);
    await fsp.rename(tmp, target);
    await fsyncDir(dir);
  } finally {
    for (const f of [tmp, ...sideFilePaths(tmp)]) await fsp.rm(f, { force: true });
  }
  return result;
}

/** Copies (gunzipping if needed) the backup into a new private file that must not exist yet. */
async function writeNew(file: string, tmp: string): Promise<void> {
  const fh = await fsp.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  const out = fh.createWriteStream(); // closes the handle when done
  if (await isGzip(file)) await pipeline(fs.createReadStream(file), zlib.createGunzip(), out);
  else await pipeline(fs.createReadStream(file), out);
}

/** Gives the new file its owner, group and mode through a handle (no path lookup to redirect), and syncs it. */
async function setIdentity(tmp: string, id: FileIdentity): Promise<void> {
  const fh = await fsp.open(tmp, O_RDWR | O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (st.uid !== id.uid || st.gid !== id.gid) {
      await fh.chown(id.uid, id.gid).catch((err: NodeJS.ErrnoException) => {
        throw new ScitexError(`Cannot give the restored database the owner ${id.uid}:${id.gid} of the file it replaces (${err.code}).`, 'Run the restore as root or as the owner of the database. Nothing was changed.', 1, { cause: err });
      });
    }
    await fh.chmod(id.mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Makes the safety copy: a hard link per family member, so the live path keeps its file until the swap
 * (link never follows a symlink and fails on any existing name). Where the filesystem has no hard links,
 * the members are renamed instead; returns true then.
 */
async function keepAside(moves: { from: string; to: string }[]): Promise<boolean> {
  const made: string[] = [];
  try {
    for (const m of moves) {
      await fsp.link(m.from, m.to);
      made.push(m.to);
    }
  } catch (err) {
    for (const p of made) await fsp.unlink(p).catch(() => {});
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK', 'EXDEV'].includes(code)) {
      throw new ScitexError(`Cannot keep the current database aside: ${(err as Error).message}.`, 'Nothing was changed. Check the directory, then re-run.', 1, { cause: err });
    }
    for (const m of moves) {
      if (lstatOrNull(m.to)) throw new ScitexError(`${m.to} appeared during the restore.`, 'Check who made it, then re-run.');
      await fsp.rename(m.from, m.to);
    }
    if (moves.length) await fsyncDir(path.dirname(moves[0]!.to));
    return true;
  }
  if (moves.length) await fsyncDir(path.dirname(moves[0]!.to));
  return false;
}

/** Creates a missing directory (and parents) with the owner and group of its parent and mode 0755. */
async function ensureDirLikeParent(dir: string): Promise<void> {
  const st = lstatOrNull(dir);
  if (st) return;
  const parent = path.dirname(dir);
  await ensureDirLikeParent(parent);
  const p = await fsp.stat(parent);
  await fsp.mkdir(dir, { mode: 0o700 });
  // Through a handle opened without following links: the parent may be writable by the app user.
  const fh = await fsp.open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  try {
    await fh.chown(p.uid, p.gid);
    await fh.chmod(0o755);
  } finally {
    await fh.close();
  }
}
