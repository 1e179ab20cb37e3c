import fs from 'node:fs';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ensurePrivateDirSync } from './nofollow.js';

/** Marker in the names of files that are being written; never a finished artifact. */
export const PARTIAL_MARK = '.partial-';

/** A hidden temporary name next to `final`, recognisable as unfinished by PARTIAL_MARK. */
export function partialName(final: string): string {
  return path.join(path.dirname(final), `.${path.basename(final)}${PARTIAL_MARK}${process.pid}-${crypto.randomBytes(3).toString('hex')}`);
}

/** True for names made by partialName (left behind only by an interrupted run). */
export function isPartialName(name: string): boolean {
  return name.startsWith('.') && name.includes(PARTIAL_MARK);
}

/**
 * Creates a private directory (0700, whatever the umask) without following links; missing parents are
 * created with their own parent's owner, so that e.g. a new data/db stays usable by the app.
 */
export async function ensurePrivateDir(dir: string, base?: string): Promise<void> {
  ensurePrivateDirSync(dir, base);
}

/** fsyncs a directory so that a rename or create inside it survives power loss. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** fsyncs a file's contents. */
export async function fsyncFile(file: string): Promise<void> {
  const fh = await fsp.open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes a small file atomically: partial name, fsync, chmod, rename, fsync directory. */
export async function writeFileAtomic(final: string, data: string | Buffer, mode = 0o600): Promise<void> {
  const tmp = partialName(final);
  const fh = await fsp.open(tmp, 'wx', mode);
  try {
    await fh.writeFile(data);
    await fh.chmod(mode);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await fsp.rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await fsp.rename(tmp, final);
  await fsyncDir(path.dirname(final));
}

/** Free bytes available to this user on the filesystem holding `p`. */
export async function freeBytes(p: string): Promise<number> {
  const s = await fsp.statfs(p);
  return Number(s.bavail) * Number(s.bsize);
}

/** True when the path exists (without following a final symlink). */
export async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Removes leftovers of interrupted runs (names made by partialName) in a directory; returns them. */
export async function removePartials(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    if (isPartialName(n)) {
      await fsp.rm(path.join(dir, n), { recursive: true, force: true });
      removed.push(n);
    }
  }
  if (removed.length) await fsyncDir(dir);
  return removed;
}

/**
 * Removes partial files (not directories) in `dir` left by runs that no longer exist (their pid is in the name):
 * for directories other runs may share, such as the project root, where removePartials would be too broad.
 * unlink removes a planted link itself, never its target.
 */
export async function removeDeadPartials(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const n of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!isPartialName(n)) continue;
    const pid = parseInt(n.slice(n.lastIndexOf(PARTIAL_MARK) + PARTIAL_MARK.length), 10);
    if (!pid || pid === process.pid || fs.existsSync(`/proc/${pid}`)) continue;
    const st = await fsp.lstat(path.join(dir, n)).catch(() => null);
    if (!st || st.isDirectory()) continue;
    await fsp.unlink(path.join(dir, n)).catch(() => {});
    removed.push(n);
  }
  return removed;
}

/** `base` + `ext` if free, else `base_2` + `ext`, `base_3` + `ext`…: safety copies never overwrite each other. */
export async function uniquePath(base: string, ext = ''): Promise<string> {
  for (let i = 1; ; i++) {
    const p = `${base}${i === 1 ? '' : `_${i}`}${ext}`;
    if (!(await exists(p))) return p;
  }
}
