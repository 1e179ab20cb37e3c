import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { listBackups, ORIGIN_SUFFIX, readManifest, readPlainRecord, recordedChecksum, type BackupKind } from '../catalog/index.js';
import { isSealed } from '../seal/index.js';
import { UsageError } from '../../errors.js';
import { parseSha256sumLine, sha256File } from '../fs/index.js';
import type { Logger } from '../logger.js';
import type { SetSummary } from '../catalog/index.js';

/** One local file of a backup, with the checksum recorded when it was published. */
export interface UnitFile {
  /** Path relative to the backup directory, '/'-separated: the object key below the destination's prefix. */
  rel: string;
  abs: string;
  size: number;
  sha256: string;
}

/** A published backup (a database file or a user set): the thing copied, listed and verified as a whole. */
export interface Unit {
  name: string;
  kind: BackupKind;
  series: string;
  timestamp: string | null;
  files: UnitFile[];
  /** For a user set: what retention needs to know of it (remote prune applies the same rules). */
  set?: SetSummary;
  /** Sealed locally (`backup --encrypt-local`): the files are age ciphertext already and leave exactly as they are. */
  sealed?: { recipients: string[] };
}

/** Format tag of the remote manifest, the object uploaded last that makes a copy complete. */
export const REMOTE_FORMAT = 'scitex-data-remote/1';
/** Suffix of the remote manifest's key (`<prefix>/<backup name>.scitex-remote.json`). */
export const REMOTE_MANIFEST_SUFFIX = '.scitex-remote.json';

/** One object of a remote copy. */
export interface RemoteObject {
  key: string;
  /** Size and SHA-256 of the bytes stored (the ciphertext when encrypted): verify needs no key. */
  size: number;
  sha256: string;
  /** Size and SHA-256 of the local file it came from (checked again after decryption). */
  plainSize: number;
  plainSha256: string;
}

/** The remote manifest. */
export interface RemoteManifest {
  format: string;
  /** The objects are the local sealed files as they are (fetch keeps them sealed; the restore decrypts). */
  sealed?: boolean;
  name: string;
  kind: BackupKind;
  series: string;
  timestamp: string | null;
  set?: SetSummary;
  created: string;
  encrypted: boolean;
  recipients: string[];
  objects: RemoteObject[];
}

/** The key an object of `file` gets: `.age` appended when encrypted. */
export const objectKey = (rel: string, encrypted: boolean): string => rel + (encrypted ? '.age' : '');

/**
 * What identifies an object's content before it is read back: the plaintext checksum, plus the recipients when
 * encrypted (age output differs on each run, so resuming compares the source, not the ciphertext).
 */
export function sourceId(plainSha256: string, recipients: string[]): string {
  if (!recipients.length) return plainSha256;
  return crypto.createHash('sha256').update(`scitex-data age source\0${plainSha256}\0${[...recipients].sort().join(' ')}`).digest('hex');
}

/** Published backups that can be copied (newest first); those without a recorded checksum are skipped with a warning. */
export async function localUnits(backupDir: string, log: Logger, names?: string[]): Promise<Unit[]> {
  const entries = await listBackups(backupDir);
  const wanted = names?.length ? new Set(names.map((n) => path.basename(n.replace(/\/+$/, '')))) : null;
  const units: Unit[] = [];
  for (const e of entries) {
    if (wanted && !wanted.has(e.name)) continue;
    wanted?.delete(e.name);
    if (!e.timestamp) {
      log.warn(`${e.name}: not named by scitex-data (legacy); not copied.`);
      continue;
    }
    if (e.kind !== 'users') {
      const sha = recordedChecksum(e.path);
      if (!sha || sha === 'unparseable') {
        log.warn(`${e.name}: no recorded checksum; not copied.`);
        continue;
      }
      const files: UnitFile[] = [{ rel: e.name, abs: e.path, size: e.size, sha256: sha }];
      const plain = isSealed(e.name) ? readPlainRecord(e.path) : null;
      if (isSealed(e.name)) {
        if (!plain) {
          log.warn(`${e.name}: sealed, but the record of its plaintext (${e.name}${ORIGIN_SUFFIX}) is missing or damaged; not copied.`);
          continue;
        }
        // The plaintext's checksum travels with it: a restore from the copy checks the decryption against it.
        const origin = e.path + ORIGIN_SUFFIX;
        files.push({ rel: e.name + ORIGIN_SUFFIX, abs: origin, size: fs.lstatSync(origin).size, sha256: await sha256File(origin) });
      }
      units.push({ name: e.name, kind: e.kind, series: e.series, timestamp: e.timestamp, files, ...(plain ? { sealed: { recipients: plain.recipients ?? [] } } : {}) });
      continue;
    }
    if (e.set?.problem) {
      log.warn(`${e.name}: ${e.set.problem}; not copied.`);
      continue;
    }
    const files: UnitFile[] = [];
    const sums = fs.readFileSync(path.join(e.path, 'SHA256SUMS'), 'utf8').split('\n').map(parseSha256sumLine);
    for (const s of sums) {
      if (!s || s.name.includes('/') || s.name.startsWith('.')) continue;
      const abs = path.join(e.path, s.name);
      files.push({ rel: `${e.name}/${s.name}`, abs, size: fs.lstatSync(abs).size, sha256: s.digest });
    }
    for (const extra of ['MANIFEST.json', 'SHA256SUMS']) {
      if (files.some((f) => f.rel.endsWith('/' + extra))) continue;
      const abs = path.join(e.path, extra);
      files.push({ rel: `${e.name}/${extra}`, abs, size: fs.lstatSync(abs).size, sha256: await sha256File(abs) });
    }
    let sealed: Unit['sealed'];
    try {
      sealed = readManifest(e.path).sealed;
    } catch {
      sealed = undefined; // inspectSet above already read it cleanly
    }
    units.push({ name: e.name, kind: 'users', series: e.series, timestamp: e.timestamp, files, set: e.set, ...(sealed ? { sealed } : {}) });
  }
  if (wanted?.size) throw new UsageError(`Not a published backup in ${backupDir}: ${[...wanted].join(', ')}.`, 'See `scitex-data list`.');
  return units;
}
