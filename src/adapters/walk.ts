import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

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

/**
 * Walks a tree depth-first in sorted order with lstat only (never reading contents, never following
 * links). Synchronous on purpose: per-call cost is several times lower than the promise API's, and
 * this is the whole cost of an unchanged nightly run.
 */
export function walkTree(root: string, opts: { keepEntries?: boolean } = {}): WalkResult {
  const keep = opts.keepEntries !== false;
  const entries: WalkEntry[] = [];
  const skipped: WalkResult['skipped'] = [];
  const hash = crypto.createHash('sha256');
  let files = 0;
  let bytes = 0;
  const visit = (rel: string) => {
    const abs = rel ? path.join(root, rel) : root;
    const stat = fs.lstatSync(abs, { bigint: true });
    const type = typeOf(stat);
    const e: WalkEntry = { rel, type, mode: Number(stat.mode & 0o7777n), uid: Number(stat.uid), gid: Number(stat.gid), size: Number(stat.size), mtimeMs: Number(stat.mtimeMs), mtimeNs: stat.mtimeNs };
    if (type === 'file' && stat.nlink > 1n) e.linkKey = `${stat.dev}:${stat.ino}`;
    if (type === 'symlink') e.linkTarget = fs.readlinkSync(abs);
    if (type === 'other') {
      skipped.push({ rel, reason: stat.isSocket() ? 'socket' : stat.isFIFO() ? 'fifo' : 'device file' });
      return;
    }
    hash.update(`${rel}\0${type}\0${stat.size}\0${stat.mtimeNs}\0${stat.ctimeNs}\0${stat.ino}\0${stat.mode}\0${stat.uid}\0${stat.gid}\0${e.linkTarget ?? ''}\n`);
    if (keep) entries.push(e);
    if (type === 'file') {
      files++;
      bytes += Number(stat.size);
    }
    if (type === 'dir') {
      const names = fs.readdirSync(abs).sort();
      for (const n of names) visit(rel ? `${rel}/${n}` : n);
    }
  };
  visit('');
  return { entries, skipped, files, bytes, fingerprint: hash.digest('hex') };
}
