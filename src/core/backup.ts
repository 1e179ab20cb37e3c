import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { CHECKSUM_SUFFIX, type Artifact } from './publish.js';
import { backupDatabase, databaseSeries, type DumpFormat } from './backupdb.js';
import { backupUsers, type Compression, type UsersBackupResult } from './backupusers.js';
import type { ResolvedConfig } from './config.js';
import { ExitCode, ScitexError } from './errors.js';
import { ensurePrivateDir, removePartials } from './fsafe.js';
import { dataDir } from './layout.js';
import { withLock } from './lock.js';
import type { Logger } from './logger.js';
import { hasPolicy, prune, type PruneDecision, type RetentionPolicy } from './retention.js';

/** What `backup` should do. */
export interface BackupOptions {
  db: boolean;
  users: boolean;
  format?: DumpFormat;
  usernames?: string[];
  compression?: Compression;
  level?: number;
  keep?: RetentionPolicy;
  dryRun?: boolean;
}

/** What `backup` did. */
export interface BackupResult {
  artifacts: Artifact[];
  usersSet: UsersBackupResult | null;
  pruned: string[];
  /** Every retention decision (kept with its reasons, or deleted); empty when no policy was given. */
  retention: PruneDecision[];
  partial: boolean;
  dryRun: boolean;
  plan: string[];
  exitCode: number;
}

/** Removes leftovers of interrupted runs: partial files and checksum files whose backup never appeared. */
export async function cleanBackupDir(dir: string, log: Logger): Promise<void> {
  for (const n of await removePartials(dir)) log.debug(`removed leftover of an interrupted run: ${n}`);
  for (const n of await fsp.readdir(dir)) {
    if (n.endsWith(CHECKSUM_SUFFIX) && !fs.existsSync(path.join(dir, n.slice(0, -CHECKSUM_SUFFIX.length)))) {
      await fsp.rm(path.join(dir, n), { force: true });
      log.debug(`removed orphan checksum ${n}`);
    }
  }
}

/** The nightly job: database and/or users under the lock, then retention once all is published. */
export async function runBackup(cfg: ResolvedConfig, log: Logger, opts: BackupOptions): Promise<BackupResult> {
  if (!fs.existsSync(dataDir(cfg.root))) {
    throw new ScitexError(`${dataDir(cfg.root)} does not exist.`, 'Check --root, or run `scitex-data init` first.', ExitCode.USAGE);
  }
  const dir = cfg.backupDir.value;
  const plan: string[] = [];
  if (opts.db) plan.push(cfg.database.kind === 'postgres' ? `pg_dump ${databaseSeries(cfg)} -> ${dir}` : `SQLite snapshot ${cfg.database.path} -> ${dir}`);
  if (opts.users) plan.push(`user archives${opts.usernames?.length ? ` (${opts.usernames.join(', ')})` : ''} -> ${dir}/users_<timestamp>/`);
  if (opts.keep && hasPolicy(opts.keep)) plan.push('then apply retention');
  const result: BackupResult = { artifacts: [], usersSet: null, pruned: [], retention: [], partial: false, dryRun: !!opts.dryRun, plan, exitCode: ExitCode.OK };
  if (opts.dryRun) return result;
  return withLock(cfg.root, 'backup', async () => {
    await ensurePrivateDir(dir);
    await cleanBackupDir(dir, log);
    // A failed database backup must not cost the users theirs: the users still run, then the
    // database error is reported (exit 1) and retention is skipped, so old backups stay.
    let dbError: unknown;
    if (opts.db) {
      try {
        const a = await backupDatabase(cfg, log, { format: opts.format });
        result.artifacts.push(a);
        log.info(`${a.kind} ${a.path} ${a.size} bytes sha256 ${a.sha256.slice(0, 16)}…`);
      } catch (err) {
        if (!opts.users) throw err;
        dbError = err;
        log.warn(`The database backup failed; backing up the users anyway. ${(err as Error).message}`);
      }
    }
    if (opts.users) {
      const u = await backupUsers(cfg, log, { usernames: opts.usernames, compression: opts.compression, level: opts.level });
      result.usersSet = u;
      result.artifacts.push(...u.artifacts);
      result.partial = u.partial;
    }
    if (dbError) throw dbError;
    if (opts.keep && hasPolicy(opts.keep)) {
      const decisions: PruneDecision[] = await prune(dir, opts.keep, log, { justMade: [...result.artifacts.map((a) => a.path), ...(result.usersSet ? [result.usersSet.set] : [])] });
      result.pruned = decisions.filter((d) => !d.keep).map((d) => d.entry.path);
      result.retention = decisions;
    }
    if (result.partial) result.exitCode = ExitCode.PROBLEMS;
    return result;
  });
}
