import fsp from 'node:fs/promises';
import path from 'node:path';
import { sideFilePaths } from '../../adapters/sqlite.js';
import { connFlags, runPgTool } from '../../adapters/postgres.js';
import { pgTarget } from '../config/index.js';
import { checkSnapshot, snapshot } from '../../adapters/sqlite.js';
import { sha256File } from '../fs/hash.js';
import type { ResolvedConfig } from '../config/index.js';
import { ScitexError } from '../../errors.js';
import { exists, partialName } from '../fs/atomic.js';
import { timestamp } from '../time.js';
import type { Logger } from '../logger.js';
import { ORIGIN_SUFFIX, originOf, writeOrigin, databaseSeries } from '../catalog/index.js';
import { publishFile, type Artifact } from './publish.js';

/** pg_dump output format: custom (-Fc, default) or plain SQL. */
export type DumpFormat = 'custom' | 'plain';

/** The backup file a run at `now` would write (a second later if that name is taken). */
export async function nextBackupPath(dir: string, series: string, ext: string, now = new Date()): Promise<string> {
  for (let t = now.getTime(); ; t += 1000) {
    const p = path.join(dir, `${series}_${timestamp(new Date(t))}.${ext}`);
    if (!(await exists(p)) && !(await exists(p + '.sha256'))) return p;
  }
}

/** Records the origin, then publishes; on any failure neither the origin file nor the backup is left. */
async function publishWithOrigin(cfg: ResolvedConfig, tmp: string, final: string, sha256?: string): Promise<{ size: number; sha256: string }> {
  try {
    await writeOrigin(final, originOf(cfg));
    return await publishFile(tmp, final, sha256);
  } catch (err) {
    if (!(await exists(final))) await fsp.rm(final + ORIGIN_SUFFIX, { force: true });
    throw err;
  }
}

/** Backs up the configured database into cfg.backupDir; the caller holds the lock. */
export async function backupDatabase(cfg: ResolvedConfig, log: Logger, opts: { format?: DumpFormat } = {}): Promise<Artifact> {
  const started = Date.now();
  const dir = cfg.backupDir.value;
  const series = databaseSeries(cfg);
  const db = cfg.database;
  if (db.kind === 'postgres') {
    const format = opts.format ?? 'custom';
    const final = await nextBackupPath(dir, series, format === 'custom' ? 'dump' : 'sql');
    const tmp = partialName(final);
    const t = pgTarget(db);
    log.debug(`pg_dump ${connFlags(t).join(' ')} -F ${format === 'custom' ? 'c' : 'p'} -f ${tmp}`);
    try {
      await runPgTool('pg_dump', [...connFlags(t), '-F', format === 'custom' ? 'c' : 'p', '-f', tmp], t);
      const { size, sha256 } = await publishWithOrigin(cfg, tmp, final);
      return { kind: 'postgres', path: final, size, sha256, durationMs: Date.now() - started, database: series };
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }
  const final = await nextBackupPath(dir, series, 'db');
  const tmp = partialName(final);
  try {
    log.debug(`SQLite online backup ${db.path} -> ${tmp}`);
    await snapshot(db.path, tmp);
    // The check (worker thread) and the checksum (main thread) read the same finished file at once.
    const [problems, digest] = await Promise.all([checkSnapshot(tmp), sha256File(tmp)]);
    if (problems.length) {
      throw new ScitexError(`The snapshot of ${db.path} failed PRAGMA quick_check: ${problems[0]}.`, 'The live database may be damaged: run `scitex-data verify`; nothing was published.');
    }
    const { size, sha256 } = await publishWithOrigin(cfg, tmp, final, digest);
    return { kind: 'sqlite', path: final, size, sha256, durationMs: Date.now() - started, database: series };
  } finally {
    for (const f of [tmp, ...sideFilePaths(tmp)]) await fsp.rm(f, { force: true });
  }
}
