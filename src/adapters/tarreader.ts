import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Parser, Unpack, type ReadEntry } from 'tar';

/** A tar member as our checks see it. */
export interface Member {
  path: string;
  type: string;
  size: number;
  linkpath?: string;
  mode?: number;
  mtime?: Date;
}

/** Opens an archive as a stream of tar bytes: gzip is left to node-tar, zstd goes through the zstd tool. */
function tarBytes(file: string): Readable {
  if (file.endsWith('.zst')) {
    const child = spawn('zstd', ['-q', '-d', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      if (code !== 0) child.stdout.destroy(new Error(`zstd could not decompress ${path.basename(file)}: ${err.trim()}`));
    });
    child.on('error', (e) => child.stdout.destroy(e));
    return child.stdout;
  }
  return fs.createReadStream(file, { highWaterMark: 1 << 20 });
}

/**
 * Reads every member header of an archive (contents are skipped), calling `check` for each;
 * `check` returns a reason to refuse the archive, which stops reading at once.
 */
export function scanArchive(file: string, check: (m: Member) => string | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const src = tarBytes(file);
    let refused: string | null = null;
    const parser = new Parser({
      strict: true,
      onReadEntry: (e: ReadEntry) => {
        if (!refused) refused = check(toMember(e));
        if (refused) {
          src.destroy();
          parser.abort(new Error(refused));
        }
        e.resume();
      },
    });
    const fail = (err: Error) => reject(refused ? new RefusedArchive(refused) : err);
    parser.on('error', fail);
    parser.on('abort', fail);
    src.on('error', fail);
    parser.on('end', () => (refused ? reject(new RefusedArchive(refused)) : resolve()));
    src.pipe(parser);
  });
}

/**
 * Extracts an archive under `cwd` with `check` run on every member before node-tar sees it; a refused
 * member stops the extraction (nothing of it is written) and the promise rejects with RefusedArchive.
 */
export function extractArchive(file: string, cwd: string, check: (m: Member) => string | null): Promise<void> {
  return new Promise((resolve, reject) => {
    const src = tarBytes(file);
    let refused: string | null = null;
    const unpack = new Unpack({
      cwd,
      strict: true,
      umask: 0,
      preserveOwner: process.getuid?.() === 0,
      // Our own checks first; node-tar's path-escape defences stay on as a second line.
      filter: (_p: string, e: ReadEntry | fs.Stats) => {
        if (refused) return false;
        refused = check(toMember(e as ReadEntry));
        if (refused) {
          src.destroy();
          unpack.abort(new Error(refused));
          return false;
        }
        return true;
      },
    });
    let settled = false;
    let closed = false;
    unpack.on('close', () => (closed = true));
    // Settle only once node-tar has no write in flight, so the caller can remove the staging safely.
    const whenClosed = (fn: () => void) => {
      if (closed) return fn();
      const timer = setTimeout(fn, 2000);
      unpack.once('close', () => {
        clearTimeout(timer);
        fn();
      });
    };
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      whenClosed(() => reject(refused ? new RefusedArchive(refused) : err));
    };
    unpack.on('error', fail);
    unpack.on('abort', fail);
    src.on('error', fail);
    unpack.on('close', () => {
      if (settled) return;
      settled = true;
      if (refused) reject(new RefusedArchive(refused));
      else resolve();
    });
    src.pipe(unpack);
  });
}

/** An archive refused by our checks (hostile or not what its manifest says). */
export class RefusedArchive extends Error {}

function toMember(e: ReadEntry): Member {
  return { path: e.path, type: e.type, size: e.size ?? 0, linkpath: e.linkpath || undefined, mode: e.mode, mtime: e.mtime };
}
