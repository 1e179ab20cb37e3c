import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { httpStatus, ObjectStore, type Destination } from '../../adapters/objectstore.js';
import { parseSha256sumLine, sha256File, sha256sumLine } from '../fs/index.js';
import type { Logger, Progress } from '../logger.js';
import { ageAvailable, encryptFd } from '../../adapters/age.js';
import { ScitexError } from '../../errors.js';
import type { OffsiteSettings } from './settings.js';
import { objectLockProblem } from './lock.js';
import { localUnits, objectKey, REMOTE_FORMAT, REMOTE_MANIFEST_SUFFIX, sourceId, type RemoteManifest, type RemoteObject, type Unit, type UnitFile } from './units.js';

/** What one destination got. */
export interface DestinationResult {
  destination: string;
  /** Backups sent (wholly or their missing part) by this run. */
  sent: string[];
  /** Backups that were already complete there. */
  present: string[];
  /** Objects that an earlier, interrupted run had sent and that were not sent again. */
  resumed: string[];
  bytesSent: number;
  /** Why this destination failed (then the backups after the failing one were not tried); null on success. */
  error: string | null;
}

/** A pass-through that hashes what flows and counts it. */
function hasher(): Transform & { digest(): string; bytes(): number } {
  const h = crypto.createHash('sha256');
  let n = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      n += chunk.length;
      cb(null, chunk);
    },
  });
  let d: string | undefined;
  return Object.assign(t, { digest: () => (d ??= h.digest('hex')), bytes: () => n });
}

/** Opens a local backup file for reading without following a link planted in its place. */
function openLocal(abs: string): Readable {
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  return fs.createReadStream('', { fd, highWaterMark: 1024 * 1024 });
}

/** Describes an SDK or network error in one line, without request details that could carry signed URLs. */
export function describeRemoteError(err: unknown): string {
  const e = err as Error & { Code?: string; code?: string };
  const status = httpStatus(err);
  const what = e?.name && e.name !== 'Error' ? e.name : (e?.code ?? 'error');
  const msg = (e?.message ?? String(err)).split('\n')[0]!.slice(0, 200);
  const hint =
    status === 403 ? '; check the credentials (AWS_* variables, shared credentials file, profile) and the bucket policy'
    : status === 404 ? '; check the bucket name'
    : /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|socket hang up/i.test(`${e?.code} ${msg}`) ? '; is the endpoint right and the server up?'
    : '';
  return `${what}${status ? ` (HTTP ${status})` : ''}: ${msg}${hint}`;
}

/** An object that is already there and matches (same source, recorded checksum), or null. */
async function presentObject(store: ObjectStore, f: UnitFile, key: string, recipients: string[], signal: AbortSignal): Promise<RemoteObject | null> {
  const head = await store.head(key, signal);
  if (!head || head.metadata['scitex-source'] !== sourceId(f.sha256, recipients)) return null;
  const side = parseSha256sumLine((await store.getText(key + '.sha256', signal)) ?? '');
  if (!side) return null;
  if (!recipients.length && (head.size !== f.size || side.digest !== f.sha256)) return null;
  return { key, size: head.size, sha256: side.digest, plainSize: f.size, plainSha256: f.sha256 };
}

/** Sends one file (encrypted when there are recipients), checking on the way that it still has its recorded checksum. */
async function sendFile(store: ObjectStore, f: UnitFile, recipients: string[], bar: Progress, signal: AbortSignal): Promise<RemoteObject> {
  const key = objectKey(f.rel, recipients.length > 0);
  const stored = hasher();
  let body: Readable;
  let age: Promise<void> = Promise.resolve();
  let plainDigest: Promise<string> | null = null;
  let fd: number | null = null;
  if (recipients.length) {
    // age reads the file itself and Node hashes it beside (from the page cache): no plaintext is piped through
    // Node, which on two cores shared with the upload is what made encrypted copies slow (see the bench).
    fd = fs.openSync(f.abs, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
    const enc = encryptFd(fd, recipients);
    body = enc.output.pipe(stored);
    enc.output.on('error', (err) => body.destroy(err));
    age = enc.done;
    plainDigest = sha256File(f.abs);
  } else {
    // Unencrypted, the stored bytes are the plaintext: hashed once, on the way.
    const src = openLocal(f.abs);
    src.on('error', (err) => stored.destroy(err));
    body = src.pipe(stored);
  }
  plainDigest?.catch(() => {});
  const metadata: Record<string, string> = { 'scitex-source': sourceId(f.sha256, recipients) };
  if (!recipients.length) metadata.sha256 = f.sha256; // known before the first byte: in the object's own metadata
  let last = 0;
  // Progress in plaintext bytes (the ciphertext is 16 bytes per 64 KiB longer): the bar's total is the local size.
  const done = () => Math.min(f.size, stored.bytes());
  try {
    await store.upload(key, body, {
      metadata,
      signal,
      onBytes: () => {
        bar.tick(done() - last);
        last = done();
      },
    });
    try {
      await age;
    } catch (err) {
      await store.delete([key], signal).catch(() => {});
      throw err;
    }
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
  const plain = plainDigest ? { digest: await plainDigest, bytes: f.size } : { digest: stored.digest(), bytes: stored.bytes() };
  if (plain.digest !== f.sha256) {
    await store.delete([key], signal).catch(() => {});
    throw new Error(`${f.abs} no longer matches its recorded checksum (changed or damaged since it was published); its copy was removed`);
  }
  bar.tick(plain.bytes - last);
  // The checksum of what is stored, beside it in sha256sum format: `sha256sum -c` works on a downloaded copy.
  await store.putSmall(key + '.sha256', sha256sumLine(stored.digest(), path.basename(key)), { signal });
  return { key, size: stored.bytes(), sha256: stored.digest(), plainSize: plain.bytes, plainSha256: plain.digest };
}

/** Reads a backup's remote manifest, or null when the copy there is not complete. */
export async function readRemoteManifest(store: ObjectStore, name: string, signal?: AbortSignal): Promise<RemoteManifest | null> {
  const text = await store.getText(name + REMOTE_MANIFEST_SUFFIX, signal);
  if (text === null) return null;
  const m = JSON.parse(text) as RemoteManifest;
  if (m.format !== REMOTE_FORMAT || !Array.isArray(m.objects)) throw new Error(`${name}${REMOTE_MANIFEST_SUFFIX} is not a scitex-data remote manifest`);
  return m;
}

/** Copies the units to one destination, oldest first; stops at the first failure (the manifest-last rule keeps it consistent). */
export async function copyToDestination(store: ObjectStore, units: Unit[], recipients: string[], log: Logger, timeoutMs: number): Promise<DestinationResult> {
  const r: DestinationResult = { destination: store.dest.label, sent: [], present: [], resumed: [], bytesSent: 0, error: null };
  const signal = AbortSignal.timeout(timeoutMs);
  const ordered = [...units].reverse();
  let bar: Progress | undefined;
  try {
    r.error = await objectLockProblem(store, signal);
    if (r.error) return r;
    const todo: Unit[] = [];
    for (const u of ordered) {
      const m = await readRemoteManifest(store, u.name, signal);
      if (!m) todo.push(u);
      else {
        r.present.push(u.name);
        if (m.recipients.slice().sort().join() !== (u.sealed?.recipients ?? recipients).slice().sort().join()) log.warn(`${u.name} is already at ${store.dest.label} with other encryption settings; left as it is.`);
      }
    }
    const total = todo.reduce((n, u) => n + u.files.reduce((m, f) => m + f.size, 0), 0);
    bar = log.progress(`copy to ${store.dest.label}`, total, todo.reduce((n, u) => n + u.files.length, 0));
    for (const u of todo) {
      const objects: RemoteObject[] = [];
      // Sealed locally: already age ciphertext, sent as it is (never encrypted twice).
      const rec = u.sealed ? [] : recipients;
      for (const f of u.files) {
        const key = objectKey(f.rel, rec.length > 0);
        const have = await presentObject(store, f, key, rec, signal);
        if (have) {
          // Killed between its upload and its retention, an object may be there unlocked.
          if (store.dest.lock) for (const k of [key, key + '.sha256']) await store.retain(k, signal);
          r.resumed.push(key);
          bar.tick(f.size, 1);
          objects.push(have);
          continue;
        }
        const o = await sendFile(store, f, rec, bar, signal);
        bar.tick(0, 1);
        r.bytesSent += o.size;
        objects.push(o);
      }
      const manifest: RemoteManifest = { format: REMOTE_FORMAT, name: u.name, kind: u.kind, series: u.series, timestamp: u.timestamp, set: u.set, created: new Date().toISOString(), encrypted: !!u.sealed || recipients.length > 0, recipients: [...(u.sealed?.recipients ?? recipients)].sort(), objects, ...(u.sealed ? { sealed: true } : {}) };
      // Last, and only if absent: a half-copied backup never looks complete, and a finished one is never overwritten.
      await store.putSmall(u.name + REMOTE_MANIFEST_SUFFIX, JSON.stringify(manifest, null, 2) + '\n', { ifAbsent: true, signal });
      r.sent.push(u.name);
      log.debug(`copied ${u.name} to ${store.dest.label}`);
    }
  } catch (err) {
    r.error = signal.aborted ? `gave up after ${Math.round(timeoutMs / 1000)} s (SCITEX_DATA_REMOTE_TIMEOUT)` : describeRemoteError(err);
  } finally {
    bar?.done();
  }
  return r;
}

/** Copies the units to every configured destination; one failing destination does not stop the others. */
export async function copyUnits(settings: OffsiteSettings, units: Unit[], log: Logger, mkStore: (d: Destination) => Promise<ObjectStore> = (d) => ObjectStore.open(d, { partSize: settings.partSize, queueSize: settings.concurrency })): Promise<DestinationResult[]> {
  // Checked before any destination is touched: without age nothing may leave unencrypted by accident.
  if (settings.recipients.length && !ageAvailable()) throw new ScitexError('The age command is not installed; it is needed to encrypt the off-site copies.', 'apt-get install age; nothing was copied.');
  const out: DestinationResult[] = [];
  for (const d of settings.destinations) {
    const store = await mkStore(d);
    try {
      const r = await copyToDestination(store, units, settings.recipients, log, settings.timeoutMs);
      out.push(r);
    } finally {
      store.close();
    }
  }
  return out;
}

/** Copies published backups of `backupDir` (all, or those named) to every destination. */
export async function copyBackups(backupDir: string, settings: OffsiteSettings, log: Logger, names?: string[]): Promise<DestinationResult[]> {
  return copyUnits(settings, await localUnits(backupDir, log, names), log);
}
