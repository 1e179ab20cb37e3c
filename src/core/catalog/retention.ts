import fsp from 'node:fs/promises';
import { listBackups, type BackupEntry } from './catalog.js';
import { UsageError } from '../../errors.js';
import { fsyncDir, partialName } from '../fs/atomic.js';
import type { Logger } from '../logger.js';
import { CHECKSUM_SUFFIX } from './catalog.js';

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

/** Backups dated further ahead than this are taken for clock skew: kept, never counted as the newest. */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

/** What retention needs besides the policy. */
export interface RetentionOptions {
  /** The current time (default: now). */
  now?: Date;
  /** Paths this run just published (a backup file, a set or a file inside it): always kept. */
  justMade?: string[];
}

const BUCKETS: [keyof RetentionPolicy, (d: Date) => string][] = [
  ['daily', (d) => d.toISOString().slice(0, 10)],
  ['weekly', isoWeek],
  ['monthly', (d) => d.toISOString().slice(0, 7)],
];
const byTime = (a: BackupEntry, b: BackupEntry) => b.time!.getTime() - a.time!.getTime() || b.name.localeCompare(a.name);
const some = (xs: string[]) => (xs.length > 4 ? `${xs.slice(0, 4).join(', ')} and ${xs.length - 4} more` : xs.join(', '));

/** The series a placed backup belongs to (restic's group), or null for a user set that cannot be trusted. */
function seriesOf(e: BackupEntry): string | null {
  if (e.kind !== 'users') return `${e.kind} ${e.series}`;
  if (!e.set || e.set.problem) return null;
  return e.set.selection ? `users --user ${e.set.selection.join(',')}` : 'users';
}

/**
 * Decides what to keep, per series like restic's forget: each database, the full user sets, each
 * --user selection. In each series the calendar rules and "newest" pick only complete backups
 * (a partial or unreadable set never stands in for a good one). On top, every user keeps the newest
 * set holding a clean archive of theirs. Undated backups, backups dated in the future and what this
 * run just made are never deleted.
 */
export function planRetention(entries: BackupEntry[], policy: RetentionPolicy, opts: RetentionOptions = {}): PruneDecision[] {
  if (!hasPolicy(policy)) throw new UsageError('No retention rule given.', 'Pass at least one of --keep-daily, --keep-weekly, --keep-monthly.');
  const horizon = (opts.now ?? new Date()).getTime() + FUTURE_TOLERANCE_MS;
  const reasons = new Map<BackupEntry, string[]>();
  const add = (e: BackupEntry, r: string) => reasons.set(e, [...(reasons.get(e) ?? []), r]);
  const series = new Map<string, BackupEntry[]>();
  const untrusted: BackupEntry[] = [];
  for (const e of entries) {
    if (opts.justMade?.some((p) => p === e.path || p.startsWith(e.path + '/'))) add(e, 'just made');
    if (!e.time) add(e, 'date not parseable');
    else if (e.time.getTime() > horizon) add(e, `dated in the future (${e.time.toISOString()}): clock skew?`);
    else {
      const key = seriesOf(e);
      if (key === null) untrusted.push(e);
      else series.set(key, [...(series.get(key) ?? []), e]);
    }
  }
  let newestFull: BackupEntry | undefined;
  for (const [key, list] of series) {
    list.sort(byTime);
    const complete = list.filter((e) => !e.partial);
    for (const [rule, bucketOf] of BUCKETS) {
      const n = policy[rule] ?? 0;
      const seen = new Set<string>();
      for (const e of complete) {
        if (seen.size >= n) break;
        const b = bucketOf(e.time!);
        if (seen.has(b)) continue;
        seen.add(b);
        add(e, `${rule} ${b}`);
      }
    }
    if (complete[0]) add(complete[0], 'newest');
    if (key === 'users') newestFull = complete[0];
    // A partial set is kept until a newer complete one exists: it may hold the only copy of some users.
    for (const e of list) if (e.partial && (!complete[0] || complete[0].time! < e.time!)) add(e, 'partial, no newer complete set');
  }
  for (const e of untrusted) {
    // Not complete, but it may be all that is left of what it holds: kept until a complete full set is newer.
    if (!newestFull || newestFull.time! < e.time!) add(e, `not complete (${e.set?.problem ?? 'manifest not read'}), no newer complete full set`);
  }
  // Per user: the newest set with a clean archive of theirs, else the newest with any archive of theirs.
  const perUser = new Map<string, { clean?: BackupEntry; any?: BackupEntry }>();
  for (const e of [...series.values()].flat().filter((x) => x.kind === 'users').sort(byTime)) {
    for (const u of e.set!.users) {
      const r = perUser.get(u.username) ?? {};
      r.any ??= e;
      if (u.clean) r.clean ??= e;
      perUser.set(u.username, r);
    }
  }
  const onlyFor = new Map<BackupEntry, string[]>();
  for (const [user, r] of perUser) {
    const e = (r.clean ?? r.any)!;
    if (!reasons.has(e) || onlyFor.has(e)) onlyFor.set(e, [...(onlyFor.get(e) ?? []), r.clean ? user : `${user} (partial)`]);
  }
  for (const [e, users] of onlyFor) add(e, `newest archive of ${some(users.sort())}`);
  return entries.map((e) => ({ entry: e, keep: reasons.has(e), reasons: reasons.get(e) ?? [] }));
}

/** Applies the policy to the backup directory and returns every decision (kept with reasons, deleted); with dryRun only reports. */
export async function prune(dir: string, policy: RetentionPolicy, log: Logger, opts: RetentionOptions & { dryRun?: boolean } = {}): Promise<PruneDecision[]> {
  const decisions = planRetention(await listBackups(dir), policy, opts);
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
