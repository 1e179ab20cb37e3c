import fsp from 'node:fs/promises';
import { listBackups, type BackupEntry } from './catalog.js';
import { UsageError } from './errors.js';
import { fsyncDir, partialName } from './fsafe.js';
import type { Logger } from './logger.js';
import { CHECKSUM_SUFFIX } from './publish.js';

/** How many daily, weekly and monthly backups to keep (restic's forget, per series). */
export interface RetentionPolicy {
  daily?: number;
  weekly?: number;
  monthly?: number;
}

/** The decision for one backup. */
export interface PruneDecision {
  entry: BackupEntry;
  keep: boolean;
  reasons: string[];
}

/** True when the policy keeps anything at all (an empty policy would delete everything: refused). */
export const hasPolicy = (p: RetentionPolicy): boolean => !!(p.daily || p.weekly || p.monthly);

const isoWeek = (d: Date): string => {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day);
  const y = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(y, 0, 1)) / 86400000 + 1) / 7);
  return `${y}-W${week}`;
};

/** Decides, per series, what to keep: newest of each of the last N days/weeks/months, the newest, and anything undated. */
export function planRetention(entries: BackupEntry[], policy: RetentionPolicy): PruneDecision[] {
  if (!hasPolicy(policy)) throw new UsageError('No retention rule given.', 'Pass at least one of --keep-daily, --keep-weekly, --keep-monthly.');
  const bySeries = new Map<string, BackupEntry[]>();
  for (const e of entries) {
    const key = `${e.kind}:${e.series}`;
    bySeries.set(key, [...(bySeries.get(key) ?? []), e]);
  }
  const out: PruneDecision[] = [];
  for (const list of bySeries.values()) {
    const dated = list.filter((e) => e.time && !e.partial).sort((a, b) => b.time!.getTime() - a.time!.getTime());
    const reasons = new Map<BackupEntry, string[]>();
    const add = (e: BackupEntry, r: string) => reasons.set(e, [...(reasons.get(e) ?? []), r]);
    const buckets: [keyof RetentionPolicy, (d: Date) => string][] = [
      ['daily', (d) => d.toISOString().slice(0, 10)],
      ['weekly', isoWeek],
      ['monthly', (d) => d.toISOString().slice(0, 7)],
    ];
    for (const [rule, bucketOf] of buckets) {
      const n = policy[rule] ?? 0;
      const seen = new Set<string>();
      for (const e of dated) {
        if (seen.size >= n) break;
        const b = bucketOf(e.time!);
        if (seen.has(b)) continue;
        seen.add(b);
        add(e, `${rule} ${b}`);
      }
    }
    const newest = list.filter((e) => e.time).sort((a, b) => b.time!.getTime() - a.time!.getTime())[0];
    if (newest) add(newest, 'newest');
    for (const e of list) {
      if (!e.time) add(e, 'date not parseable');
      // A partial set is kept until a newer complete one exists: it may hold the only copy of some users.
      if (e.partial && (!dated[0] || dated[0].time! < e.time!)) add(e, 'partial, no newer complete set');
    }
    for (const e of list) out.push({ entry: e, keep: reasons.has(e), reasons: reasons.get(e) ?? [] });
  }
  return out;
}

/** Applies the policy to the backup directory; with dryRun only reports. */
export async function prune(dir: string, policy: RetentionPolicy, log: Logger, opts: { dryRun?: boolean } = {}): Promise<PruneDecision[]> {
  const decisions = planRetention(await listBackups(dir), policy);
  if (opts.dryRun) return decisions;
  for (const d of decisions.filter((x) => !x.keep)) {
    log.debug(`removing ${d.entry.path}`);
    // Rename first (atomic): a crash mid-delete leaves a hidden partial name the next run removes,
    // never a half-deleted set that still looks like a backup.
    const doomed = partialName(d.entry.path);
    await fsp.rename(d.entry.path, doomed);
    await fsp.rm(d.entry.path + CHECKSUM_SUFFIX, { force: true });
    await fsp.rm(doomed, { recursive: true, force: true });
  }
  if (decisions.some((x) => !x.keep)) await fsyncDir(dir);
  return decisions;
}
