import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parseSha256sumLine } from '../fs/hash.js';
import { atInstants, localTime, parseTimestamp } from '../time.js';
import { UsageError } from '../../errors.js';

import { inspectSet, type SetSummary } from './setcheck.js';
import type { ResolvedConfig } from '../config/index.js';

/** What a backup holds. */
export type BackupKind = 'postgres' | 'sqlite' | 'users';

/** One backup found in the backup directory. */
export interface BackupEntry {
  kind: BackupKind;
  /** Series it belongs to: the database name (or SQLite base name), or "users". */
  series: string;
  name: string;
  path: string;
  /** UTC time parsed from the name; null when it cannot be parsed (such a backup is never pruned). */
  time: Date | null;
  timestamp: string | null;
  size: number;
  /** Whether a recorded checksum exists (a sidecar for files, SHA256SUMS for sets). */
  checksum: boolean;
  /** True for a user set marked partial (some user changed while it was read). */
  partial?: boolean;
  /** For a user set: what its manifest holds, or why it cannot be trusted. */
  set?: SetSummary;
}

// `.age`: sealed (age-encrypted) by `backup --encrypt-local`.
const DB_RE = /^(.+?)_(?:backup_)?(\d{8}_\d{6})\.(dump|sql|sql\.gz|db|db\.gz)(?:\.age)?$/;
const SET_RE = /^users_(\d{8}_\d{6})$/;

/** Classifies a file or directory name of the backup directory; null when it is not a backup. */
export function parseBackupName(name: string): { kind: BackupKind; series: string; timestamp: string } | null {
  if (name.startsWith('.')) return null;
  const s = SET_RE.exec(name);
  if (s) return { kind: 'users', series: 'users', timestamp: s[1]! };
  const m = DB_RE.exec(name);
  if (!m) return null;
  const kind: BackupKind = m[3]!.startsWith('db') ? 'sqlite' : 'postgres';
  return { kind, series: m[1]!, timestamp: m[2]! };
}

/** Lists every backup in `dir`, newest first (unparseable times last). */
export async function listBackups(dir: string): Promise<BackupEntry[]> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const set = new Set(names);
  const out: BackupEntry[] = [];
  for (const name of names) {
    if (name.startsWith('.') || name.endsWith(CHECKSUM_SUFFIX)) continue;
    const p = path.join(dir, name);
    const st = await fsp.lstat(p);
    const parsed = parseBackupName(name);
    if (parsed?.kind === 'users' && st.isDirectory()) {
      const set = inspectSet(p);
      out.push({ ...parsed, name, path: p, time: parseTimestamp(parsed.timestamp), size: set.size, checksum: fs.existsSync(path.join(p, 'SHA256SUMS')), partial: set.partial, set });
    } else if (st.isFile()) {
      // Legacy backups (e.g. from the old cron scripts) are listed too, with what we can tell.
      const legacy = parsed ?? legacyGuess(name);
      if (!legacy) continue;
      out.push({ ...legacy, name, path: p, time: legacy.timestamp ? parseTimestamp(legacy.timestamp) : null, size: st.size, checksum: set.has(name + CHECKSUM_SUFFIX) });
    }
  }
  return out.sort((a, b) => (b.time?.getTime() ?? -Infinity) - (a.time?.getTime() ?? -Infinity) || b.name.localeCompare(a.name));
}

function legacyGuess(name: string): { kind: BackupKind; series: string; timestamp: string | null } | null {
  const m = /^(.+?)\.(dump|sql|sql\.gz|db|db\.gz)$/.exec(name);
  if (!m) return null;
  return { kind: m[2]!.startsWith('db') ? 'sqlite' : 'postgres', series: m[1]!, timestamp: null };
}

/** The recorded SHA-256 of a database backup file, or null when no checksum file exists. */
export function recordedChecksum(file: string): string | null {
  try {
    const line = fs.readFileSync(file + CHECKSUM_SUFFIX, 'utf8').split('\n')[0] ?? '';
    return parseSha256sumLine(line)?.digest ?? 'unparseable';
  } catch {
    return null;
  }
}

/** User sets in the backup directory, newest first. */
export async function listUserSets(backupDir: string): Promise<{ path: string; timestamp: string }[]> {
  return (await listBackups(backupDir)).filter((e) => e.kind === 'users' && e.timestamp).map((e) => ({ path: e.path, timestamp: e.timestamp! }));
}

/** Suffix of the checksum file written beside each database backup. */
export const CHECKSUM_SUFFIX = '.sha256';

/** Series name of the configured database: the PostgreSQL name or the SQLite file's base name. */
export function databaseSeries(cfg: ResolvedConfig): string {
  return cfg.database.kind === 'postgres' ? cfg.database.name.value : path.basename(cfg.database.path, '.db');
}

/**
 * The backup a --at value names among `entries` (one series), or a UsageError that names the nearest backups
 * before and after it. Accepts what `list` shows and the raw stamp of a name.
 */
export function resolveAt<T extends Pick<BackupEntry, 'name' | 'time' | 'timestamp'>>(entries: T[], at: string, what: string): T {
  const exact = entries.find((e) => e.timestamp === at.trim()) ?? entries.find((e) => !e.time && at.trim().length >= 8 && e.name.includes(at.trim()));
  if (exact) return exact;
  const instants = atInstants(at);
  for (const i of instants) {
    const hits = entries.filter((e) => e.time && e.time.getTime() >= i.from && e.time.getTime() < i.to);
    if (hits.length === 1) return hits[0]!;
    if (hits.length > 1) throw new UsageError(`${at} matches ${hits.length} ${what}: ${hits.map((e) => e.name).join(', ')}.`, 'Give the seconds, or the stamp of the name.');
  }
  if (!instants.length) throw new UsageError(`--at ${JSON.stringify(at)} is not a time.`, 'Give it as `scitex-data list` shows it (YYYY-MM-DD HH:MM:SS +HH:MM, quoted) or as the stamp in the name (YYYYMMDD_HHMMSS, UTC).');
  const t = instants[0]!.from;
  const dated = entries.filter((e) => e.time);
  const before = dated.filter((e) => e.time!.getTime() < t).sort((a, b) => b.time!.getTime() - a.time!.getTime())[0];
  const after = dated.filter((e) => e.time!.getTime() >= t).sort((a, b) => a.time!.getTime() - b.time!.getTime())[0];
  const show = (e: T | undefined) => (e ? `${localTime(e.time!)} (${e.name})` : 'none');
  throw new UsageError(
    `No ${what} taken at ${at} (${localTime(new Date(t))}). Nearest: before ${show(before)}; after ${show(after)}.`,
    'Pass --at as `scitex-data list` shows it, or the stamp in the name (YYYYMMDD_HHMMSS, UTC).',
  );
}
