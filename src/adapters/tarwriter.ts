import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { CHUNK, openSink, type Compression, type Sink } from './sink.js';
import type * as Tar from 'tar';
import { ScitexError } from '../errors.js';
import type { WalkEntry } from './walk.js';

export type { Compression } from './sink.js';

/** File extension for each compression. */
export const ARCHIVE_EXT: Record<Compression, string> = { gzip: '.tar.gz', zstd: '.tar.zst', none: '.tar' };

/** Result of writing one archive. */
export interface ArchiveResult {
  size: number;
  sha256: string;
  /** Files whose size or mtime changed, or that vanished, while they were read. */
  changed: string[];
}

const BLOCK = 512;
const ZEROS = Buffer.alloc(BLOCK * 2);
const SAMPLE = 64 * 1024;
const SMALL = 256 * 1024;
/** Errors meaning the file was removed or replaced (by a directory or link) after the walk: a change, not a failure. */
const VANISHED = new Set(['ENOENT', 'ELOOP', 'EISDIR', 'ENOTDIR']);

let tar: typeof Tar | undefined;

/** Encodes a ustar header, preceded by a pax header when a field does not fit (long names, big files). */
function header(h: { path: string; type: 'File' | 'Directory' | 'SymbolicLink' | 'Link'; mode: number; uid: number; gid: number; size: number; mtime: Date; linkpath?: string }): Buffer {
  const { Header, Pax } = tar!;
  const hd = new Header({ ...h, uname: '', gname: '' });
  const needPax = hd.encode();
  if (!hd.block) throw new Error('tar header encoding failed');
  if (!needPax) return hd.block;
  return Buffer.concat([new Pax({ path: h.path, linkpath: h.linkpath, size: h.size, uid: h.uid, gid: h.gid, mtime: h.mtime }).encode(), hd.block]);
}

/** True when a sample of the file barely compresses (media, arrays, archives): store it, don't deflate it. */
function looksIncompressible(sample: Buffer): boolean {
  if (sample.length < 4096) return false;
  return zlib.deflateRawSync(sample, { level: 1 }).length > sample.length * 0.97;
}

/** Owner, mode and mtime for a header. */
const meta = (e: WalkEntry) => ({ mode: e.mode, uid: e.uid, gid: e.gid, mtime: new Date(e.mtimeMs) });

/**
 * Writes a tar archive of `entries` (from walkTree of `dir`) with member names `prefix/<rel>`,
 * streaming every file (constant memory), recording hard links once, and noting files that change
 * while read. The archive is readable by GNU tar (`tar -xzf`).
 */
export async function writeArchive(dir: string, entries: WalkEntry[], prefix: string, file: string, compression: Compression, level: number, onBytes: (n: number, files: number) => void = () => {}): Promise<ArchiveResult> {
  tar ??= await import('tar'); // loaded on first use, to keep start-up fast for other commands
  const sink = openSink(file, compression, level);
  const changed: string[] = [];
  const links = new Map<string, string>();
  try {
    for (const e of entries) {
      const name = e.rel ? `${prefix}/${e.rel}` : prefix;
      const m = meta(e);
      if (e.type === 'dir') {
        await sink.write(header({ path: name + '/', type: 'Directory', size: 0, ...m }));
      } else if (e.type === 'symlink') {
        await sink.write(header({ path: name, type: 'SymbolicLink', size: 0, linkpath: e.linkTarget, ...m }));
      } else if (e.type === 'file') {
        if (e.linkKey) {
          const first = links.get(e.linkKey);
          if (first) {
            await sink.write(header({ path: name, type: 'Link', size: 0, linkpath: first, ...m }));
            continue;
          }
          links.set(e.linkKey, name);
        }
        const abs = path.join(dir, e.rel);
        const size = e.size;
        await sink.write(header({ path: name, type: 'File', size, ...m }));
        const ok = size < SMALL ? await copySmallInto(abs, e, sink, onBytes) : await copyFileInto(abs, size, e, sink, level, onBytes);
        if (!ok) changed.push(e.rel);
        const pad = (BLOCK - (size % BLOCK)) % BLOCK;
        if (pad) await sink.write(ZEROS.subarray(0, pad));
      }
    }
    await sink.write(ZEROS);
    const r = await sink.end();
    return { ...r, changed };
  } catch (err) {
    await sink.end().catch(() => {});
    throw err;
  }
}

/** No link followed at the last component; O_NONBLOCK so a FIFO swapped in after the walk cannot hang the run. */
const READ_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;

/** Streams exactly `size` bytes of a file into the sink; false when it changed or vanished meanwhile. */
/**
 * Small files are read synchronously in one call: several times cheaper than an async open/read/close
 * round trip through the thread pool, which zlib needs for compression at the same time.
 */
async function copySmallInto(abs: string, e: WalkEntry, sink: Sink, onBytes: (n: number, files: number) => void): Promise<boolean> {
  let fd: number;
  try {
    fd = fs.openSync(abs, READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (VANISHED.has(code ?? '')) {
      await writeZeros(sink, e.size);
      return false;
    }
    throw new ScitexError(`Cannot read ${abs} (${code}).`, 'Fix its permissions (or run as a user that can read it), then re-run; nothing was published for this user.', 1, { cause: err });
  }
  let buf: Buffer;
  let after: fs.BigIntStats;
  const opened = fs.fstatSync(fd);
  if (!opened.isFile() || opened.ino !== e.ino) {
    // Replaced after the walk (by a directory, a device, or another file reached through a directory
    // swapped for a symlink): a change, and never a byte of the other file in the archive.
    fs.closeSync(fd);
    await writeZeros(sink, e.size);
    return false;
  }
  try {
    buf = Buffer.allocUnsafe(e.size);
    let n = 0;
    while (n < e.size) {
      const k = fs.readSync(fd, buf, n, e.size - n, n);
      if (k === 0) break;
      n += k;
    }
    if (n < e.size) buf.fill(0, n);
    after = fs.fstatSync(fd, { bigint: true });
    if (n < e.size) {
      await sink.write(buf);
      return false;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (e.size) await sink.write(buf);
  onBytes(e.size, 1);
  return Number(after.size) === e.size && after.mtimeNs === e.mtimeNs;
}

async function copyFileInto(abs: string, size: number, before: WalkEntry, sink: Sink, level: number, onBytes: (n: number, files: number) => void): Promise<boolean> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(abs, READ_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (VANISHED.has(code ?? '')) {
      await writeZeros(sink, size);
      return false;
    }
    throw new ScitexError(`Cannot read ${abs} (${code}).`, 'Fix its permissions (or run as a user that can read it), then re-run; nothing was published for this user.', 1, { cause: err });
  }
  const opened = await fh.stat();
  if (!opened.isFile() || opened.ino !== before.ino) {
    await fh.close(); // replaced after the walk (see copySmallInto): a change
    await writeZeros(sink, size);
    return false;
  }
  let done = 0;
  let switched = false;
  try {
    let reusable: Buffer | undefined;
    while (done < size) {
      const want = Math.min(CHUNK, size - done);
      // Only full chunks go through the reused buffer: a short one may still sit in zlib's queue.
      const buf = sink.reusesChunks && want === CHUNK ? (reusable ??= Buffer.allocUnsafe(CHUNK)) : Buffer.allocUnsafe(want);
      const { bytesRead } = await fh.read(buf, 0, want, done);
      if (bytesRead === 0) break; // shrank
      const chunk = bytesRead === want ? buf : buf.subarray(0, bytesRead);
      if (done === 0 && size >= 4 * SAMPLE && looksIncompressible(chunk.subarray(0, SAMPLE))) {
        await sink.setLevel(0);
        switched = true;
      }
      await sink.write(chunk);
      done += bytesRead;
      onBytes(bytesRead, done >= size ? 1 : 0);
    }
    const after = await fh.stat({ bigint: true });
    if (switched) await sink.setLevel(level);
    if (done < size) {
      await writeZeros(sink, size - done);
      return false;
    }
    return Number(after.size) === before.size && after.mtimeNs === before.mtimeNs;
  } finally {
    await fh.close();
  }
}

async function writeZeros(sink: Sink, n: number): Promise<void> {
  const z = Buffer.alloc(Math.min(n, CHUNK));
  while (n > 0) {
    const k = Math.min(n, z.length);
    await sink.write(z.subarray(0, k));
    n -= k;
  }
}
