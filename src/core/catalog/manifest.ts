import fs from 'node:fs';
import path from 'node:path';
import type { Compression } from '../../adapters/tarwriter.js';
import { ScitexError } from '../../errors.js';
import type { Origin } from './origin.js';

/** Format tag of MANIFEST.json in a user backup set. */
export const MANIFEST_FORMAT = 'scitex-data-users/1';

/** One user's archive in a set. */
export interface ManifestUser {
  username: string;
  archive: string;
  size: number;
  sha256: string;
  files: number;
  bytes: number;
  fingerprint: string;
  /** True when the archive was hard-linked from an earlier set because nothing changed. */
  reused: boolean;
  /** Paths that changed while read (the archive holds a mix of states for them). */
  changed: string[];
  /** Sealed archives (`.age`): size and SHA-256 above are the ciphertext's; these are the plaintext archive's. */
  plainSha256?: string;
  plainSize?: number;
}

/** MANIFEST.json of a user backup set. */
export interface Manifest {
  format: string;
  timestamp: string;
  created: string;
  compression: Compression;
  level: number;
  partial: boolean;
  /** Usernames asked for with --user; absent when every user was archived. */
  selection?: string[];
  users: ManifestUser[];
  /** Entries not archived, and why (sockets, fifos, devices; symlinks pointing outside the workspace, with `target`). */
  skipped: { user: string; path: string; reason: string; target?: string }[];
  /** The root and environment that made the set (absent in sets made before it was recorded). */
  origin?: Origin;
  /** Present when every archive is sealed (age-encrypted) to these public keys (`backup --encrypt-local`). */
  sealed?: { recipients: string[] };
}

/** Reads and sanity-checks a set's manifest. */
export function readManifest(setDir: string): Manifest {
  const file = path.join(setDir, 'MANIFEST.json');
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
  } catch (err) {
    throw new ScitexError(`Cannot read ${file}: ${(err as Error).message}.`, 'The set is damaged; use another one (`scitex-data list`).', 1, { cause: err });
  }
  if (m.format !== MANIFEST_FORMAT || !Array.isArray(m.users)) {
    throw new ScitexError(`${file} is not a scitex-data user manifest.`, 'The set is damaged; use another one (`scitex-data list`).');
  }
  for (const u of m.users) {
    // A tampered manifest must not be able to point outside its set.
    if (typeof u.archive !== 'string' || u.archive.includes('/') || u.archive.startsWith('.')) {
      throw new ScitexError(`${file} names an archive outside its set (${JSON.stringify(u.archive)}).`, 'The manifest was tampered with; use another set.');
    }
  }
  return m;
}

