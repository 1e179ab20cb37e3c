import fs from 'node:fs';
import zlib from 'node:zlib';
import type pg from 'pg';
import { connFlags, explainPgError, pgConnect, runPgTool, type PgTarget } from '../../adapters/postgres.js';
import { pgTarget } from '../config/index.js';
import type { PostgresConfig } from '../config/index.js';
import { ScitexError, UsageError } from '../../errors.js';
import { isGzip } from '../fs/hash.js';
import { timestamp } from '../time.js';
import type { Logger } from '../logger.js';
import type { DbRestoreOptions, DbRestoreResult } from './types.js';
import { applyDbProps, checkDbProps, readDbProps } from './pgprops.js';

const ident = (s: string) => '"' + s.replace(/"/g, '""') + '"';
const nameWith = (base: string, suffix: string) => base.slice(0, 63 - suffix.length) + suffix;

/** Connects to a maintenance database (postgres, else template1) to create and rename databases. */
export async function maintenance(t: PgTarget): Promise<pg.Client> {
  try {
    return await pgConnect(t, 'postgres');
  } catch (err) {
    if (err instanceof ScitexError && /does not exist/.test(err.message)) return pgConnect(t, 'template1');
    throw err;
  }
}

/** Other sessions on a database, as `pid user (application)` strings. */
async function sessionsOn(c: pg.Client, db: string): Promise<{ pid: number; desc: string }[]> {
  const r = await c.query<{ pid: number; usename: string; application_name: string; client_addr: string | null }>(
    'SELECT pid, usename, application_name, client_addr FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [db],
  );
  return r.rows.map((s) => ({ pid: s.pid, desc: `pid ${s.pid} ${s.usename}${s.application_name ? ` (${s.application_name})` : ''}${s.client_addr ? ` from ${s.client_addr}` : ''}` }));
}

/**
 * Restores into a new database beside the live one, then swaps names in one transaction; the live
 * database is kept as <db>_pre_restore_<ts>. Needs only a role with CREATEDB that owns the database.
 * The restored database belongs to the live one's owner, and its objects too: a superuser restores as that
 * role (SET ROLE), exactly as the owner would, so nothing ends up owned by `postgres`. The live database's
 * ACL, settings, connection limit and comment are moved over in the swap transaction (restorepgprops.ts).
 */
export async function restorePostgres(db: PostgresConfig, file: string, kind: 'pg-custom' | 'pg-plain', log: Logger, opts: DbRestoreOptions): Promise<DbRestoreResult> {
  const t = pgTarget(db);
  const live = t.database;
  const ts = timestamp();
  let scratch = nameWith(live, `_restore_${ts}`);
  let pre = opts.safetyName ?? nameWith(live, `_pre_restore_${ts}`);
  const c = await maintenance(t);
  try {
    const role = (await c.query<{ rolcreatedb: boolean; rolsuper: boolean }>('SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user')).rows[0];
    if (!role?.rolcreatedb && !role?.rolsuper) {
      throw new ScitexError(`Role ${t.user} lacks CREATEDB, which a safe restore needs (it restores into a new database first).`, `As a superuser: ALTER ROLE ${t.user} CREATEDB; then re-run. Nothing was changed.`);
    }
    const liveRow = (await c.query<{ owner: string; enc: string; collate: string; ctype: string }>(
      'SELECT pg_get_userbyid(datdba) AS owner, pg_encoding_to_char(encoding) AS enc, datcollate AS collate, datctype AS ctype FROM pg_database WHERE datname = $1',
      [live],
    )).rows[0];
    if (liveRow && liveRow.owner !== t.user && !role.rolsuper) {
      throw new ScitexError(`Role ${t.user} does not own database ${live} (owner: ${liveRow.owner}), so it cannot swap it.`, `Restore as ${liveRow.owner}, or as a superuser: ALTER DATABASE ${live} OWNER TO ${t.user}. Nothing was changed.`);
    }
    const cannot = liveRow ? await checkDbProps(c, live, liveRow.owner) : null;
    if (cannot) {
      throw new ScitexError(
        `Role ${t.user} cannot give the restored database the grants and settings ${live} has now: ${cannot}.`,
        `Restore as a superuser (SCITEX_CLOUD_DB_USER_*/PASSWORD_* for this run), or reset that setting first and set it again afterwards. Nothing was changed.`,
      );
    }
    // Scratch databases of an interrupted restore (we hold the lock, so none is in use): drop them.
    if (!opts.dryRun) {
      for (const r of (await c.query<{ datname: string }>("SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname NOT LIKE $2", [`${live.replace(/[_%\\]/g, '\\$&')}\\_restore\\_%`, '%\\_pre\\_restore\\_%'])).rows) {
        log.info(`dropping ${r.datname}, left by an interrupted restore`);
        await c.query(`DROP DATABASE IF EXISTS ${ident(r.datname)}`).catch(() => {});
      }
    }
    const taken = new Set((await c.query<{ datname: string }>('SELECT datname FROM pg_database')).rows.map((r) => r.datname));
    if (opts.safetyName && taken.has(pre)) throw new ScitexError(`Database ${pre} appeared after the plan was made.`, 'Check who made it; nothing was changed. Re-run the restore.');
    for (let i = 2; (!opts.safetyName && taken.has(pre)) || taken.has(scratch); i++) {
      if (!opts.safetyName) pre = nameWith(live, `_pre_restore_${ts}_${i}`);
      scratch = nameWith(live, `_restore_${ts}_${i}`);
    }
    const sessions = liveRow ? await sessionsOn(c, live) : [];
    const result: DbRestoreResult = { backup: file, kind: 'postgres', target: live, safetyCopy: liveRow ? pre : null, dryRun: !!opts.dryRun };
    if (opts.dryRun) {
      if (sessions.length) log.info(`sessions on ${live} that would be terminated: ${sessions.map((s) => s.desc).join(', ')}`);
      return result;
    }
    if (sessions.length && !opts.terminateSessions) {
      throw new UsageError(`${sessions.length} other session(s) use ${live}: ${sessions.map((s) => s.desc).join(', ')}.`, 'Stop the app, or re-run with --yes to terminate them before the swap. Nothing was changed.');
    }
    const enc = liveRow ? ` ENCODING ${ident(liveRow.enc)} LC_COLLATE ${ident(liveRow.collate)} LC_CTYPE ${ident(liveRow.ctype)}` : '';
    // A superuser restoring someone else's database acts as its owner: same owner, same object owners.
    const owner = liveRow && liveRow.owner !== t.user ? liveRow.owner : undefined;
    await c.query(`CREATE DATABASE ${ident(scratch)}${owner ? ` OWNER ${ident(owner)}` : ''} TEMPLATE template0${enc}`).catch((err) => {
      throw explainPgError(err, t, scratch);
    });
    log.info(`restoring ${file} into new database ${scratch}`);
    try {
      await loadDump(t, scratch, file, kind, opts.jobs, owner);
    } catch (err) {
      await c.query(`DROP DATABASE IF EXISTS ${ident(scratch)}`).catch(() => {});
      throw err instanceof ScitexError ? new ScitexError(`${err.message} The live database ${live} was not touched.`, err.hint, err.exitCode, { cause: err }) : err;
    }
    result.sessionsTerminated = await swap(c, live, scratch, pre, liveRow ? liveRow.owner : null);
    return result;
  } finally {
    await c.end().catch(() => {});
  }
}

/**
 * Loads a dump into an existing empty database, stopping at the first error. Objects belong to the role
 * that loads them (--no-owner): the connecting role, or `role` (SET ROLE) when a superuser acts for the owner.
 */
export async function loadDump(t: PgTarget, database: string, file: string, kind: 'pg-custom' | 'pg-plain', jobs?: number, role?: string): Promise<void> {
  if (kind === 'pg-custom') {
    await runPgTool('pg_restore', [...connFlags(t, database), '--exit-on-error', '--no-owner', ...(role ? [`--role=${role}`] : []), ...(jobs && jobs > 1 ? ['-j', String(jobs)] : []), file], t);
  } else {
    const stdin = (await isGzip(file)) ? fs.createReadStream(file).pipe(zlib.createGunzip()) : fs.createReadStream(file);
    const setRole = role ? ['-c', `SET ROLE ${ident(role)}`] : [];
    await runPgTool('psql', [...connFlags(t, database), '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction', ...setRole, '-f', '-'], t, { stdin });
  }
}

/** Row count of every ordinary table outside the system schemas, keyed schema.table. */
export async function pgTableCounts(c: pg.Client): Promise<Record<string, number>> {
  const tables = await c.query<{ s: string; t: string }>("SELECT schemaname AS s, tablename AS t FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2");
  const out: Record<string, number> = {};
  for (const { s, t } of tables.rows) out[`${s}.${t}`] = Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${ident(s)}.${ident(t)}`)).rows[0]!.n);
  return out;
}

/**
 * Renames live -> pre and scratch -> live atomically, terminating sessions that keep reconnecting; in the
 * same transaction the live database's ACL and settings are read and given to the restored one.
 */
async function swap(c: pg.Client, live: string, scratch: string, pre: string, liveOwner: string | null): Promise<number> {
  const liveExists = liveOwner !== null;
  let terminated = 0;
  for (let attempt = 1; ; attempt++) {
    if (liveExists) {
      for (const s of await sessionsOn(c, live)) {
        await c.query('SELECT pg_terminate_backend($1)', [s.pid]);
        terminated++;
      }
    }
    try {
      await c.query('BEGIN');
      const props = liveExists ? await readDbProps(c, live) : null;
      if (liveExists) await c.query(`ALTER DATABASE ${ident(live)} RENAME TO ${ident(pre)}`);
      await c.query(`ALTER DATABASE ${ident(scratch)} RENAME TO ${ident(live)}`);
      if (props) await applyDbProps(c, live, liveOwner!, props);
      await c.query('COMMIT');
      return terminated;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      // 55006: still accessed by other users (a session reconnected between terminate and rename).
      if ((err as { code?: string }).code !== '55006' || attempt >= 10) {
        throw new ScitexError(`Swapping ${scratch} into place failed: ${(err as Error).message}.`, `The restored data is in ${scratch}; the live database ${live} is unchanged. Stop the app and re-run.`, 1, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}
