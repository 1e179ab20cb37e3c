import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
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

/** Streams a file through SHA-256 and returns the hex digest. */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  return hash.digest('hex');
}

/** Lines in `sha256sum` format, so operators can check with `sha256sum -c` without us. */
export function sha256sumLine(digest: string, name: string): string {
  return `${digest}  ${name}\n`;
}

/** Parses one `sha256sum` line (text or binary mode marker). */
export function parseSha256sumLine(line: string): { digest: string; name: string } | null {
  const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
  return m ? { digest: m[1]!, name: m[2]! } : null;
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

/** UTC timestamp in the design document's backup naming: YYYYMMDD_HHMMSS. */
export function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}_${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/** Parses YYYYMMDD_HHMMSS (UTC) back into a Date, or null when it is not one. */
export function parseTimestamp(ts: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(ts);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return date.getUTCMonth() === mo - 1 && date.getUTCDate() === d ? date : null;
}

/** True when the file starts with the gzip magic bytes. */
export async function isGzip(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** `base` + `ext` if free, else `base_2` + `ext`, `base_3` + `ext`…: safety copies never overwrite each other. */
export async function uniquePath(base: string, ext = ''): Promise<string> {
  for (let i = 1; ; i++) {
    const p = `${base}${i === 1 ? '' : `_${i}`}${ext}`;
    if (!(await exists(p))) return p;
  }
}
