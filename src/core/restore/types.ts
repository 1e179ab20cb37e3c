// Types shared by the database restore paths (SQLite and PostgreSQL) and their door.
import path from 'node:path';

/** Options of `restore db`. */
export interface DbRestoreOptions {
  from?: string;
  at?: string;
  dryRun?: boolean;
  /** Terminate other sessions on the live PostgreSQL database before the swap. */
  terminateSessions?: boolean;
  /** Restore a backup that has no recorded checksum (legacy backups). */
  allowUnverified?: boolean;
  /** pg_restore -j for custom-format dumps. */
  jobs?: number;
  /** age secret key file, for a sealed (locally encrypted) backup. */
  identity?: string;
  /** The safety-copy name a plan (dry run) announced: the run uses exactly it, so messages name what exists. */
  safetyName?: string;
}

/** What `restore db` did or would do. */
export interface DbRestoreResult {
  backup: string;
  kind: 'postgres' | 'sqlite';
  target: string;
  /** Where the current database is kept (SQLite: the name of the kept file family; PostgreSQL: a database). */
  safetyCopy: string | null;
  /** SQLite: the files really kept under that name (the old file and its side files; only side files when it was missing). */
  safetyFiles?: string[];
  dryRun: boolean;
  sessionsTerminated?: number;
}

/** What is kept of the current database, in words: "the current database as X (with X-wal)". */
export function describeSafety(r: DbRestoreResult): string | null {
  if (!r.safetyCopy) return null;
  const files = r.safetyFiles ?? [r.safetyCopy];
  const sides = files.filter((f) => f !== r.safetyCopy).map((f) => path.basename(f));
  if (files.length && !files.includes(r.safetyCopy)) return `the stale side files of the missing database as ${sides.join(', ')} (in ${path.dirname(r.safetyCopy)})`;
  return `the current database as ${r.safetyCopy}${sides.length ? ` (with ${sides.join(', ')})` : ''}`;
}
