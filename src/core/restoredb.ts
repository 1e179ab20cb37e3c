import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { sideFilePaths } from './sqliterules.js';
import { pipeline } from 'node:stream/promises';
import { checkDatabase, checkpoint, isSqliteFile, journalMode, setJournalMode, snapshot } from '../adapters/sqlite.js';
import { openFilesOf } from '../adapters/procfs.js';
import { listBackups, recordedChecksum, type BackupEntry } from './catalog.js';
import type { ResolvedConfig } from './config.js';
import { ScitexError, UsageError } from './errors.js';
import { fsyncDir, fsyncFile, isGzip, partialName, removePartials, sha256File, timestamp, uniquePath } from './fsafe.js';
import type { Logger } from './logger.js';
import { databaseSeries } from './backupdb.js';
import { restorePostgres } from './restorepg.js';
import { ownBackup } from './origin.js';

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
}

/** What `restore db` did or would do. */
export interface DbRestoreResult {
  backup: string;
  kind: 'postgres' | 'sqlite';
  target: string;
  safetyCopy: string | null;
  dryRun: boolean;
  sessionsTerminated?: number;
}

/** What a backup file contains, judged by its bytes, not its name. */
export async function detectDumpKind(file: string): Promise<'pg-custom' | 'pg-plain' | 'sqlite' | 'unknown'> {
  const head = Buffer.alloc(64);
  const fh = await fsp.open(file, 'r');
  let n: number;
  try {
    n = (await fh.read(head, 0, 64, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  let buf: Buffer = head.subarray(0, n);
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    // gzip: look at the start of the decompressed stream
    buf = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const gunzip = zlib.createGunzip();
      const src = fs.createReadStream(file, { start: 0, end: 65535 });
      gunzip.on('data', (c: Buffer) => chunks.push(c));
      gunzip.on('error', () => resolve(Buffer.concat(chunks)));
      gunzip.on('end', () => resolve(Buffer.concat(chunks)));
      src.pipe(gunzip);
    });
  }
  const s = buf.subarray(0, 64).toString('latin1');
  if (s.startsWith('PGDMP')) return 'pg-custom';
  if (s.startsWith('SQLite format 3\0')) return 'sqlite';
  if (/^(--|SET |\\|CREATE |BEGIN)/m.test(s)) return 'pg-plain';
  return 'unknown';
}

/** Picks the backup to restore: --from, --at, or the newest of the configured database. */
export async function selectDbBackup(cfg: ResolvedConfig, opts: { from?: string; at?: string }): Promise<string> {
  if (opts.from) {
    const p = path.resolve(cfg.root, opts.from);
    if (!fs.existsSync(p)) throw new UsageError(`Backup ${p} does not exist.`, 'Run `scitex-data list` to see the backups.');
    return p;
  }
  const series = databaseSeries(cfg);
  const kind = cfg.database.kind;
  const all = (await listBackups(cfg.backupDir.value)).filter((e: BackupEntry) => e.kind === kind && e.series === series);
  const pick = opts.at ? all.find((e) => e.timestamp === opts.at || e.name.includes(opts.at!)) : all.find((e) => e.time);
  if (!pick) {
    throw new UsageError(
      opts.at ? `No ${kind} backup of ${series} taken at ${opts.at} in ${cfg.backupDir.value}.` : `No ${kind} backup of ${series} in ${cfg.backupDir.value}.`,
      'Run `scitex-data list` to see the backups, or pass --from <file>.',
    );
  }
  return ownBackup(cfg, pick.path);
}

/** Refuses a backup whose checksum does not match (or is missing, unless allowed). */
export async function verifyBackupChecksum(file: string, allowUnverified: boolean, log: Logger): Promise<void> {
  const recorded = recordedChecksum(file);
  if (recorded === null) {
    if (!allowUnverified) throw new ScitexError(`${path.basename(file)} has no recorded checksum (${path.basename(file)}.sha256).`, 'Restore it anyway with --allow-unverified if you trust it.', 1);
    log.warn(`${path.basename(file)} has no recorded checksum; restoring it unverified as asked.`);
    return;
  }
  const actual = await sha256File(file);
  if (actual !== recorded) {
    throw new ScitexError(`${path.basename(file)} does not match its recorded SHA-256: the file is damaged or was tampered with.`, 'Nothing was changed. Restore an older backup (`scitex-data list`) with --from or --at.', 1);
  }
}

/** Restores the configured database; the caller holds the lock. */
export async function restoreDatabase(cfg: ResolvedConfig, log: Logger, opts: DbRestoreOptions): Promise<DbRestoreResult> {
  const file = await selectDbBackup(cfg, opts);
  await verifyBackupChecksum(file, !!opts.allowUnverified, log);
  const kind = await detectDumpKind(file);
  const db = cfg.database;
  if (db.kind === 'postgres' && kind !== 'pg-custom' && kind !== 'pg-plain') {
    throw new UsageError(`${path.basename(file)} is ${kind === 'sqlite' ? 'a SQLite database' : 'not a PostgreSQL dump'}, but the configured database is PostgreSQL.`, 'Pick a .dump or .sql backup, or check --env and SCITEX_CLOUD_USE_SQLITE_*.');
  }
  if (db.kind === 'sqlite' && kind !== 'sqlite') {
    throw new UsageError(`${path.basename(file)} is ${kind.startsWith('pg') ? 'a PostgreSQL dump' : 'not a SQLite database'}, but the configured database is SQLite (${db.path}).`, 'Pick a .db backup, or check --env and SCITEX_CLOUD_USE_SQLITE_*.');
  }
  if (db.kind === 'postgres') return restorePostgres(db, file, kind as 'pg-custom' | 'pg-plain', log, opts);
  return restoreSqlite(db.path, file, log, opts);
}

async function restoreSqlite(target: string, file: string, log: Logger, opts: DbRestoreOptions): Promise<DbRestoreResult> {
  const ts = timestamp();
  const safety = fs.existsSync(target) ? await uniquePath(path.join(path.dirname(target), `${path.basename(target, '.db')}_pre_restore_${ts}`), '.db') : null;
  const result: DbRestoreResult = { backup: file, kind: 'sqlite', target, safetyCopy: safety, dryRun: !!opts.dryRun };
  if (opts.dryRun) return result;
  const holders = openFilesOf([target, target + '-wal']);
  if (holders.length) {
    throw new ScitexError(`${target} is open by ${holders.map((h) => `pid ${h.pid} (${h.command})`).join(', ')}.`, 'Stop the app (or those processes) first, then re-run the restore.');
  }
  await fsp.mkdir(path.dirname(target), { recursive: true, mode: 0o700 });
  // Temp files of an interrupted restore (we hold the lock, so none is in use).
  for (const n of await removePartials(path.dirname(target))) log.debug(`removed leftover ${n}`);
  const tmp = partialName(target);
  try {
    if (await isGzip(file)) {
      await pipeline(fs.createReadStream(file), zlib.createGunzip(), fs.createWriteStream(tmp, { mode: 0o600 }));
    } else {
      await fsp.copyFile(file, tmp);
    }
    await fsp.chmod(tmp, 0o600);
    if (!isSqliteFile(tmp)) throw new ScitexError(`${path.basename(file)} is not a SQLite database.`, 'Nothing was changed.');
    const problems = checkDatabase(tmp, true);
    if (problems.length) throw new ScitexError(`${path.basename(file)} fails PRAGMA integrity_check: ${problems[0]}.`, 'Nothing was changed. Restore an older backup with --from or --at.');
    // Keep the live database's journal mode (the app may rely on WAL); backups are stored in DELETE mode.
    if (fs.existsSync(target) && journalMode(target) === 'wal') setJournalMode(tmp, 'wal');
    await fsyncFile(tmp);
    if (safety) {
      // The safety copy goes through SQLite so that rows still in the -wal file are in it too.
      await snapshot(target, safety);
      await fsp.chmod(safety, 0o600);
      await fsyncFile(safety);
      // Fold the WAL into the old file and drop side files before the swap: a -wal left next to the new
      // file would be replayed into it.
      checkpoint(target);
      for (const side of ['-wal', '-shm']) await fsp.rm(target + side, { force: true });
      log.info(`kept the current database as ${safety}`);
    }
    await fsp.rename(tmp, target);
    await fsyncDir(path.dirname(target));
  } finally {
    for (const f of [tmp, ...sideFilePaths(tmp)]) await fsp.rm(f, { force: true });
  }
  return result;
}
