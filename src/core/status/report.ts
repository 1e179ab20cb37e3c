import fs from 'node:fs';
import path from 'node:path';
import { databaseSeries, FUTURE_TOLERANCE_MS, hasPolicy, listBackups, pinOf, planRetention, readPins, recordedPolicy, type BackupEntry, type RetentionPolicy } from '../catalog/index.js';
import type { ResolvedConfig } from '../config/index.js';
import { findLeftovers, type Leftover } from './leftovers.js';

/** Name of the run-state file the CLI keeps in the backup directory (the last run of each command). */
export const RUN_STATE_FILE = '.scitex-data-state.json';

/** One recorded run, as the state file holds it. */
export interface LastRun {
  command: string;
  result: string;
  exitCode: number | null;
  finished: string | null;
  durationMs: number | null;
  message: string;
}

/** Per kind (each database series, the full user sets): the newest good backup and whether it is fresh. */
export interface KindStatus {
  kind: string;
  /** True for the configured database and the users: their absence or age is a problem. */
  required: boolean;
  newest: { name: string; path: string; time: string; ageHours: number; size: number; pinned: boolean } | null;
  backups: number;
  state: 'ok' | 'stale' | 'missing' | 'extra';
}

/** Everything `status` reports. */
export interface StatusReport {
  backupDir: string;
  maxAgeHours: number;
  kinds: KindStatus[];
  /** The last recorded run of each command; empty when no run was recorded yet. */
  lastRuns: LastRun[];
  retention: { policy: RetentionPolicy; source: 'flags' | 'last run'; wouldDelete: { name: string; size: number }[] } | null;
  leftovers: { items: Leftover[]; totalBytes: number; notes: string[] };
  /** What makes the status fail (exit 3): stale or missing backups, a failed last backup or verify. */
  problems: string[];
}

/** The state file's runs; absent, unreadable or foreign files read as none (they only feed reports). */
export function readLastRuns(backupDir: string): LastRun[] {
  try {
    const file = path.join(backupDir, RUN_STATE_FILE);
    if (!fs.lstatSync(file).isFile()) return [];
    const j = JSON.parse(fs.readFileSync(file, 'utf8')) as { lastRun?: Record<string, Record<string, unknown>> };
    return Object.entries(j.lastRun ?? {}).map(([command, r]) => ({
      command,
      result: typeof r.result === 'string' ? r.result : 'unknown',
      exitCode: typeof r.exitCode === 'number' ? r.exitCode : null,
      finished: typeof r.finished === 'string' ? r.finished : null,
      durationMs: typeof r.durationMs === 'number' ? r.durationMs : null,
      message: typeof r.message === 'string' ? r.message : '',
    }));
  } catch {
    return [];
  }
}

const good = (e: BackupEntry, horizon: number) => !!e.time && e.time.getTime() <= horizon && !e.partial && e.checksum && (e.kind !== 'users' || (!!e.set && !e.set.problem && !e.set.selection));

/** Builds the status of the backups, the last runs, retention's next deletions and the leftovers. */
export async function status(cfg: ResolvedConfig, opts: { maxAgeHours: number; policy?: RetentionPolicy; pg?: boolean; now?: Date }): Promise<StatusReport> {
  const now = opts.now ?? new Date();
  const dir = cfg.backupDir.value;
  const all = await listBackups(dir);
  const horizon = now.getTime() + FUTURE_TOLERANCE_MS;
  const problems: string[] = [];
  const configured = `${cfg.database.kind} ${databaseSeries(cfg)}`;
  const keys = new Set([configured, ...all.filter((e) => e.kind !== 'users').map((e) => `${e.kind} ${e.series}`), 'users']);
  const kinds: KindStatus[] = [];
  for (const key of keys) {
    const mine = all.filter((e) => (e.kind === 'users' ? 'users' : `${e.kind} ${e.series}`) === key);
    const newest = mine.find((e) => good(e, horizon));
    const required = key === configured || key === 'users';
    const ageHours = newest ? (now.getTime() - newest.time!.getTime()) / 3_600_000 : 0;
    const state = !newest ? (required ? 'missing' : 'extra') : !required ? 'extra' : ageHours > opts.maxAgeHours ? 'stale' : 'ok';
    if (state === 'missing') problems.push(`no good ${key} backup in ${dir}`);
    if (state === 'stale') problems.push(`newest ${key} backup ${newest!.name} is ${ageHours.toFixed(1)} h old (max ${opts.maxAgeHours} h)`);
    kinds.push({
      kind: key,
      required,
      newest: newest ? { name: newest.name, path: newest.path, time: newest.time!.toISOString(), ageHours: Math.round(ageHours * 10) / 10, size: newest.size, pinned: !!pinOf(newest.path) } : null,
      backups: mine.length,
      state,
    });
  }
  const lastRuns = readLastRuns(dir);
  for (const r of lastRuns) {
    if ((r.command === 'backup' || r.command === 'verify' || r.command === 'copy') && r.result !== 'ok') problems.push(`the last ${r.command} ${r.result}${r.exitCode !== null ? ` (exit ${r.exitCode})` : ''}${r.message ? `: ${r.message}` : ''}`);
  }
  const given = opts.policy && hasPolicy(opts.policy) ? opts.policy : null;
  const rec = given ? null : recordedPolicy(dir);
  const policy = given ?? rec?.policy ?? null;
  const retention = policy
    ? {
        policy,
        source: given ? ('flags' as const) : ('last run' as const),
        wouldDelete: planRetention(all, policy, { now, pins: readPins(all) }).filter((d) => !d.keep).map((d) => ({ name: d.entry.name, size: d.entry.size })),
      }
    : null;
  const found = await findLeftovers(cfg, { pg: opts.pg });
  return { backupDir: dir, maxAgeHours: opts.maxAgeHours, kinds, lastRuns, retention, leftovers: { items: found.items, totalBytes: found.items.reduce((t, l) => t + l.size, 0), notes: found.notes }, problems };
}
