import type { ObjectStore } from '../../adapters/objectstore.js';
import type { BackupEntry } from '../catalog/index.js';
import { parseTimestamp } from '../time.js';
import type { Logger } from '../logger.js';
import { planRetention, type PruneDecision, type RetentionOptions, type RetentionPolicy } from '../catalog/index.js';
import { heldBy } from './lock.js';
import { listRemote } from './remote.js';
import { REMOTE_MANIFEST_SUFFIX } from './units.js';

/**
 * Applies the local calendar rules (per series, never the newest, partial sets never standing in for good ones) to
 * the complete backups at a destination. Incomplete copies are left for `copy` to finish. Deleting needs credentials
 * with delete rights, which the nightly job's can lack: run this with separate ones (e.g. AWS_PROFILE=prune).
 * A backup with any object still under Object Lock retention (or a legal hold) is kept, and says so.
 */
export async function pruneRemote(store: ObjectStore, policy: RetentionPolicy, log: Logger, opts: RetentionOptions & { dryRun?: boolean } = {}): Promise<PruneDecision[]> {
  const entries: BackupEntry[] = [];
  for (const r of await listRemote(store)) {
    const m = r.manifest;
    if (!r.complete || !m) continue;
    entries.push({ kind: m.kind, series: m.series, name: m.name, path: `${store.dest.label}/${m.name}`, time: m.timestamp ? parseTimestamp(m.timestamp) : null, timestamp: m.timestamp, size: r.size, checksum: true, partial: m.set?.partial, set: m.set });
  }
  const decisions = planRetention(entries, policy, opts);
  const doomed = decisions.filter((x) => !x.keep);
  if (!doomed.length) return decisions;
  // In a versioned bucket (Object Lock implies one) a delete without a version only adds a delete marker: the bytes
  // stay, billed and, when locked, undeletable. There every version of the backup's keys is named and deleted.
  const versioned = await store.versioned();
  const all = versioned ? await store.versions() : (await store.list()).map((o) => ({ key: o.key, versionId: undefined, deleteMarker: false }));
  // Without a lock configuration nothing can be held; when the credentials may not read it, every version is asked.
  const lockable = await store.lockEnabled().catch(() => true);
  const now = opts.now ?? new Date();
  for (const d of doomed) {
    const name = d.entry.name;
    const manifest = name + REMOTE_MANIFEST_SUFFIX;
    // Exact suffixes only: `x.sql` must not take `x.sql.gz` with it.
    const own = new Set(['', '.sha256', '.age', '.age.sha256', '.origin.json', '.origin.json.sha256', REMOTE_MANIFEST_SUFFIX].map((x) => name + x));
    const mine = all.filter((o) => o.key.startsWith(name + '/') || own.has(o.key));
    // Checked before the manifest goes: a delete marker on a locked manifest would hide a backup that cannot be removed.
    const held = lockable ? await heldBy(store, mine, now) : null;
    if (held) {
      d.keep = true;
      d.reasons = [held];
      continue;
    }
    if (opts.dryRun) continue;
    // The manifest goes first: a prune cut short leaves an incomplete copy, never a complete-looking damaged one.
    const first = mine.filter((o) => o.key === manifest);
    const rest = mine.filter((o) => o.key !== manifest);
    if (versioned) {
      await store.deleteVersions(first.map((o) => ({ key: o.key, versionId: o.versionId! })));
      await store.deleteVersions(rest.map((o) => ({ key: o.key, versionId: o.versionId! })));
    } else {
      await store.delete([manifest]);
      await store.delete(rest.map((o) => o.key));
    }
    log.debug(`deleted ${name} at ${store.dest.label} (${mine.length} objects${versioned ? ' and versions' : ''})`);
  }
  return decisions;
}
