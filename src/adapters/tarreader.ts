import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ReadEntry } from 'tar';
import type * as Tar from 'tar';
import { runTool } from './proc.js';

let tarModule: typeof Tar | undefined;
/** node-tar, loaded on first use (start-up time matters for every other command). */
const loadTar = async (): Promise<typeof Tar> => (tarModule ??= await import('tar'));

/** A tar member as our checks see it. */
export interface Member {
  path: string;
  type: string;
  size: number;
  linkpath?: string;
  mode?: number;
  mtime?: Date;
}

/**
 * Reads an archive once: every member header goes to `check` (contents are skipped) while the raw bytes
 * are hashed; returns the SHA-256 of the file. A refusal from `check` stops reading at once.
 */
export async function scanArchive(file: string, check: (m: Member) => string | null): Promise<string> {
  const { Parser } = await loadTar();
  return new Promise((resolve, reject) => {
    const raw = fs.createReadStream(file, { highWaterMark: 1 << 20 });
    const hash = crypto.createHash('sha256');
    raw.on('data', (c) => hash.update(c as Buffer));
    let refused: string | null = null;
    let settled = false;
    const parser = new Parser({
      strict: true,
      onReadEntry: (e: ReadEntry) => {
        if (!refused) refused = check(toMember(e));
        if (refused) {
          raw.destroy();
          parser.abort(new Error(refused));
        }
        e.resume();
      },
    });
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      reject(refused ? new RefusedArchive(refused) : err);
    };
    parser.on('error', fail);
    parser.on('abort', fail);
    raw.on('error', fail);
    parser.on('end', () => {
      if (settled) return;
      settled = true;
      if (refused) reject(new RefusedArchive(refused));
      else resolve(hash.digest('hex'));
    });
    if (file.endsWith('.zst')) {
      // One read of the file feeds both the hash and zstd's decompression.
      const child = spawn('zstd', ['-q', '-d', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.on('error', (e) => fail(e));
      child.on('close', (code) => {
        if (code !== 0 && !refused) fail(new Error(`zstd could not decompress ${path.basename(file)}: ${err.trim()}`));
      });
      child.stdin.on('error', () => {});
      raw.pipe(child.stdin);
      child.stdout.pipe(parser);
    } else raw.pipe(parser);
  });
}

/** Extracts with GNU tar (after scanArchive accepted every member): owners, modes, mtimes and links kept. */
export async function extractWithGnuTar(file: string, cwd: string): Promise<void> {
  const args = ['-x', '-f', file, '-C', cwd, '--numeric-owner', '--preserve-permissions', '--delay-directory-restore'];
  if (file.endsWith('.zst')) args.push('--zstd');
  if (process.getuid?.() === 0) args.push('--same-owner');
  await runTool('tar', args, { installHint: 'Install GNU tar.' });
}

/** An archive refused by our checks (hostile or not what its manifest says). */
export class RefusedArchive extends Error {}

function toMember(e: ReadEntry): Member {
  return { path: e.path, type: e.type, size: e.size ?? 0, linkpath: e.linkpath || undefined, mode: e.mode, mtime: e.mtime };
}
