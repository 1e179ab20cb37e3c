import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { CHUNK, openSink, type Compression, type Sink } from './sink.js';
import { ScitexError } from '../errors.js';
import type { WalkEntry } from './walk.js';

export type { Compression } from './sink.js';

/** File extension for each compression. */
export const ARCHIVE_EXT: Record<Compression, string> = { gzip: '.tar.gz', zstd: '.tar.zst', none: '.tar' };

/** Result of writing one archive. */
export interface ArchiveResult {
  size: number;
  sha256: string;
  /** Sealed archives (age-encrypted while written): size and SHA-256 of the archive before encryption. */
  plain?: { size: number; sha256: string };
  /** Files whose size or mtime changed, or that vanished, while they were read. */
  changed: string[];
}

const BLOCK = 512;
const SAMPLE = 64 * 1024;
/** Files from this size on are read through the thread pool, so a slow disk never stalls the other archives. */
const BIG = 256 * 1024;
/** Errors meaning the file was removed or replaced (by a directory or link) after the walk: a change, not a failure. */
const VANISHED = new Set(['ENOENT', 'ELOOP', 'EISDIR', 'ENOTDIR']);
/** No link followed at the last component; O_NONBLOCK so a FIFO swapped in after the walk cannot hang the run. */
const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const TYPEFLAG = { File: 0x30, Link: 0x31, SymbolicLink: 0x32, Directory: 0x35 } as const;

interface Head {
  path: string;
  type: keyof typeof TYPEFLAG;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkpath?: string;
}

/** Writes `v` as a NUL-terminated octal field of `len` bytes; false when it does not fit. */
function octal(b: Buffer, off: number, len: number, v: number): boolean {
  const s = Math.max(0, Math.floor(v)).toString(8);
  if (s.length > len - 1 || v < 0) return false;
  b.write(s.padStart(len - 1, '0'), off, 'latin1');
  b[off + len - 1] = 0;
  return true;
}

/** One POSIX ustar header block at b[off..off+512]; returns the pax records needed for what does not fit. */
function ustar(b: Buffer, off: number, h: Head, flag: number): string[] {
  b.fill(0, off, off + BLOCK);
  const pax: string[] = [];
  const name = Buffer.from(h.path);
  if (name.length <= 100) name.copy(b, off);
  else {
    // prefix (up to 155 bytes) + '/' + name (1 to 100 bytes), split at a slash; else a pax path.
    let cut = -1;
    for (let i = Math.max(0, name.length - 101); i < Math.min(name.length - 1, 156); i++) if (name[i] === 0x2f) { cut = i; break; }
    if (cut > 0) {
      name.copy(b, off + 345, 0, cut);
      name.copy(b, off, cut + 1);
    } else {
      name.copy(b, off, 0, 100);
      pax.push(`path=${h.path}`);
    }
  }
  octal(b, off + 100, 8, h.mode & 0o7777);
  if (!octal(b, off + 108, 8, h.uid)) pax.push(`uid=${h.uid}`);
  if (!octal(b, off + 116, 8, h.gid)) pax.push(`gid=${h.gid}`);
  if (!octal(b, off + 124, 12, h.size)) pax.push(`size=${h.size}`);
  if (!octal(b, off + 136, 12, h.mtime)) pax.push(`mtime=${h.mtime}`);
  b[off + 156] = flag;
  if (h.linkpath !== undefined) {
    const l = Buffer.from(h.linkpath);
    if (l.length <= 100) l.copy(b, off + 157);
    else {
      l.copy(b, off + 157, 0, 100);
      pax.push(`linkpath=${h.linkpath}`);
    }
  }
  b.write('ustar\u000000', off + 257, 'latin1');
  b.fill(0x20, off + 148, off + 156);
  let sum = 0;
  for (let i = off; i < off + BLOCK; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\u0000 ', off + 148, 'latin1');
  return pax;
}

/** Puts `src` into the sink at its current position, across blocks. */
async function put(sink: Sink, src: Buffer): Promise<void> {
  for (let off = 0; off < src.length; ) {
    if (sink.pos === CHUNK) await sink.flush();
    const n = src.copy(sink.buf, sink.pos, off);
    sink.pos += n;
    off += n;
  }
}

/** Puts `n` zero bytes into the sink (padding, or the bytes of a file that vanished). */
async function zeros(sink: Sink, n: number): Promise<void> {
  while (n > 0) {
    if (sink.pos === CHUNK) await sink.flush();
    const k = Math.min(n, CHUNK - sink.pos);
    sink.buf.fill(0, sink.pos, sink.pos + k);
    sink.pos += k;
    n -= k;
  }
}

/** Encodes a member's header (preceded by a pax header when a field does not fit) into the sink. */
async function header(sink: Sink, h: Head): Promise<void> {
  await sink.reserve(BLOCK);
  const at = sink.pos;
  const pax = ustar(sink.buf, at, h, TYPEFLAG[h.type]);
  if (!pax.length) {
    sink.pos += BLOCK;
    return;
  }
  const body = Buffer.from(pax.map(record).join(''));
  const head = Buffer.alloc(BLOCK);
  ustar(head, 0, { path: 'PaxHeader/' + path.posix.basename(h.path).slice(0, 80), type: 'File', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: Math.max(0, Math.min(h.mtime, 0o77777777777)) }, 0x78);
  const member = sink.buf.subarray(at, at + BLOCK);
  const saved = Buffer.from(member);
  await put(sink, head);
  await put(sink, body);
  await zeros(sink, (BLOCK - (body.length % BLOCK)) % BLOCK);
  await put(sink, saved);
}

/** A pax record: "<length> key=value\n", the length counting itself. */
function record(kv: string): string {
  const n = Buffer.byteLength(kv) + 2;
  let len = n + String(n).length;
  if (String(len).length !== String(n).length) len = n + String(len).length;
  return `${len} ${kv}\n`;
}

/** True when a sample of the file barely compresses (media, arrays, archives): store it, don't deflate it. */
function looksIncompressible(sample: Buffer): boolean {
  if (sample.length < 4096) return false;
  return zlib.deflateRawSync(sample, { level: 1 }).length > sample.length * 0.97;
}

/**
 * Writes a tar archive of `entries` (from walkTree of `dir`) with member names `prefix/<rel>`,
 * streaming every file (constant memory), recording hard links once, and noting files that change
 * while read. The archive is readable by GNU tar (`tar -xzf`).
 */
export async function writeArchive(dir: string, entries: WalkEntry[], prefix: string, file: string, compression: Compression, level: number, onBytes: (n: number, files: number) => void = () => {}, recipients: string[] = []): Promise<ArchiveResult> {
  const sink = openSink(file, compression, level, recipients);
  const changed: string[] = [];
  const links = new Map<string, string>();
  try {
    for (const e of entries) {
      const name = e.rel ? `${prefix}/${e.rel}` : prefix;
      const m = { mode: e.mode, uid: e.uid, gid: e.gid, mtime: Math.floor(e.mtimeMs / 1000) };
      if (e.type === 'dir') {
        await header(sink, { path: name + '/', type: 'Directory', size: 0, ...m });
      } else if (e.type === 'symlink') {
        await header(sink, { path: name, type: 'SymbolicLink', size: 0, linkpath: e.linkTarget, ...m });
      } else if (e.type === 'file') {
        if (e.linkKey) {
          const first = links.get(e.linkKey);
          if (first) {
            await header(sink, { path: name, type: 'Link', size: 0, linkpath: first, ...m });
            continue;
          }
          links.set(e.linkKey, name);
        }
        await header(sink, { path: name, type: 'File', size: e.size, ...m });
        if (!(await copyInto(path.join(dir, e.rel), e, sink, compression === 'gzip' ? level : -1, onBytes))) changed.push(e.rel);
        await zeros(sink, (BLOCK - (e.size % BLOCK)) % BLOCK);
      }
    }
    await zeros(sink, 2 * BLOCK);
    const r = await sink.end();
    return { ...r, changed };
  } catch (err) {
    await sink.end().catch(() => {});
    throw err;
  }
}

const readAsync = (fd: number, b: Buffer, off: number, n: number, pos: number) => new Promise<number>((resolve, reject) => fs.read(fd, b, off, n, pos, (e, k) => (e ? reject(e) : resolve(k))));

/**
 * Reads exactly `e.size` bytes of the file straight into the sink's blocks; false when it changed or
 * vanished meanwhile. The file is read only if it is still the inode the walk saw (never a byte of a
 * file swapped in, e.g. through a directory replaced by a symlink). `gzipLevel` >= 0: a large file whose
 * start barely compresses is stored in blocks of its own.
 */
async function copyInto(abs: string, e: WalkEntry, sink: Sink, gzipLevel: number, onBytes: (n: number, files: number) => void): Promise<boolean> {
  let fd: number;
  try {
    fd = fs.openSync(abs, READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (VANISHED.has(code ?? '')) {
      await zeros(sink, e.size);
      return false;
    }
    throw new ScitexError(`Cannot read ${abs} (${code}).`, 'Fix its permissions (or run as a user that can read it), then re-run; nothing was published for this user.', 1, { cause: err });
  }
  let done = 0;
  let switched = false;
  try {
    const opened = fs.fstatSync(fd);
    if (!opened.isFile() || opened.ino !== e.ino) {
      await zeros(sink, e.size); // replaced after the walk: a change
      return false;
    }
    while (done < e.size) {
      if (sink.pos === CHUNK) await sink.flush();
      const want = Math.min(CHUNK - sink.pos, e.size - done);
      if (done === 0 && gzipLevel > 0 && e.size >= 4 * SAMPLE) {
        const sample = Buffer.allocUnsafe(SAMPLE);
        if (looksIncompressible(sample.subarray(0, fs.readSync(fd, sample, 0, SAMPLE, 0)))) {
          await sink.setLevel(0);
          switched = true;
        }
      }
      const k = e.size - done >= BIG ? await readAsync(fd, sink.buf, sink.pos, want, done) : fs.readSync(fd, sink.buf, sink.pos, want, done);
      if (k === 0) break; // shrank
      sink.pos += k;
      done += k;
      if (e.size >= BIG) onBytes(k, done >= e.size ? 1 : 0);
    }
    const after = fs.fstatSync(fd, { bigint: true });
    if (e.size < BIG) onBytes(done, 1);
    if (switched) await sink.setLevel(gzipLevel);
    if (done < e.size) {
      await zeros(sink, e.size - done);
      return false;
    }
    return Number(after.size) === e.size && after.mtimeNs === e.mtimeNs;
  } finally {
    fs.closeSync(fd);
  }
}
