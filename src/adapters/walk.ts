import crypto from 'node:crypto';
import fs from 'node:fs';

/** One filesystem entry of a user tree, as lstat saw it; compact, since trees hold 100,000s of files. */
export interface WalkEntry {
  /** Path relative to the walked directory, '/'-separated; '' for the directory itself. */
  rel: string;
  type: 'dir' | 'file' | 'symlink' | 'other';
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  /** Nanosecond mtime, to notice a file rewritten while it was read. */
  mtimeNs: bigint;
  /** Inode number: a file opened later for reading must still be this one (not something swapped in). */
  ino: number;
  /** `dev:ino` when the file has other hard links, so the archive stores it once. */
  linkKey?: string;
  linkTarget?: string;
}

/** Result of walking a tree: the entries in archive order and a metadata fingerprint. */
export interface WalkResult {
  entries: WalkEntry[];
  skipped: { rel: string; reason: string }[];
  files: number;
  bytes: number;
  /** SHA-256 over every entry's path, type, size, mtime, ctime, inode, mode, owner and link target. */
  fingerprint: string;
}

const typeOf = (s: fs.BigIntStats): WalkEntry['type'] => (s.isDirectory() ? 'dir' : s.isFile() ? 'file' : s.isSymbolicLink() ? 'symlink' : 'other');

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = fs.constants;
/** `/proc/<pid>/fd/`: a directory open at fd N is named `${FD_DIR}N`, whatever was renamed since. */
const FD_DIR = `/proc/${process.pid}/fd/`;

/**
 * Walks a tree depth-first in sorted order with lstat only (never reading contents, never following
 * links). Every directory is opened without following a link and its children are named through that
 * descriptor, so swapping a directory for a symlink mid-walk cannot steer the walk out of the tree (the
 * app's user can do that: scitex-data often runs as root). A directory swapped between its lstat and its
 * open is recorded as the directory it was (a change the caller's re-check notices), never followed.
 * Synchronous on purpose: per-call cost is several times lower than the promise API's, and this is the
 * whole cost of an unchanged nightly run.
 */
export function walkTree(root: string, opts: { keepEntries?: boolean } = {}): WalkResult {
  const keep = opts.keepEntries !== false;
  const entries: WalkEntry[] = [];
  const skipped: WalkResult['skipped'] = [];
  const hash = crypto.createHash('sha256');
  let files = 0;
  let bytes = 0;
  const record = (rel: string, stat: fs.BigIntStats, linkTarget?: string): boolean => {
    const type = typeOf(stat);
    const e: WalkEntry = { rel, type, mode: Number(stat.mode & 0o7777n), uid: Number(stat.uid), gid: Number(stat.gid), size: Number(stat.size), mtimeMs: Number(stat.mtimeMs), mtimeNs: stat.mtimeNs, ino: Number(stat.ino) };
    if (type === 'file' && stat.nlink > 1n) e.linkKey = `${stat.dev}:${stat.ino}`;
    if (linkTarget !== undefined) e.linkTarget = linkTarget;
    if (type === 'other') {
      skipped.push({ rel, reason: stat.isSocket() ? 'socket' : stat.isFIFO() ? 'fifo' : 'device file' });
      return false;
    }
    hash.update(`${rel}\0${type}\0${stat.size}\0${stat.mtimeNs}\0${stat.ctimeNs}\0${stat.ino}\0${stat.mode}\0${stat.uid}\0${stat.gid}\0${e.linkTarget ?? ''}\n`);
    if (keep) entries.push(e);
    if (type === 'file') {
      files++;
      bytes += Number(stat.size);
    }
    return true;
  };
  const openDir = (p: string, expect?: fs.BigIntStats): number | null => {
    let fd: number;
    try {
      fd = fs.openSync(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOTDIR' || code === 'ELOOP' || code === 'ENOENT')) return null; // replaced meanwhile
      throw err;
    }
    const st = fs.fstatSync(fd, { bigint: true });
    if (expect && (st.ino !== expect.ino || st.dev !== expect.dev)) {
      fs.closeSync(fd); // swapped for another directory between lstat and open: not ours to descend into
      return null;
    }
    return fd;
  };
  const visitDir = (fd: number, rel: string) => {
    const base = FD_DIR + fd;
    for (const n of fs.readdirSync(base).sort()) {
      const childRel = rel ? `${rel}/${n}` : n;
      const p = `${base}/${n}`;
      let stat: fs.BigIntStats;
      try {
        stat = fs.lstatSync(p, { bigint: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
        throw err;
      }
      let target: string | undefined;
      if (stat.isSymbolicLink()) {
        try {
          target = fs.readlinkSync(p);
        } catch (err) {
          // Swapped for something else between lstat and readlink: a change (the caller's re-check sees
          // the fingerprint move), recorded as such rather than a failed run.
          const code = (err as NodeJS.ErrnoException).code;
          if (code !== 'EINVAL' && code !== 'ENOENT') throw err;
          hash.update(`${childRel}\0changed during the walk\n`);
          continue;
        }
      }
      if (!record(childRel, stat, target) || !stat.isDirectory()) continue;
      const child = openDir(p, stat);
      if (child === null) continue;
      try {
        visitDir(child, childRel);
      } finally {
        fs.closeSync(child);
      }
    }
  };
  const top = openDir(root);
  if (top === null) {
    // The walked path is a link or a file (e.g. swapped since it was listed): recorded as what it is, not followed.
    const st = fs.lstatSync(root, { bigint: true });
    record('', st, st.isSymbolicLink() ? fs.readlinkSync(root) : undefined);
    return { entries, skipped, files, bytes, fingerprint: hash.digest('hex') };
  }
  try {
    record('', fs.fstatSync(top, { bigint: true }));
    visitDir(top, '');
  } finally {
    fs.closeSync(top);
  }
  return { entries, skipped, files, bytes, fingerprint: hash.digest('hex') };
}
