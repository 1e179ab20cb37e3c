import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { ScitexError } from '../errors.js';
import { recipientArgs } from './age.js';

/** Compression of user archives. */
export type Compression = 'gzip' | 'zstd' | 'none';

/** Size of the blocks that stream archives (constant memory). */
export const CHUNK = 1 << 20;

/** Blocks handed off but not yet written, per archive: bounds memory while keeping every core busy. */
const IN_FLIGHT = 4;

/**
 * A block sink: the tar writer fills `buf` from `pos` (headers encoded in place, file bytes read straight
 * into it), and each full block goes to the compressor and the file in order. No per-file buffers,
 * promises or stream chunks: on trees of small files those cost more than the bytes (the profile showed
 * a third of the time in garbage collection).
 */
export interface Sink {
  buf: Buffer;
  pos: number;
  /** Makes room for at least `n` bytes (n <= CHUNK) in `buf`, handing off the filled part first. */
  reserve(n: number): Promise<void>;
  /** Hands off the filled part of `buf` (if any) and gives a fresh block. */
  flush(): Promise<void>;
  /** Deflate level for the blocks that follow (gzip only; a no-op otherwise). */
  setLevel(level: number): Promise<void>;
  /** Size and SHA-256 of the file written; `plain`: of the archive before encryption (sealed sinks only). */
  end(): Promise<{ size: number; sha256: string; plain?: { size: number; sha256: string } }>;
}

/** Writes all of `b` at the end of `fd`. */
async function writeAll(fd: number, b: Buffer): Promise<void> {
  for (let off = 0; off < b.length; ) {
    off += await new Promise<number>((resolve, reject) => fs.write(fd, b, off, b.length - off, null, (e, n) => (e ? reject(e) : resolve(n))));
  }
}

const gzip = (b: Buffer, level: number) => new Promise<Buffer>((resolve, reject) => zlib.gzip(b, { level, memLevel: 9 }, (e, r) => (e ? reject(e) : resolve(r))));

/**
 * Opens the output. gzip output is a series of gzip members, one per block, compressed in parallel on
 * libuv's thread pool (pigz's idea; RFC 1952 allows concatenation and GNU tar, gunzip and node-tar read
 * it as one stream): a single user's archive uses every core, and incompressible files are stored
 * (level 0) in blocks of their own. zstd is the `zstd` command writing the file itself.
 */
export function openSink(file: string, compression: Compression, level: number, recipients: string[] = []): Sink {
  const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
  // Sealed: age is the last stage and writes the file itself; the plaintext archive never touches the disk.
  const age = recipients.length ? startChild('age', recipientArgs(recipients), fd, 'age (encryption)') : undefined;
  const zstd = compression === 'zstd' ? startZstd(age ? age : fd, level) : undefined;
  const hash = crypto.createHash('sha256');
  let size = 0;
  let failure: Error | undefined;
  let currentLevel = level;
  let closed = false;
  const free: Buffer[] = [];
  const queue: Promise<void>[] = [];
  // Output order: each block's write waits for the previous one; compression runs ahead in parallel.
  let chain: Promise<void> = Promise.resolve();
  const handOff = (block: Buffer, n: number) => {
    const data = block.subarray(0, n);
    const packed = compression === 'gzip' ? gzip(data, currentLevel) : Promise.resolve(data);
    packed.catch(() => {});
    const done = (chain = chain.then(async () => {
      const out = await packed;
      if (zstd) await zstd.write(out);
      else {
        hash.update(out);
        size += out.length;
        await (age ? age.write(out) : writeAll(fd, out));
      }
    }).finally(() => free.push(block)));
    done.catch((e: unknown) => {
      failure ??= e instanceof Error ? e : new Error(String(e));
    });
    queue.push(done.catch(() => {}));
  };
  const sink: Sink = {
    buf: Buffer.allocUnsafe(CHUNK),
    pos: 0,
    async reserve(n) {
      if (CHUNK - sink.pos < n) await sink.flush();
    },
    async flush() {
      if (failure) throw failure;
      if (sink.pos === 0) return;
      handOff(sink.buf, sink.pos);
      while (queue.length >= IN_FLIGHT) await queue.shift();
      const failed = failure as Error | undefined; // set by a block's write meanwhile
      if (failed) throw failed;
      sink.buf = free.pop() ?? Buffer.allocUnsafe(CHUNK);
      sink.pos = 0;
    },
    async setLevel(l) {
      if (compression !== 'gzip' || l === currentLevel) return;
      await sink.flush();
      currentLevel = l;
    },
    async end() {
      try {
        await sink.flush();
        await chain;
        if (zstd) await zstd.end();
        if (!age) return zstd ? await hashFile(file) : { size, sha256: hash.digest('hex') };
        await age.end();
        // What was piped into age (zstd's output is hashed on its way there) is the plaintext archive.
        const plain = zstd ? zstd.piped() : { size, sha256: hash.digest('hex') };
        return { ...(await hashFile(file)), plain };
      } finally {
        zstd?.kill();
        age?.kill();
        // end() runs again after a failure: the number must never be closed twice (another archive may reuse it).
        if (!closed) fs.closeSync(fd);
        closed = true;
      }
    },
  };
  return sink;
}

/** SHA-256 and size of a file just written (read back from the page cache). */
async function hashFile(file: string): Promise<{ size: number; sha256: string }> {
  const hash = crypto.createHash('sha256');
  let size = 0;
  for await (const c of fs.createReadStream(file, { highWaterMark: CHUNK })) {
    hash.update(c as Buffer);
    size += (c as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** A child process fed through its stdin; `write` resolves once the pipe took the bytes. */
interface ChildWriter {
  write(b: Buffer): Promise<void>;
  /** Ends stdin and waits for the child to exit (rejects with its stderr when it failed). */
  end(): Promise<void>;
  kill(): void;
}

/** Starts `cmd` writing to `out` (a descriptor); errors carry the child's stderr. */
function startChild(cmd: string, args: string[], out: number | 'pipe', what: string): ChildWriter & { stdout: NodeJS.ReadableStream | null } {
  const child = spawn(cmd, args, { stdio: ['pipe', out, 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new ScitexError(`${cmd} is not installed.`, cmd === 'zstd' ? 'Install it (Debian: apt-get install zstd) or use --compression gzip.' : `Install it (Debian: apt-get install ${cmd}).`) : e));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${what} failed: ${err.trim().split('\n').find((l) => /error/i.test(l)) ?? (err.trim() || `exit ${code}`)}`))));
  });
  exited.catch(() => {});
  child.stdin!.on('error', () => {});
  // A write error on the pipe only means the child stopped: its exit status and stderr say why.
  const failed = async (e: unknown): Promise<never> => {
    await exited;
    throw e;
  };
  return {
    stdout: child.stdout,
    write: (b: Buffer) => new Promise<void>((resolve, reject) => child.stdin!.write(b, (e) => (e ? reject(e) : resolve()))).catch(failed),
    async end() {
      child.stdin!.end();
      await exited;
    },
    kill() {
      if (child.exitCode === null) child.kill();
    },
  };
}

/**
 * zstd writes the file itself (its stdout is our descriptor): piping its output back through Node cost
 * more CPU than the compression. `-T0`: one archive uses every core. Sealed, its output goes on to age
 * through Node, which hashes it (the plaintext archive's checksum) on the way.
 */
function startZstd(out: number | ChildWriter, level: number): ChildWriter & { piped(): { size: number; sha256: string } } {
  const args = ['-q', '-c', `-${level}`, '-T0'];
  if (typeof out === 'number') return { ...startChild('zstd', args, out, 'zstd'), piped: () => ({ size: 0, sha256: '' }) };
  const z = startChild('zstd', args, 'pipe', 'zstd');
  const hash = crypto.createHash('sha256');
  let size = 0;
  let forward: Promise<void> = Promise.resolve();
  const stdout = z.stdout as import('node:stream').Readable;
  const drained = new Promise<void>((resolve, reject) => {
    stdout.on('data', (c: Buffer) => {
      hash.update(c);
      size += c.length;
      stdout.pause();
      forward = forward.then(() => out.write(c)).then(() => void stdout.resume(), (e: unknown) => reject(e instanceof Error ? e : new Error(String(e))));
    });
    stdout.on('end', () => void forward.then(resolve, reject));
    stdout.on('error', reject);
  });
  drained.catch(() => {});
  return {
    write: (b: Buffer) => z.write(b),
    async end() {
      await z.end();
      await drained;
    },
    kill: () => z.kill(),
    piped: () => ({ size, sha256: hash.digest('hex') }),
  };
}
