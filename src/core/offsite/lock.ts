import type { ObjectStore } from '../../adapters/objectstore.js';

/**
 * Why a destination that asks for Object Lock retention (lock_days) cannot have it, or null when it can (or does not
 * ask). Checked before anything is sent: a copy the operator believes locked must not quietly land unlocked.
 */
export async function objectLockProblem(store: ObjectStore, signal?: AbortSignal): Promise<string | null> {
  const lock = store.dest.lock;
  if (!lock || (await store.lockEnabled(signal))) return null;
  return (
    `Object Lock is not enabled on bucket ${store.dest.bucket}, which lock_days=${lock.days} asks for; nothing was sent there: ` +
    'create the bucket with Object Lock enabled (e.g. `aws s3api create-bucket --object-lock-enabled-for-bucket`), or remove lock_days from the URL'
  );
}

/**
 * Why some version of these objects may not be deleted yet ("locked until <date>", the latest such date, or "under a
 * legal hold"), or null when none is held. Delete markers hold nothing; `now` is when the deletion would happen.
 */
export async function heldBy(store: ObjectStore, versions: { key: string; versionId?: string; deleteMarker?: boolean }[], now: Date): Promise<string | null> {
  let until: Date | undefined;
  for (const v of versions) {
    if (v.deleteMarker) continue;
    const h = await store.head(v.key, undefined, v.versionId);
    if (!h) continue;
    if (h.legalHold) return `under a legal hold (${v.key})`;
    if (h.lockUntil && h.lockUntil > now && (!until || h.lockUntil > until)) until = h.lockUntil;
  }
  return until ? `locked until ${until.toISOString()}` : null;
}

/** When the object's current version is retained until (its Object Lock date), or null when it is not locked. */
export async function lockedUntil(store: ObjectStore, key: string): Promise<string | null> {
  const h = await store.head(key);
  return h?.lockUntil ? h.lockUntil.toISOString() : null;
}
