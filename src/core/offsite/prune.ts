import type { ObjectStore } from '../../adapters/objectstore.js';
import type { BackupEntry } from '../catalog/index.js';
import { parseTimestamp } from '../time.js';
import type { Logger } from '../logger.js';
import { planRetention, type PruneDecision, type RetentionOptions, type RetentionPolicy } from '../catalog/index.js';
import { listRemote } from './remote.js';
import { REMOTE_MANIFEST_SUFFIX } from './units.js';

/**
 * Applies the local calendar rules (per series, never the newest, partial sets never standing in for good ones) to
 * the complete backups at a destination. Incomplete copies are left for `copy` to finish. Deleting needs credentials
 * with delete rights, which the nightly job's can lack: run this with separate ones (e.g. AWS_PROFILE=prune).
 */
export async function pruneRemote(store: ObjectStore, policy: RetentionPolicy, log: Logger, opts: RetentionOptions & { dryRun?: boolean } = {}): Promise<PruneDecision[]> {
  const entries: BackupEntry[] = [];
  for (const r of await listRemote(store)) {
    const m = r.manifest;
    if (!r.complete || !m) continue;
    entries.push({ kind: m.kind, series: m.series, name: m.name, path: `${store.dest.label}/${m.name}`, time: m.timestamp ? parseTimestamp(m.timestamp) : null, timestamp: m.timestamp, size: r.size, checksum: true, partial: m.set?.partial, set: m.set });
  }
  const decisions = planRetention(entries, policy, opts);
  if (opts.dryRun) return decisions;
  const all = await store.list();
  for (const d of decisions.filter((x) => !x.keep)) {
    const name = d.entry.name;
    // The manifest goes first: a prune cut short leaves an incomplete copy, never a complete-looking damaged one.
    await store.delete([name + REMOTE_MANIFEST_SUFFIX]);
    // Exact suffixes only: `x.sql` must not take `x.sql.gz` with it.
    const own = new Set(['', '.sha256', '.age', '.age.sha256', '.origin.json', '.origin.json.sha256'].map((x) => name + x));
    const keys = all.map((o) => o.key).filter((k) => k.startsWith(name + '/') || own.has(k));
    await store.delete(keys);
    log.debug(`deleted ${name} at ${store.dest.label} (${keys.length} objects)`);
  }
  return decisions;
}
