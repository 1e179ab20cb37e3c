import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import zlib from 'node:zlib';
import type * as Tar from 'tar';
import { ScitexError } from '../core/errors.js';
import type { WalkEntry } from './walk.js';

/** Compression of user archives. */
export type Compression = 'gzip' | 'zstd' | 'none';

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
const CHUNK = 1 << 20;
const SMALL = 256 * 1024;

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

/** A sink that compresses, hashes and writes to `file`, finishing only when the file is fully written. */
interface Sink {
  write(b: Buffer): Promise<void>;
  /** Switch the deflate level for what follows (gzip only; a no-op otherwise). */
  setLevel(level: number): Promise<void>;
  end(): Promise<{ size: number; sha256: string }>;
  /**
   * True when a full CHUNK passed to write() has been consumed once write() resolves (gzip: zlib has
   * processed it before 'drain'), so the caller may refill the same buffer. Reusing it keeps memory
   * flat: fresh 1 MiB buffers per chunk pile up as external memory between garbage collections.
   */
  reusesChunks: boolean;
}

/** Waits for a writable to drain, or rejects on its error. */
function drained(w: Writable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      w.off('error', onErr);
      resolve();
    };
    const onErr = (e: Error) => {
      w.off('drain', onDrain);
      reject(e);
    };
    w.once('drain', onDrain);
    w.once('error', onErr);
  });
}

/**
 * Opens the output. gzip output is a series of gzip members (RFC 1952 allows concatenation; GNU tar,
 * gunzip and node-tar read it as one stream): a new member starts whenever the level changes, which is
 * how incompressible files are stored instead of deflated (zlib's deflateParams did not take effect).
 */
function openSink(file: string, compression: Compression, level: number): Sink {
  if (compression === 'zstd') return openZstdSink(file, level);
  const out = fs.createWriteStream(file, { mode: 0o600, highWaterMark: CHUNK });
  const hash = crypto.createHash('sha256');
  let size = 0;
  let failure: Error | undefined;
  out.on('error', (e) => (failure ??= e));
  const emit = async (c: Buffer) => {
    hash.update(c);
    size += c.length;
    if (!out.write(c)) await drained(out);
  };
  // Each compressor is a Transform whose output we forward in order; `current` is the one being fed.
  let current: { input: Writable; done: Promise<void> } | undefined;
  const start = (lvl: number): { input: Writable; done: Promise<void> } => {
    if (compression === 'gzip') {
      const gz = zlib.createGzip({ level: lvl, chunkSize: CHUNK, memLevel: 9 });
      const done = (async () => {
        for await (const c of gz) await emit(c as Buffer);
      })();
      done.catch((e) => (failure ??= e));
      return { input: gz, done };
    }
    const pass = new PassThrough({ highWaterMark: CHUNK });
    const done = (async () => {
      for await (const c of pass) await emit(c as Buffer);
    })();
    done.catch((e) => (failure ??= e));
    return { input: pass, done };
  };
  const finish = async () => {
    if (!current) return;
    const c = current;
    current = undefined;
    c.input.end();
    await c.done;
  };
  let currentLevel = level;
  current = start(level);
  return {
    async write(b) {
      if (failure) throw failure;
      if (!current!.input.write(b)) await drained(current!.input); // (racing `done` here would pile up reactions on it)
      if (failure) throw failure;
    },
    reusesChunks: compression === 'gzip',
    async setLevel(l) {
      if (compression !== 'gzip' || l === currentLevel) return;
      await finish();
      currentLevel = l;
      current = start(l);
    },
    async end() {
      await finish();
      if (failure) throw failure;
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
      if (failure) throw failure;
      return { size, sha256: hash.digest('hex') };
    },
  };
}

/**
 * zstd writes the file itself (`-o`): piping its output back through Node cost more CPU than the
 * compression. The checksum is then read back from the page cache.
 */
function openZstdSink(file: string, level: number): Sink {
  const child = spawn('zstd', ['-q', '-f', `-${level}`, '-T1', '-o', file], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  let failure: Error | undefined;
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new ScitexError('zstd is not installed.', 'Install it (Debian: apt-get install zstd) or use --compression gzip.') : e));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`zstd failed: ${err.trim() || `exit ${code}`}`))));
  });
  exited.catch((e) => (failure ??= e));
  child.stdin!.on('error', (e) => (failure ??= e));
  return {
    async write(b) {
      if (failure) throw failure;
      if (!child.stdin!.write(b)) await drained(child.stdin!);
      if (failure) throw failure;
    },
    reusesChunks: false,
    async setLevel() {},
    async end() {
      child.stdin!.end();
      await exited;
      await fsp.chmod(file, 0o600);
      const hash = crypto.createHash('sha256');
      let size = 0;
      for await (const c of fs.createReadStream(file, { highWaterMark: CHUNK })) {
        hash.update(c as Buffer);
        size += (c as Buffer).length;
      }
      return { size, sha256: hash.digest('hex') };
    },
  };
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

/** Streams exactly `size` bytes of a file into the sink; false when it changed or vanished meanwhile. */
/**
 * Small files are read synchronously in one call: several times cheaper than an async open/read/close
 * round trip through the thread pool, which zlib needs for compression at the same time.
 */
async function copySmallInto(abs: string, e: WalkEntry, sink: Sink, onBytes: (n: number, files: number) => void): Promise<boolean> {
  let fd: number;
  try {
    fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') {
      await writeZeros(sink, e.size);
      return false;
    }
    throw new ScitexError(`Cannot read ${abs} (${code}).`, 'Fix its permissions (or run as a user that can read it), then re-run; nothing was published for this user.', 1, { cause: err });
  }
  let buf: Buffer;
  let after: fs.BigIntStats;
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
    fh = await fsp.open(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') {
      await writeZeros(sink, size);
      return false;
    }
    throw new ScitexError(`Cannot read ${abs} (${code}).`, 'Fix its permissions (or run as a user that can read it), then re-run; nothing was published for this user.', 1, { cause: err });
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
