import fsp from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir, fsyncFile, writeFileAtomic } from '../fs/atomic.js';
import { sha256File, sha256sumLine } from '../fs/hash.js';
import { CHECKSUM_SUFFIX } from '../catalog/index.js';

/** A published backup file. */
export interface Artifact {
  kind: 'postgres' | 'sqlite' | 'users';
  path: string;
  size: number;
  sha256: string;
  durationMs: number;
  database?: string;
}

/**
 * Publishes a finished temporary file: fsync, SHA-256, checksum file (atomically), 0600, then the
 * rename that makes it visible, then the directory fsync (`known`: the digest, when the caller already hashed it). Whatever instant a crash hits, a file with
 * the final name always has its checksum beside it.
 */
export async function publishFile(tmp: string, final: string, known?: string): Promise<{ size: number; sha256: string }> {
  await fsp.chmod(tmp, 0o600);
  await fsyncFile(tmp);
  const sha256 = known ?? (await sha256File(tmp)); // `known`: hashed by the caller from the same finished file
  await writeFileAtomic(final + CHECKSUM_SUFFIX, sha256sumLine(sha256, path.basename(final)));
  try {
    await fsp.rename(tmp, final);
  } catch (err) {
    await fsp.rm(final + CHECKSUM_SUFFIX, { force: true }); // no checksum without its backup
    throw err;
  }
  await fsyncDir(path.dirname(final));
  const size = (await fsp.stat(final)).size;
  return { size, sha256 };
}
