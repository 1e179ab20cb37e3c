import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { walkTree } from '../../adapters/walk.js';
import { ScitexError } from '../../errors.js';
import { fsyncDir, partialName } from '../fs/atomic.js';
import { sha256File } from '../fs/hash.js';

const run = promisify(execFile);
const madeDirs = new Set<string>();

/** Content fingerprint of a tree: every path, type, mode, owner, size, link target and file hash. */
async function treeDigest(abs: string): Promise<string> {
  const st = fs.lstatSync(abs);
  if (!st.isDirectory()) return st.isFile() ? `${st.size}:${await sha256File(abs)}` : `link:${fs.readlinkSync(abs)}`;
  const parts: string[] = [];
  for (const e of walkTree(abs).entries) {
    const m = `${e.rel}|${e.type}|${e.mode}|${e.uid}|${e.gid}|${e.linkTarget ?? ''}`;
    parts.push(e.type === 'file' ? `${m}|${e.size}|${await sha256File(path.join(abs, e.rel))}` : m);
  }
  return parts.join('\n');
}

/**
 * Moves src to dst: one atomic rename on the same filesystem; across filesystems a `cp -a` to a
 * hidden partial name, a full content comparison, a rename into place, and only then removal of src.
 */
export async function moveEntry(src: string, dst: string): Promise<void> {
  // Synchronous on purpose: a rename takes microseconds, while a thread-pool round trip per call
  // made a 10,000-user migration mostly waiting.
  if (!madeDirs.has(path.dirname(dst))) {
    fs.mkdirSync(path.dirname(dst), { recursive: true });
    madeDirs.add(path.dirname(dst));
  }
  try {
    fs.renameSync(src, dst);
    return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
  }
  const tmp = partialName(dst);
  try {
    // GNU cp -a keeps modes, owners, timestamps, links and hard links; we check the result ourselves.
    await run('cp', ['-a', '--', src, tmp]);
    if ((await treeDigest(src)) !== (await treeDigest(tmp))) {
      throw new ScitexError(`The copy of ${src} differs from the original.`, 'Nothing was removed; check the destination filesystem and re-run.');
    }
    await fsp.rename(tmp, dst);
    await fsyncDir(path.dirname(dst));
  } catch (err) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw err;
  }
  await fsp.rm(src, { recursive: true, force: true });
}

/** After an interruption both may exist only if a cross-device copy was renamed in but src not yet removed. */
export async function sameContent(a: string, b: string): Promise<boolean> {
  return (await treeDigest(a)) === (await treeDigest(b));
}
