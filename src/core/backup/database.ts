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
import { SEALED_EXT, sealTemp, type PlainRecord } from '../seal/index.js';

/** pg_dump output format: custom (-Fc, default) or plain SQL. */
export type DumpFormat = 'custom' | 'plain';

/** The backup file a run at `now` would write (a second later if that name is taken). */
export async function nextBackupPath(dir: string, series: string, ext: string, now = new Date()): Promise<string> {
  for (let t = now.getTime(); ; t += 1000) {
    const p = path.join(dir, `${series}_${timestamp(new Date(t))}.${ext}`);
    // A plain and a sealed backup of one second would be indistinguishable to --at and to "the newest".
    const twin = p.endsWith(SEALED_EXT) ? p.slice(0, -SEALED_EXT.length) : p + SEALED_EXT;
    if (!(await exists(p)) && !(await exists(p + '.sha256')) && !(await exists(twin)) && !(await exists(twin + '.sha256'))) return p;
  }
}

/**
 * Records the origin, then publishes; on any failure neither the origin file nor the backup is left. Sealed
 * (`seal`: age recipients): the plaintext is encrypted first and only the ciphertext is published, with the
 * plaintext's checksum recorded in the origin file.
 */
async function publishWithOrigin(cfg: ResolvedConfig, tmp: string, final: string, sha256: string | undefined, seal: string[] | undefined): Promise<{ size: number; sha256: string }> {
  let plain: (PlainRecord & { recipients: string[] }) | undefined;
  if (seal?.length) {
    const s = await sealTemp(tmp, final, seal, sha256);
    tmp = s.tmp;
    sha256 = s.sha256;
    plain = { plainSha256: s.plainSha256, plainSize: s.plainSize, recipients: [...seal].sort() };
  }
  try {
    await writeOrigin(final, { ...originOf(cfg), ...plain });
    return await publishFile(tmp, final, sha256);
  } catch (err) {
    if (!(await exists(final))) await fsp.rm(final + ORIGIN_SUFFIX, { force: true });
    throw err;
  } finally {
    if (plain) await fsp.rm(tmp, { force: true }); // the sealed temporary, unless published
  }
}

/** Backs up the configured database into cfg.backupDir; the caller holds the lock. */
export async function backupDatabase(cfg: ResolvedConfig, log: Logger, opts: { format?: DumpFormat; seal?: string[] } = {}): Promise<Artifact> {
  const sealed = opts.seal?.length ? SEALED_EXT : '';
  const started = Date.now();
  const dir = cfg.backupDir.value;
  const series = databaseSeries(cfg);
  const db = cfg.database;
  if (db.kind === 'postgres') {
    const format = opts.format ?? 'custom';
    const final = await nextBackupPath(dir, series, (format === 'custom' ? 'dump' : 'sql') + sealed);
    const tmp = partialName(final);
    const t = pgTarget(db);
    log.debug(`pg_dump ${connFlags(t).join(' ')} -F ${format === 'custom' ? 'c' : 'p'} -f ${tmp}`);
    try {
      await runPgTool('pg_dump', [...connFlags(t), '-F', format === 'custom' ? 'c' : 'p', '-f', tmp], t);
      const { size, sha256 } = await publishWithOrigin(cfg, tmp, final, undefined, opts.seal);
      return { kind: 'postgres', path: final, size, sha256, durationMs: Date.now() - started, database: series };
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }
  const final = await nextBackupPath(dir, series, 'db' + sealed);
  const tmp = partialName(final);
  try {
    log.debug(`SQLite online backup ${db.path} -> ${tmp}`);
    await snapshot(db.path, tmp);
    // The check (worker thread) and the checksum (main thread) read the same finished file at once.
    const [problems, digest] = await Promise.all([checkSnapshot(tmp), sha256File(tmp)]);
    if (problems.length) {
      throw new ScitexError(`The snapshot of ${db.path} failed PRAGMA quick_check: ${problems[0]}.`, 'The live database may be damaged: run `scitex-data verify`; nothing was published.');
    }
    const { size, sha256 } = await publishWithOrigin(cfg, tmp, final, digest, opts.seal);
    return { kind: 'sqlite', path: final, size, sha256, durationMs: Date.now() - started, database: series };
  } finally {
    for (const f of [tmp, ...sideFilePaths(tmp)]) await fsp.rm(f, { force: true });
  }
}
