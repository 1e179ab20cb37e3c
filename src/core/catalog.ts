import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { parseSha256sumLine, parseTimestamp } from './fsafe.js';
import { CHECKSUM_SUFFIX } from './publish.js';
import { UsageError } from './errors.js';
import { inspectSet, type SetSummary } from './setcheck.js';

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

const DB_RE = /^(.+?)_(?:backup_)?(\d{8}_\d{6})\.(dump|sql|sql\.gz|db|db\.gz)$/;
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

const p2 = (n: number) => String(n).padStart(2, '0');

/** A time as `list` shows it: the operator's local time (TZ respected) with its UTC offset. */
export function localTime(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const o = Math.abs(off);
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${sign}${p2(Math.floor(o / 60))}:${p2(o % 60)}`;
}

/**
 * The instants a --at value can mean, each as [from, to) in ms: what `list` shows (`YYYY-MM-DD HH:MM[:SS] ±HH:MM`,
 * also with `T`, `Z` or no offset, which means the operator's local time), or a name stamp `YYYYMMDD_HHMMSS`,
 * which names are written in (UTC) but which an operator may also type in local time (`date +%Y%m%d_%H%M%S`).
 */
function atInstants(at: string): { from: number; to: number; how: string }[] {
  const s = at.trim();
  const stamp = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (stamp) {
    const [y, mo, d, h, mi, se] = stamp.slice(1).map(Number) as [number, number, number, number, number, number];
    const utc = Date.UTC(y, mo - 1, d, h, mi, se);
    const local = new Date(y, mo - 1, d, h, mi, se).getTime();
    return [{ from: utc, to: utc + 1000, how: 'as the UTC stamp in backup names' }, { from: local, to: local + 1000, how: 'as local time' }];
  }
  const iso = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?\s*(Z|UTC|[+-]\d{2}:?\d{2})?$/i.exec(s);
  if (!iso) return [];
  const [y, mo, d, h, mi] = iso.slice(1, 6).map(Number) as [number, number, number, number, number];
  const se = iso[6] === undefined ? 0 : Number(iso[6]);
  const span = iso[6] === undefined ? 60_000 : 1000; // without seconds: any backup in that minute
  let from: number;
  if (iso[7] === undefined) from = new Date(y, mo - 1, d, h, mi, se).getTime();
  else {
    const z = iso[7].toUpperCase();
    const off = z === 'Z' || z === 'UTC' ? 0 : (z[0] === '-' ? -1 : 1) * (Number(z.slice(1, 3)) * 60 + Number(z.slice(-2)));
    from = Date.UTC(y, mo - 1, d, h, mi, se) - off * 60_000;
  }
  return [{ from, to: from + span, how: iso[7] === undefined ? 'as local time' : 'with its offset' }];
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
