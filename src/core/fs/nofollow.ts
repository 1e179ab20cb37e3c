import fs from 'node:fs';
import path from 'node:path';
import { ScitexError } from '../../errors.js';

/**
 * Filesystem operations that no link planted by the app user can redirect.
 * scitex-data usually runs as root while the app's own user can write `data/`: that user can replace any
 * directory or file there by a symlink at any instant. So everything we write, chmod or delete under `data/`
 * is either opened with O_NOFOLLOW, or reached through a directory we opened without following links and
 * then name by its descriptor (`/proc/<pid>/fd/<n>/...`, Linux's openat for a language without openat).
 */

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;

/** Raised when a path that must be a real directory or file is a symlink (or another type). */
export class PlantedLinkError extends ScitexError {
  constructor(p: string, what = 'a real directory') {
    super(`${p} is not ${what} (a symlink or other file is in its place); refusing to follow it.`, 'Someone with write access to data/ put it there: inspect it, remove it, then re-run.');
  }
}

/** Opens a directory without following a symlink at its last component; throws PlantedLinkError. */
export function openDirNoFollow(dir: string): number {
  try {
    return fs.openSync(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'ELOOP') throw new PlantedLinkError(dir);
    throw err;
  }
}

/** A path naming the directory open at `fd` (plus `names` below it), whatever is later planted at its old path. */
export function anchored(fd: number, ...names: string[]): string {
  return path.join(`/proc/${process.pid}/fd/${fd}`, ...names);
}

/** Throws PlantedLinkError unless every existing component of `target` strictly below `base` is a real directory. */
export function assertNoLinkBelow(base: string, target: string): void {
  const rel = path.relative(base, target);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return; // outside the hostile tree: the operator's own paths
  let p = base;
  for (const part of rel.split(path.sep).filter(Boolean)) {
    p = path.join(p, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      return; // the rest does not exist yet
    }
    if (!st.isDirectory()) throw new PlantedLinkError(p);
  }
}

/** True when we can give files away (root): only then do owners need carrying over. */
export const canChown = (): boolean => typeof process.geteuid === 'function' && process.geteuid() === 0;

/**
 * Creates one directory level without following links and, when run as root, gives it the owner and
 * group of its parent, so that directories we create inside the app's `data/` stay the app's.
 * Returns false when it already existed as a real directory.
 */
export function mkdirLikeParent(dir: string, mode = 0o755): boolean {
  try {
    fs.mkdirSync(dir, { mode });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (!fs.lstatSync(dir).isDirectory()) throw new PlantedLinkError(dir);
    return false;
  }
  const fd = openDirNoFollow(dir);
  try {
    fs.fchmodSync(fd, mode); // whatever the umask
    const parent = fs.statSync(path.dirname(dir));
    const st = fs.fstatSync(fd);
    if (canChown() && (st.uid !== parent.uid || st.gid !== parent.gid)) fs.fchownSync(fd, parent.uid, parent.gid);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** `mkdir -p` below `base` with mkdirLikeParent for each missing level; returns the directories created. */
export function mkdirsLikeParent(base: string, dir: string, mode = 0o755): string[] {
  assertNoLinkBelow(base, dir);
  const missing: string[] = [];
  for (let p = dir; !fs.existsSync(p) && p !== path.dirname(p); p = path.dirname(p)) missing.unshift(p);
  const created: string[] = [];
  for (const p of missing) if (mkdirLikeParent(p, mode)) created.push(p);
  assertNoLinkBelow(base, dir);
  return created;
}

/**
 * A private directory of ours (backups, staging): created 0700 by whoever runs us, or, when it exists,
 * checked to be a real directory and made 0700. Its missing parents are created like their parent.
 */
export function ensurePrivateDirSync(dir: string, base = path.dirname(dir)): void {
  mkdirsLikeParent(base, path.dirname(dir));
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const fd = openDirNoFollow(dir);
  try {
    if ((fs.fstatSync(fd).mode & 0o7777) !== 0o700) fs.fchmodSync(fd, 0o700);
  } finally {
    fs.closeSync(fd);
  }
}

/** Owner, group and permission bits of a file (without following a link), or null when it is absent. */
export function ownershipOf(p: string): { uid: number; gid: number; mode: number } | null {
  try {
    const st = fs.lstatSync(p);
    return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
  } catch {
    return null;
  }
}

/** A directory held open without following links; `path` names it through the descriptor until close(). */
export interface AnchoredDir {
  fd: number;
  path: string;
  close(): void;
}

/** Opens a real directory (no link at any component below `base`) and returns its anchored path. */
export function anchorDir(dir: string, base = path.dirname(dir)): AnchoredDir {
  assertNoLinkBelow(base, dir);
  const fd = openDirNoFollow(dir);
  let open = true;
  return { fd, path: anchored(fd), close: () => { if (open) fs.closeSync(fd); open = false; } };
}

/**
 * Our private working directory inside a directory the app writes (e.g. data/users/.~scitex-data): created
 * 0700, refused when someone else owns it or it is not a real directory (the app's user may have planted
 * it to make a root run chmod, fill or delete something else), and anchored for every later use.
 */
export function anchorPrivateWorkDir(parent: AnchoredDir | string, name: string): AnchoredDir {
  const parentPath = typeof parent === 'string' ? parent : parent.path;
  const dir = path.join(parentPath, name);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const fd = openDirNoFollow(dir);
  const st = fs.fstatSync(fd);
  const me = typeof process.geteuid === 'function' ? process.geteuid() : st.uid;
  if (st.uid !== me) {
    fs.closeSync(fd);
    throw new PlantedLinkError(dir, `our own directory (it belongs to uid ${st.uid})`);
  }
  if ((st.mode & 0o7777) !== 0o700) fs.fchmodSync(fd, 0o700);
  let open = true;
  return { fd, path: anchored(fd), close: () => { if (open) fs.closeSync(fd); open = false; } };
}
