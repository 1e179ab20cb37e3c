import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { PassThrough, Writable } from 'node:stream';
import zlib from 'node:zlib';
import { ScitexError } from '../errors.js';

/** Compression of user archives. */
export type Compression = 'gzip' | 'zstd' | 'none';

/** Size of the reads and writes that stream archives (constant memory). */
export const CHUNK = 1 << 20;

/** A sink that compresses, hashes and writes to `file`, finishing only when the file is fully written. */
export interface Sink {
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

/**
 * Waits for a writable to drain, or rejects when it fails or is destroyed. A stream destroyed by its
 * consumer (a failed disk write ends the loop that reads the compressor) never emits 'drain' nor
 * 'error': without the 'close' case the writer would wait forever, Node would find nothing left to do
 * and exit 0 with nothing published.
 */
function drained(w: Writable): Promise<void> {
  if (w.destroyed) return Promise.reject(w.errored ?? new Error('the archive stream was closed early'));
  return new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null) => {
      w.off('drain', onDrain);
      w.off('error', onErr);
      w.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onDrain = () => done();
    const onErr = (e: Error) => done(e);
    const onClose = () => done(w.errored ?? new Error('the archive stream was closed early'));
    w.once('drain', onDrain);
    w.once('error', onErr);
    w.once('close', onClose);
  });
}

/**
 * Opens the output. gzip output is a series of gzip members (RFC 1952 allows concatenation; GNU tar,
 * gunzip and node-tar read it as one stream): a new member starts whenever the level changes, which is
 * how incompressible files are stored instead of deflated (zlib's deflateParams did not take effect).
 */
export function openSink(file: string, compression: Compression, level: number): Sink {
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
      if (!current!.input.write(b)) {
        // (racing `done` here would pile up reactions on it)
        await drained(current!.input).catch(async (e) => {
          await current?.done.catch(() => {});
          throw failure ?? e;
        });
      }
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
  let stdinError: Error | undefined;
  child.stdin!.on('error', (e) => (stdinError ??= e));
  // A write error on the pipe (EPIPE) only means zstd stopped: its exit status and stderr say why.
  const failed = async (e: Error): Promise<never> => {
    await exited.catch(() => {});
    throw failure ?? e;
  };
  return {
    async write(b) {
      if (failure) throw failure;
      if (stdinError) await failed(stdinError);
      if (!child.stdin!.write(b)) await drained(child.stdin!).catch(failed);
      if (failure) throw failure;
    },
    reusesChunks: false,
    async setLevel() {},
    async end() {
      child.stdin!.end();
      await exited;
      if (stdinError) throw stdinError;
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
