import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectStore } from '../../adapters/objectstore.js';
import { parseBackupName } from '../catalog/index.js';
import { ScitexError, UsageError } from '../../errors.js';
import { ensurePrivateDir, fsyncDir, sha256Stream } from '../fs/index.js';
import type { Logger } from '../logger.js';
import { decryptStream } from '../../adapters/age.js';
import { readRemoteManifest } from './copy.js';
import { lockedUntil } from './lock.js';
import { REMOTE_MANIFEST_SUFFIX, type RemoteManifest } from './units.js';
import { ORIGIN_SUFFIX } from '../catalog/index.js';

/** One backup at a destination. */
export interface RemoteEntry {
  name: string;
  /** False when objects are there but the manifest is not: an interrupted copy that `copy` will finish. */
  complete: boolean;
  manifest: RemoteManifest | null;
  size: number;
  /** With `locks`: the Object Lock date of its manifest (written last, so the latest of its objects), or null. */
  lockedUntil?: string | null;
}

/** Every backup at the destination, newest first, complete or not; `locks` adds their Object Lock dates. */
export async function listRemote(store: ObjectStore, opts: { locks?: boolean } = {}): Promise<RemoteEntry[]> {
  const objects = await store.list();
  const byName = new Map<string, { size: number; manifest: boolean }>();
  const manifests = new Set(objects.map((o) => o.key.split('/')[0]!).filter((t) => t.endsWith(REMOTE_MANIFEST_SUFFIX)).map((t) => t.slice(0, -REMOTE_MANIFEST_SUFFIX.length)));
  for (const o of objects) {
    const top = o.key.split('/')[0]!;
    const isManifest = top.endsWith(REMOTE_MANIFEST_SUFFIX);
    // `x.db.age` is either a sealed backup's own name or the encrypted copy of `x.db`: its manifest says which.
    const bare = top.replace(/\.sha256$/, '').replace(/\.origin\.json$/, '');
    const name = isManifest ? top.slice(0, -REMOTE_MANIFEST_SUFFIX.length) : manifests.has(bare) ? bare : bare.replace(/\.age$/, '');
    if (!parseBackupName(name)) continue; // not ours
    const e = byName.get(name) ?? { size: 0, manifest: false };
    if (isManifest) e.manifest = true;
    else e.size += o.size;
    byName.set(name, e);
  }
  const out: RemoteEntry[] = [];
  for (const [name, e] of byName) out.push({ name, complete: e.manifest, manifest: e.manifest ? await readRemoteManifest(store, name) : null, size: e.size });
  // One HEAD per backup, only where objects can be locked at all.
  if (opts.locks && (await store.lockEnabled().catch(() => false))) {
    for (const e of out) e.lockedUntil = e.complete ? await lockedUntil(store, e.name + REMOTE_MANIFEST_SUFFIX) : null;
  }
  return out.sort((a, b) => (parseBackupName(b.name)!.timestamp.localeCompare(parseBackupName(a.name)!.timestamp) || b.name.localeCompare(a.name)));
}

/** A problem found at a destination. */
export interface RemoteProblem {
  name: string;
  key?: string;
  problem: string;
}


/**
 * Checks every complete backup at the destination against its manifest: each object present with the recorded size
 * (and, with `deep`, downloaded and re-hashed). Needs no key: the manifest records the ciphertext's checksum.
 */
export async function verifyRemote(store: ObjectStore, opts: { deep?: boolean; names?: string[] } = {}): Promise<{ checked: string[]; problems: RemoteProblem[] }> {
  const problems: RemoteProblem[] = [];
  const checked: string[] = [];
  for (const e of await listRemote(store)) {
    if (opts.names?.length && !opts.names.includes(e.name)) continue;
    checked.push(e.name);
    if (!e.complete || !e.manifest) {
      problems.push({ name: e.name, problem: 'incomplete copy (no manifest): run `scitex-data copy` to finish it' });
      continue;
    }
    for (const o of e.manifest.objects) {
      const head = await store.head(o.key);
      if (!head) problems.push({ name: e.name, key: o.key, problem: 'missing' });
      else if (head.size !== o.size) problems.push({ name: e.name, key: o.key, problem: `size ${head.size}, manifest says ${o.size}` });
      else if (head.metadata.sha256 && head.metadata.sha256 !== o.sha256) problems.push({ name: e.name, key: o.key, problem: 'checksum in its metadata differs from the manifest' });
      else if (opts.deep) {
        if ((await sha256Stream(await store.download(o.key))) !== o.sha256) problems.push({ name: e.name, key: o.key, problem: `content does not match its recorded SHA-256 (tampered or damaged)` });
      }
    }
  }
  return { checked, problems };
}

/**
 * Downloads one backup into `toDir` (a staging directory, created private) and checks it before it is usable:
 * every object against the manifest's checksum, then — decrypted with `identity` into a temporary name — against
 * the plaintext checksum. Only then is it renamed into place, so a tampered copy never reaches a restore.
 */
export async function fetchRemote(store: ObjectStore, name: string, toDir: string, log: Logger, identity?: string): Promise<{ path: string; manifest: RemoteManifest }> {
  // The name becomes a path in the staging directory: only a backup name, never a path.
  if (name.includes('/') || !parseBackupName(name)) throw new UsageError(`Not a backup name: ${JSON.stringify(name)}.`, 'Use a name as `scitex-data remote list` shows it.');
  const m = await readRemoteManifest(store, name);
  if (!m) throw new ScitexError(`${name} is not (completely) at ${store.dest.label}.`, 'See `scitex-data remote list`.');
  // Sealed locally: the objects are the local sealed files, fetched as they are (the restore decrypts them).
  const decrypting = m.encrypted && !m.sealed;
  if (decrypting && !identity) throw new UsageError(`${name} is encrypted.`, 'Give --identity <file> with the age secret key of one of its recipients.');
  await ensurePrivateDir(toDir);
  const final = path.join(toDir, name);
  if (fs.existsSync(final)) throw new UsageError(`${final} already exists.`, 'Choose another --to directory, or remove it.');
  const work = path.join(toDir, `.fetch-${name}-${process.pid}`);
  await fsp.mkdir(work, { mode: 0o700 });
  try {
    for (const o of m.objects) {
      const rel = o.key.slice(name.length).replace(/^\//, '');
      const plainRel = decrypting ? rel.replace(/\.age$/, '') : rel;
      const originRecord = m.sealed && m.kind !== 'users' && o.key === name + ORIGIN_SUFFIX;
      // A manifest names only keys below its own backup: nothing may land outside the staging directory.
      if (!(o.key === name + (decrypting ? '.age' : '') || originRecord || o.key.startsWith(name + '/')) || plainRel.includes('/') || (m.kind === 'users' && (!plainRel || plainRel.startsWith('.')))) {
        throw new ScitexError(`The manifest of ${name} names an unexpected object ${JSON.stringify(o.key)}.`, 'The remote copy was tampered with; use another backup.');
      }
      const target = path.join(work, m.kind === 'users' ? plainRel : originRecord ? name + ORIGIN_SUFFIX : name);
      const stored = crypto.createHash('sha256');
      const plain = crypto.createHash('sha256');
      const tee = (h: crypto.Hash) => new Transform({ transform: (c: Buffer, _e, cb) => (h.update(c), cb(null, c)) });
      const src = (await store.download(o.key)).pipe(tee(stored));
      const tmp = target + '.partial';
      if (decrypting) {
        const dec = decryptStream(src, identity!);
        await Promise.all([pipeline(dec.output, tee(plain), fs.createWriteStream(tmp, { mode: 0o600, flags: 'wx' })), dec.done]);
      } else {
        await pipeline(src, tee(plain), fs.createWriteStream(tmp, { mode: 0o600, flags: 'wx' }));
      }
      if (stored.digest('hex') !== o.sha256) throw new ScitexError(`${o.key} at ${store.dest.label} does not match its recorded SHA-256: tampered or damaged.`, 'Nothing was restored; use another backup.');
      if (plain.digest('hex') !== o.plainSha256) throw new ScitexError(`${o.key} decrypted does not match the checksum of the backup it was made from.`, 'Nothing was restored; use another backup.');
      await fsp.rename(tmp, target);
      log.debug(`fetched ${o.key}`);
    }
    if (m.kind !== 'users') {
      // The checksum file a local restore expects beside a database backup.
      const o = m.objects.find((x) => x.key !== name + ORIGIN_SUFFIX)!;
      await fsp.writeFile(path.join(work, name + '.sha256'), `${o.plainSha256}  ${name}\n`, { mode: 0o600 });
      for (const f of await fsp.readdir(work)) await fsp.rename(path.join(work, f), path.join(toDir, f));
      await fsp.rmdir(work);
    } else {
      await fsp.rename(work, final);
    }
    await fsyncDir(toDir);
  } catch (err) {
    await fsp.rm(work, { recursive: true, force: true });
    throw err;
  }
  return { path: final, manifest: m };
}
