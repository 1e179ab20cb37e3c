import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { type Artifact } from './publish.js';
import { CHECKSUM_SUFFIX, databaseSeries, ORIGIN_SUFFIX, PIN_SUFFIX, hasPolicy, prune, type PruneDecision, type RetentionPolicy } from '../catalog/index.js';
import { backupDatabase, type DumpFormat } from './database.js';
import { backupUsers, checkUsersBackup, type Compression, type UsersBackupResult } from './users.js';
import type { ResolvedConfig } from '../config/index.js';
import { ExitCode, ScitexError, UsageError } from '../../errors.js';
import { ensurePrivateDir, removePartials } from '../fs/atomic.js';
import { dataDir, usersDir } from '../layout/index.js';
import { acquireLockAt, withLock } from '../lock.js';
import type { Logger } from '../logger.js';
import { ageAvailable, copyBackups, type DestinationResult, type OffsiteSettings } from '../offsite/index.js';

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
  /** Off-site destinations to copy what was published to (after the locks are released); none: no copy. */
  offsite?: OffsiteSettings;
  /** Seal (age-encrypt) the local backups to these public keys too (`--encrypt-local`); none: plaintext. */
  seal?: string[];
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
  /** One result per off-site destination (empty when none is configured or with --no-copy). */
  copies: DestinationResult[];
}

/** Removes leftovers of interrupted runs: partial files, and checksum, origin or pin files whose backup is gone. */
export async function cleanBackupDir(dir: string, log: Logger): Promise<void> {
  for (const n of await removePartials(dir)) log.debug(`removed leftover of an interrupted run: ${n}`);
  for (const n of await fsp.readdir(dir)) {
    const suffix = [CHECKSUM_SUFFIX, ORIGIN_SUFFIX, PIN_SUFFIX].find((x) => n.endsWith(x));
    if (suffix && !fs.existsSync(path.join(dir, n.slice(0, -suffix.length)))) {
      await fsp.rm(path.join(dir, n), { force: true });
      log.debug(`removed orphan ${n}`);
    }
  }
}

/** Name of the lock in the backup directory: two roots may share one (SCITEX_DATA_BACKUP_DIR). */
export const BACKUP_DIR_LOCK = '.scitex-data.lock';

/** Checks the backup directory before anything is written: a writable directory, or one that can be created. */
function checkBackupDir(root: string, dir: string): void {
  const abs = path.resolve(dir);
  const users = path.resolve(usersDir(root));
  if (abs === users || abs.startsWith(users + path.sep)) throw new UsageError(`The backup directory ${dir} is inside data/users, which the app user controls.`, 'Set --backup-dir / SCITEX_DATA_BACKUP_DIR outside data/users.');
  let p = abs;
  while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
  if (!fs.statSync(p).isDirectory()) {
    throw new UsageError(`The backup directory ${dir} ${p === abs ? 'is not a directory' : `cannot be created: ${p} is not a directory`}.`, 'Set --backup-dir / SCITEX_DATA_BACKUP_DIR to a directory.');
  }
  try {
    fs.accessSync(p, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    throw new UsageError(`The backup directory ${dir} cannot be written (${(err as NodeJS.ErrnoException).code} on ${p}).`, 'Run as a user that can write it, or choose another --backup-dir; nothing was backed up.');
  }
}

/** Holds the backup directory's own lock while `fn` runs (unless it is data/ itself, already locked). */
async function withBackupDirLock<T>(root: string, dir: string, fn: () => Promise<T>): Promise<T> {
  if (fs.realpathSync(dir) === fs.realpathSync(dataDir(root))) return fn();
  const lock = acquireLockAt(path.join(dir, BACKUP_DIR_LOCK), dir, 'backup');
  try {
    return await fn();
  } finally {
    lock.release();
  }
}

/** The code when an error, or one it was caused by, means the filesystem is full or over quota; null otherwise. */
export function diskFullCode(err: unknown): string | null {
  for (let e = err as (NodeJS.ErrnoException & { cause?: unknown }) | undefined; e && typeof e === 'object'; e = e.cause as typeof e) {
    if (['ENOSPC', 'EDQUOT', 'SQLITE_FULL'].includes(String(e.code))) return String(e.code);
    // Child tools (zstd, pg_dump) only say it in words.
    if (/no space left on device|database or disk is full/i.test(String(e.message))) return 'ENOSPC';
    if (/disk quota exceeded/i.test(String(e.message))) return 'EDQUOT';
  }
  return null;
}

/** A full disk, whenever it hits, as one line naming the directory and the next step. */
export function diskFullError(err: unknown, dir: string, lost = 'nothing was published'): unknown {
  const code = diskFullCode(err);
  if (!code) return err;
  const p = (err as NodeJS.ErrnoException).path;
  const where = p && !path.resolve(p).startsWith(path.resolve(dir) + path.sep) ? path.dirname(p) : dir;
  return new ScitexError(
    `No space left in ${where} (${code}): the disk is full; ${lost}.`,
    'Free space there (or prune old backups), or set --backup-dir / SCITEX_DATA_BACKUP_DIR to a larger volume, then re-run.',
    ExitCode.FAILED,
    { cause: err },
  );
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
  if (opts.seal?.length) plan.push(`sealed: only age ciphertext (to ${opts.seal.length} public key(s)) is written under the published names`);
  if (opts.keep && hasPolicy(opts.keep)) plan.push('then apply retention');
  for (const d of opts.offsite?.destinations ?? []) plan.push(`then copy what was published to ${d.label}${opts.offsite!.recipients.length ? ', encrypted' : ''}`);
  const result: BackupResult = { artifacts: [], usersSet: null, pruned: [], retention: [], partial: false, dryRun: !!opts.dryRun, plan, exitCode: ExitCode.OK, copies: [] };
  // Everything is checked before anything is written: a bad --user must not leave a database snapshot.
  checkBackupDir(cfg.root, dir);
  if (opts.users) await checkUsersBackup(cfg.root, opts);
  if (opts.seal?.length && !ageAvailable()) throw new ScitexError('The age command is not installed; it is needed to encrypt the local backups (--encrypt-local).', 'apt-get install age; nothing was backed up.');
  if (opts.dryRun) return result;
  let failure: unknown;
  try {
    await withLock(cfg.root, 'backup', async () => {
      await ensurePrivateDir(dir, dataDir(cfg.root)); // no link followed below data/ (the app user writes there)
      return withBackupDirLock(cfg.root, dir, () => backUp(cfg, log, opts, result));
    });
  } catch (err) {
    // One part may have been published before the disk filled: say which.
    const db = result.artifacts.find((a) => a.kind !== 'users');
    const lost = result.usersSet ? `the database backup was not published (the user set ${path.basename(result.usersSet.set)} was)` : db ? `the user set was not published (${path.basename(db.path)} was)` : undefined;
    failure = diskFullError(err, dir, lost);
  }
  // Outside the locks (an upload may take hours), and also when one part failed: what was published leaves.
  // A failed copy leaves the local backup published; exit 1 says so.
  const names = [...result.artifacts.filter((a) => a.kind !== 'users').map((a) => path.basename(a.path)), ...(result.usersSet ? [path.basename(result.usersSet.set)] : [])];
  if (opts.offsite?.destinations.length && names.length) {
    result.copies = await copyBackups(dir, opts.offsite, log, names).catch((err: Error) =>
      opts.offsite!.destinations.map((d) => ({ destination: d.label, sent: [], present: [], resumed: [], bytesSent: 0, error: err.message })),
    );
    if (result.copies.some((c) => c.error)) result.exitCode = ExitCode.FAILED;
    if (failure) for (const c of result.copies.filter((x) => x.error)) log.warn(`copy to ${c.destination} FAILED too: ${c.error}`);
  }
  if (failure) throw failure as Error;
  return result;
}

/** The run itself, under both locks. */
async function backUp(cfg: ResolvedConfig, log: Logger, opts: BackupOptions, result: BackupResult): Promise<BackupResult> {
  const dir = cfg.backupDir.value;
  await cleanBackupDir(dir, log);
  // A failed database backup must not cost the users theirs: the users still run, then the
  // database error is reported (exit 1) and retention is skipped, so old backups stay.
  let dbError: unknown;
  if (opts.db) {
    try {
      const a = await backupDatabase(cfg, log, { format: opts.format, seal: opts.seal });
      result.artifacts.push(a);
      log.info(`${a.kind} ${a.path} ${a.size} bytes sha256 ${a.sha256.slice(0, 16)}…`);
    } catch (err) {
      if (!opts.users) throw err;
      dbError = err;
      log.warn(`The database backup failed; backing up the users anyway. ${(err as Error).message}`);
    }
  }
  if (opts.users) {
    const u = await backupUsers(cfg, log, { usernames: opts.usernames, compression: opts.compression, level: opts.level, seal: opts.seal });
    result.usersSet = u;
    result.artifacts.push(...u.artifacts);
    result.partial = u.partial;
  }
  if (dbError) throw dbError as Error;
  if (opts.keep && hasPolicy(opts.keep)) {
    const decisions: PruneDecision[] = await prune(dir, opts.keep, log, { justMade: [...result.artifacts.map((a) => a.path), ...(result.usersSet ? [result.usersSet.set] : [])] });
    result.pruned = decisions.filter((d) => !d.keep).map((d) => d.entry.path);
    result.retention = decisions;
  }
  if (result.partial) result.exitCode = ExitCode.PROBLEMS;
  return result;
}
