import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { decryptStream } from './age.js';
import { ToolFailure } from './proc.js';
import { StrictTarScanner } from './tarstrict.js';

/** A tar member as our checks see it. */
export interface Member {
  path: string;
  type: string;
  size: number;
  linkpath?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
}

/** An archive refused by our checks (hostile or not what its manifest says). */
export class RefusedArchive extends Error {}

/** The archive's bytes are not the ones its set recorded (checked before a single byte is parsed). */
export class ChecksumMismatch extends Error {}

const CHUNK = 1 << 20;

/** How to read a sealed (`.age`) archive: the age identity file, and the plaintext's recorded SHA-256. */
export interface Decrypt {
  identity: string;
  plainSha256: string;
}

/**
 * Reads an archive once: every member header goes to `check` through the strict reader (contents are
 * skipped) while the raw bytes are hashed; returns the SHA-256 of the file. A refusal stops reading at once.
 */
export async function scanArchive(file: string, check: (m: Member) => string | null, decrypt?: Decrypt): Promise<string> {
  const fh = await openArchive(file);
  try {
    const hash = crypto.createHash('sha256');
    const raw = fh.createReadStream({ start: 0, autoClose: false, highWaterMark: CHUNK });
    raw.on('data', (c) => hash.update(c as Buffer));
    await pump(raw, file, new StrictTarScanner(check), null, decrypt);
    return hash.digest('hex');
  } finally {
    await fh.close();
  }
}

/**
 * Verifies the archive's SHA-256 first (through one open descriptor, so what is checked is what is
 * read), then decompresses it once, feeding each chunk to the strict reader (and `check`) before GNU
 * tar gets it: GNU tar never sees the bytes of a member our checks refused. With `cwd` null nothing is
 * extracted (a dry run). GNU tar runs with TAR_OPTIONS cleared, numeric owners, exact modes, and
 * --keep-old-files (a member named twice fails instead of replacing the first).
 */
export async function extractArchive(file: string, opts: { sha256: string; cwd: string | null; check: (m: Member) => string | null; decrypt?: Decrypt }): Promise<void> {
  const fh = await openArchive(file);
  try {
    const hash = crypto.createHash('sha256');
    for await (const c of fh.createReadStream({ start: 0, autoClose: false, highWaterMark: CHUNK })) hash.update(c as Buffer);
    if (hash.digest('hex') !== opts.sha256) throw new ChecksumMismatch(`${path.basename(file)} does not match its recorded checksum`);
    let tar: ChildProcess | null = null;
    if (opts.cwd) {
      const args = ['-x', '-f', '-', '-C', opts.cwd, '--numeric-owner', '--preserve-permissions', '--delay-directory-restore', '--keep-old-files'];
      args.push(process.getuid?.() === 0 ? '--same-owner' : '--no-same-owner');
      const env = { ...process.env };
      delete env.TAR_OPTIONS; // an operator's TAR_OPTIONS (--absolute-names, --overwrite, ...) must not change what is extracted
      tar = spawn('tar', args, { env, stdio: ['pipe', 'ignore', 'pipe'] });
    }
    await pump(fh.createReadStream({ start: 0, autoClose: false, highWaterMark: CHUNK }), file, new StrictTarScanner(opts.check), tar, opts.decrypt);
  } finally {
    await fh.close();
  }
}

async function openArchive(file: string): Promise<fsp.FileHandle> {
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw new RefusedArchive(`${path.basename(file)} is not a regular file`);
  }
  return fh;
}

/**
 * Decrypts `raw` when sealed (age, checked against the plaintext's recorded SHA-256 once age has exited),
 * decompresses it (by the file's extension), feeds the scanner, then `tar`'s stdin; settles when all are done.
 */
function pump(raw: Readable, file: string, scanner: StrictTarScanner, tar: ChildProcess | null, decrypt?: Decrypt): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let zstd: ChildProcess | null = null;
    let tarErr = '';
    let zstdErr = '';
    let pending = (tar ? 2 : 1) + (decrypt ? 1 : 0); // the stream's end, tar's exit, age's exit and checksum
    let plain: Readable = raw;
    let ageDone: Promise<void> | null = null;
    let plainEnded = false;
    if (decrypt) {
      const dec = decryptStream(raw, decrypt.identity);
      const h = crypto.createHash('sha256');
      plain = dec.output;
      ageDone = dec.done;
      plain.on('data', (c: Buffer) => h.update(c));
      plain.on('end', () => (plainEnded = true));
      dec.done.then(
        () => (h.digest('hex') === decrypt.plainSha256 ? finish() : finish(new ChecksumMismatch(`${path.basename(file)} decrypted does not match the checksum recorded of its plaintext`))),
        (e: Error) => finish(e, true),
      );
      file = file.slice(0, -'.age'.length); // what is inside decides the decompression
    }
    let waitingForAge = false;
    let tarDone = false; // GNU tar may exit at the end-of-archive marker, before the padding after it
    const finish = (err?: Error, fromAge = false) => {
      if (settled || (waitingForAge && !fromAge)) return;
      // age stopped writing (a wrong key, a damaged file): the stream looks truncated to the readers after it,
      // but age's own exit says why. It has closed its output, so it is exiting: wait for its word.
      if (err && ageDone && plainEnded && !fromAge) {
        waitingForAge = true;
        ageDone.then(() => finish(err, true), (e: Error) => finish(e, true));
        return;
      }
      if (err) {
        settled = true;
        raw.destroy();
        out.destroy();
        zstd?.kill('SIGKILL');
        if (tar && tar.pid !== undefined && tar.exitCode === null && tar.signalCode === null) {
          tar.kill('SIGKILL');
          tar.once('close', () => reject(err)); // nothing may still be writing into staging when we return
        } else reject(err);
        return;
      }
      if (--pending === 0) {
        settled = true;
        resolve();
      }
    };
    let out: Readable;
    if (file.endsWith('.zst')) {
      zstd = spawn('zstd', ['-q', '-d', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
      zstd.stderr!.on('data', (d) => (zstdErr += d));
      zstd.on('error', (e) => finish(e));
      zstd.on('close', (code) => {
        if (code) finish(new Error(`zstd could not decompress ${path.basename(file)}: ${zstdErr.trim()}`));
      });
      zstd.stdin!.on('error', () => {});
      plain.pipe(zstd.stdin!);
      out = zstd.stdout!;
    } else if (file.endsWith('.gz')) {
      out = plain.pipe(zlib.createGunzip({ chunkSize: 256 << 10 }));
    } else out = plain;
    raw.on('error', (e) => finish(e));
    out.on('error', (e) => finish(new Error(`${path.basename(file)} does not decompress: ${e.message}`)));
    out.on('data', (c: Buffer) => {
      if (settled) return;
      const refused = scanner.push(c);
      if (refused) return finish(new RefusedArchive(refused));
      if (tar && !tarDone && !tar.stdin!.write(c)) {
        out.pause();
        tar.stdin!.once('drain', () => out.resume());
      }
    });
    out.on('end', () => {
      if (settled) return;
      const refused = scanner.end();
      if (refused) return finish(new RefusedArchive(refused));
      tar?.stdin!.end();
      finish();
    });
    if (tar) {
      tar.stderr!.on('data', (d) => {
        if (tarErr.length < 1 << 16) tarErr += d;
      });
      tar.stdin!.on('error', () => {}); // tar exited early: its status says why
      tar.on('error', (e) => finish(e));
      tar.on('close', (code, signal) => {
        tarDone = true;
        out.resume();
        if (code === 0) finish();
        else finish(new ToolFailure('tar', code, signal, tarErr));
      });
    }
  });
}
