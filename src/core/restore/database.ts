import type { DbRestoreOptions, DbRestoreResult } from './types.js';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { listBackups, recordedChecksum, resolveAt, type BackupEntry, databaseSeries, ownBackup } from '../catalog/index.js';
import type { ResolvedConfig } from '../config/index.js';
import { ScitexError, UsageError } from '../../errors.js';
import { sha256File } from '../fs/hash.js';
import type { Logger } from '../logger.js';
import { restorePostgres } from './postgres.js';
import { restoreSqlite } from './sqlite.js';
import { readPlainRecord } from '../catalog/index.js';
import { decryptionOf, unsealPeek, withPlainFile } from '../seal/index.js';



/** What a backup file contains, judged by its bytes, not its name. */
export async function detectDumpKind(file: string): Promise<'pg-custom' | 'pg-plain' | 'sqlite' | 'unknown'> {
  const head = Buffer.alloc(65536);
  const fh = await fsp.open(file, 'r');
  try {
    return await dumpKindOf(head.subarray(0, (await fh.read(head, 0, head.length, 0)).bytesRead));
  } finally {
    await fh.close();
  }
}

/** What a backup holds, judged by its first bytes (up to 64 KiB; gzip is looked into). */
export async function dumpKindOf(head: Buffer): Promise<'pg-custom' | 'pg-plain' | 'sqlite' | 'unknown'> {
  let buf: Buffer = head;
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    // gzip: look at the start of the decompressed stream (the head may end mid-stream)
    buf = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      const gunzip = zlib.createGunzip();
      gunzip.on('data', (c: Buffer) => chunks.push(c));
      gunzip.on('error', () => resolve(Buffer.concat(chunks)));
      gunzip.on('end', () => resolve(Buffer.concat(chunks)));
      gunzip.end(head);
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
  const pick = opts.at ? resolveAt(all, opts.at, `${kind} backup of ${series}`) : all.find((e) => e.time);
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

/**
 * Restores the configured database; the caller holds the lock. A sealed backup is decrypted first: in a dry run
 * only streamed and checked (nothing written), otherwise into a private temporary file in the backup directory, checked
 * against its recorded plaintext checksum before the restore reads it.
 */
export async function restoreDatabase(cfg: ResolvedConfig, log: Logger, opts: DbRestoreOptions): Promise<DbRestoreResult> {
  const file = await selectDbBackup(cfg, opts);
  await verifyBackupChecksum(file, !!opts.allowUnverified, log);
  const d = decryptionOf(file, readPlainRecord(file), opts.identity);
  if (opts.dryRun && d) return restoreFrom(cfg, log, opts, file, await dumpKindOf(await unsealPeek(file, d)), file);
  // Decrypted into the private backup directory, not beside the file: --from may name a read-only disk or a
  // directory others can write (who could swap the checked copy); without a backup directory, the system's.
  const under = fs.lstatSync(cfg.backupDir.value, { throwIfNoEntry: false })?.isDirectory() ? cfg.backupDir.value : os.tmpdir();
  return withPlainFile(file, opts.identity, under, async (plain) => ({ ...(await restoreFrom(cfg, log, opts, plain, await detectDumpKind(plain), file)), backup: file }));
}

/** Restores `plain` (the backup's plaintext, of `kind`) as the backup `shown`. */
async function restoreFrom(cfg: ResolvedConfig, log: Logger, opts: DbRestoreOptions, plain: string, kind: Awaited<ReturnType<typeof dumpKindOf>>, shown: string): Promise<DbRestoreResult> {
  const db = cfg.database;
  const name = path.basename(shown);
  if (db.kind === 'postgres' && kind !== 'pg-custom' && kind !== 'pg-plain') {
    throw new UsageError(`${name} is ${kind === 'sqlite' ? 'a SQLite database' : 'not a PostgreSQL dump'}, but the configured database is PostgreSQL.`, 'Pick a .dump or .sql backup, or check --env and SCITEX_CLOUD_USE_SQLITE_*.');
  }
  if (db.kind === 'sqlite' && kind !== 'sqlite') {
    throw new UsageError(`${name} is ${kind.startsWith('pg') ? 'a PostgreSQL dump' : 'not a SQLite database'}, but the configured database is SQLite (${db.path}).`, 'Pick a .db backup, or check --env and SCITEX_CLOUD_USE_SQLITE_*.');
  }
  const r = db.kind === 'postgres' ? await restorePostgres(db, plain, kind as 'pg-custom' | 'pg-plain', log, opts) : await restoreSqlite(db.path, plain, log, opts);
  return { ...r, backup: shown };
}

/** Plans a database restore: the backup it will use (checked) and the safety copy it will keep, computed once. */
export function planDatabaseRestore(cfg: ResolvedConfig, log: Logger, opts: Omit<DbRestoreOptions, 'dryRun' | 'safetyName'>): Promise<DbRestoreResult> {
  return restoreDatabase(cfg, log, { ...opts, dryRun: true });
}

/** Carries out a plan from planDatabaseRestore: the same backup file, the safety copy under the announced name. */
export function executeDatabaseRestore(cfg: ResolvedConfig, log: Logger, plan: DbRestoreResult, opts: Omit<DbRestoreOptions, 'dryRun' | 'safetyName' | 'from' | 'at'> = {}): Promise<DbRestoreResult> {
  return restoreDatabase(cfg, log, { ...opts, from: plan.backup, safetyName: plan.safetyCopy ?? undefined });
}
