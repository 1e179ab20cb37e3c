import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { listBackups, type BackupEntry } from './catalog.js';
import { UsageError } from '../../errors.js';
import { fsyncDir, partialName, writeFileAtomic } from '../fs/atomic.js';
import type { Logger } from '../logger.js';
import { CHECKSUM_SUFFIX } from './catalog.js';
import { ORIGIN_SUFFIX } from './origin.js';

/** How many backups to keep (restic's forget, per series): the newest N, those within a span, and calendar buckets. */
export interface RetentionPolicy {
  /** The newest N complete backups. */
  last?: number;
  /** Every complete backup younger than this many milliseconds. */
  within?: number;
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
export const hasPolicy = (p: RetentionPolicy): boolean => !!(p.last || p.within || p.daily || p.weekly || p.monthly);

/** The hint for an empty policy. */
export const NO_POLICY_HINT = 'Pass at least one of --keep-last, --keep-within, --keep-daily, --keep-weekly, --keep-monthly.';

const UNIT_MS: Record<string, number> = { y: 365 * 86_400_000, m: 30 * 86_400_000, w: 7 * 86_400_000, d: 86_400_000, h: 3_600_000 };

/** Parses a span like `30d`, `12h`, `2w`, `6m` (30-day months), `1y` or `1y6m` into milliseconds; null when it is not one. */
export function parseDuration(text: string): number | null {
  if (!/^(\d+[ymwdh])+$/.test(text)) return null;
  let ms = 0;
  for (const [, n, u] of text.matchAll(/(\d+)([ymwdh])/g)) ms += Number(n) * UNIT_MS[u!]!;
  return Number.isSafeInteger(ms) ? ms : null;
}

/** A span in milliseconds as the shortest text parseDuration reads back (`30d`, `1y6m`, `36h`). */
export function formatDuration(ms: number): string {
  let out = '';
  for (const [u, n] of Object.entries(UNIT_MS)) {
    if (ms >= n) {
      out += `${Math.floor(ms / n)}${u}`;
      ms %= n;
    }
  }
  return out || '0h';
}

/** The policy the last pruning run applied (hidden in the backup directory; the catalog never lists it). */
export const POLICY_FILE = '.scitex-data-retention.json';

/** The policy the last pruning run applied, or null when none is recorded (or it cannot be read). */
export function recordedPolicy(dir: string): { policy: RetentionPolicy; applied: string } | null {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(dir, POLICY_FILE), 'utf8')) as { policy?: RetentionPolicy; applied?: string };
    const p = j.policy ?? {};
    const n = (x: unknown) => (Number.isInteger(x) && (x as number) >= 0 ? (x as number) : undefined);
    const policy: RetentionPolicy = { last: n(p.last), within: n(p.within), daily: n(p.daily), weekly: n(p.weekly), monthly: n(p.monthly) };
    return hasPolicy(policy) ? { policy, applied: String(j.applied ?? '') } : null;
  } catch {
    return null;
  }
}

/** The policy as the flags that express it. */
export function describePolicy(p: RetentionPolicy): string {
  const parts: string[] = [];
  if (p.last) parts.push(`--keep-last ${p.last}`);
  if (p.within) parts.push(`--keep-within ${formatDuration(p.within)}`);
  if (p.daily) parts.push(`--keep-daily ${p.daily}`);
  if (p.weekly) parts.push(`--keep-weekly ${p.weekly}`);
  if (p.monthly) parts.push(`--keep-monthly ${p.monthly}`);
  return parts.join(' ');
}

/** Suffix of the marker that pins a backup (beside the file or the set directory): retention never deletes it. */
export const PIN_SUFFIX = '.pinned';

/** The pin note of a backup, or null when it is not pinned. */
export function pinOf(backupPath: string): { note: string; pinnedAt: string | null } | null {
  let text: string;
  try {
    text = fs.readFileSync(backupPath + PIN_SUFFIX, 'utf8');
  } catch {
    return null;
  }
  try {
    const j = JSON.parse(text) as { note?: unknown; pinnedAt?: unknown };
    return { note: typeof j.note === 'string' ? j.note : '', pinnedAt: typeof j.pinnedAt === 'string' ? j.pinnedAt : null };
  } catch {
    return { note: '', pinnedAt: null }; // still a pin: a marker we cannot read must err on keeping
  }
}

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
  /** Pinned backups (path -> note): always kept. prune() reads them from the directory. */
  pins?: Map<string, string>;
}

/** The pins of the listed backups (path -> note). */
export function readPins(entries: BackupEntry[]): Map<string, string> {
  const pins = new Map<string, string>();
  for (const e of entries) {
    const p = pinOf(e.path);
    if (p) pins.set(e.path, p.note);
  }
  return pins;
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
  if (!hasPolicy(policy)) throw new UsageError('No retention rule given.', NO_POLICY_HINT);
  const now = (opts.now ?? new Date()).getTime();
  const horizon = now + FUTURE_TOLERANCE_MS;
  const reasons = new Map<BackupEntry, string[]>();
  const add = (e: BackupEntry, r: string) => reasons.set(e, [...(reasons.get(e) ?? []), r]);
  const series = new Map<string, BackupEntry[]>();
  const untrusted: BackupEntry[] = [];
  for (const e of entries) {
    if (opts.justMade?.some((p) => p === e.path || p.startsWith(e.path + '/'))) add(e, 'just made');
    const pin = opts.pins ? opts.pins.get(e.path) : undefined;
    if (pin !== undefined) add(e, pin ? `pinned: ${pin}` : 'pinned');
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
    complete.slice(0, policy.last ?? 0).forEach((e, i) => add(e, `last ${i + 1}/${policy.last}`));
    if (policy.within) for (const e of complete) if (now - e.time!.getTime() <= policy.within) add(e, `within ${formatDuration(policy.within)}`);
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
  const entries = await listBackups(dir);
  const decisions = planRetention(entries, policy, { ...opts, pins: readPins(entries) });
  if (opts.dryRun) return decisions;
  // Remembered so that `status` can show what the next run's retention will delete.
  await writeFileAtomic(path.join(dir, POLICY_FILE), JSON.stringify({ policy, applied: new Date().toISOString() }) + '\n').catch((err: Error) => log.debug(`could not record the policy: ${err.message}`));
  for (const d of decisions.filter((x) => !x.keep)) {
    log.debug(`removing ${d.entry.path}`);
    // Rename first (atomic): a crash mid-delete leaves a hidden partial name the next run removes,
    // never a half-deleted set that still looks like a backup.
    const doomed = partialName(d.entry.path);
    await fsp.rename(d.entry.path, doomed);
    await fsp.rm(d.entry.path + CHECKSUM_SUFFIX, { force: true });
    await fsp.rm(d.entry.path + ORIGIN_SUFFIX, { force: true }); // a sealed backup's holds its plaintext checksum
    await fsp.rm(doomed, { recursive: true, force: true });
  }
  if (decisions.some((x) => !x.keep)) await fsyncDir(dir);
  return decisions;
}

/** Finds a backup by name (or path) in the backup directory; a UsageError names the way to list them. */
export async function findBackup(dir: string, name: string): Promise<BackupEntry> {
  const base = name.replace(/\/+$/, '').split('/').pop()!;
  const e = (await listBackups(dir)).find((x) => x.name === base);
  if (!e) throw new UsageError(`No backup named ${JSON.stringify(base)} in ${dir}.`, 'Run `scitex-data list` to see the backups.');
  return e;
}

/** Pins a backup (a `.pinned` marker beside it, outside SHA256SUMS: a pin is a decision about the backup, not part of it). */
export async function pinBackup(dir: string, name: string, note = ''): Promise<BackupEntry> {
  const e = await findBackup(dir, name);
  await writeFileAtomic(e.path + PIN_SUFFIX, JSON.stringify({ pinnedAt: new Date().toISOString(), note }) + '\n');
  return e;
}

/** Removes a backup's pin; returns false when it was not pinned. */
export async function unpinBackup(dir: string, name: string): Promise<boolean> {
  const e = await findBackup(dir, name);
  if (!pinOf(e.path)) return false;
  await fsp.rm(e.path + PIN_SUFFIX, { force: true });
  await fsyncDir(dir);
  return true;
}
