import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { ScitexError } from '../errors.js';
import { runTool, ToolFailure } from './proc.js';

const INSTALL_HINT = 'Install the PostgreSQL client (Debian: apt-get install postgresql-client).';

/** Connection facts with the secret kept apart from everything that could be printed. */
export interface PgTarget {
  host: string;
  port: number;
  user: string;
  database: string;
  password?: string;
}

/** `user@host:port/db` for messages; never includes the password. */
export const describeTarget = (t: PgTarget, db = t.database): string => `${t.user}@${t.host}:${t.port}/${db}`;

/** Connects with node-postgres over TCP (the app's way); errors become one-line ScitexErrors. */
export async function pgConnect(t: PgTarget, database = t.database): Promise<pg.Client> {
  // Loaded on first use: most runs (SQLite, users) never need the PostgreSQL driver.
  const { default: PG } = await import('pg');
  const client = new PG.Client({ host: t.host, port: t.port, user: t.user, password: t.password, database, connectionTimeoutMillis: 10_000, application_name: 'scitex-data' });
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw explainPgError(err, t, database);
  }
  return client;
}

/** Maps connection and permission failures to what an operator should do. */
export function explainPgError(err: unknown, t: PgTarget, database = t.database): ScitexError {
  const e = err as { code?: string; message?: string };
  const msg = (e.message ?? String(err)).replace(/\s+/g, ' ').trim();
  const where = describeTarget(t, database);
  if (e.code === 'ECONNREFUSED' || /Connection refused|could not connect|ECONNREFUSED/.test(msg)) {
    return new ScitexError(`PostgreSQL at ${t.host}:${t.port} is not reachable (${msg}).`, 'Start the server, or check SCITEX_CLOUD_DB_HOST_*/PORT_* (`scitex-data config`).', 1, { cause: err });
  }
  if (e.code === '28P01' || /password authentication failed/.test(msg)) {
    return new ScitexError(`PostgreSQL rejected the password for ${t.user} at ${t.host}:${t.port}.`, 'Check SCITEX_CLOUD_DB_PASSWORD_* in the environment or .env (`scitex-data config`).', 1, { cause: err });
  }
  if (e.code === '3D000' || /database ".*" does not exist/.test(msg)) {
    return new ScitexError(`Database ${database} does not exist at ${t.host}:${t.port}.`, 'Check SCITEX_CLOUD_DB_NAME_* (`scitex-data config`).', 1, { cause: err });
  }
  if (/timeout|ETIMEDOUT|ENOTFOUND|EAI_AGAIN/.test(msg)) {
    return new ScitexError(`PostgreSQL at ${t.host}:${t.port} did not answer (${msg}).`, 'Check the host name and network, then re-run.', 1, { cause: err });
  }
  return new ScitexError(`PostgreSQL (${where}): ${msg}`, 'Re-run with --debug for details.', 1, { cause: err });
}

/**
 * Runs fn with an environment for libpq tools that carries the password in a private temporary
 * passfile (never on a command line, never in the child's environment as PGPASSWORD).
 */
export async function withPgEnv<T>(t: PgTarget, fn: (env: NodeJS.ProcessEnv) => Promise<T>): Promise<T> {
  const env: NodeJS.ProcessEnv = { ...process.env, PGCONNECT_TIMEOUT: '10', PGAPPNAME: 'scitex-data' };
  for (const k of ['PGPASSWORD', 'PGSERVICE', 'PGOPTIONS']) delete env[k];
  if (t.password === undefined) return fn(env);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scitex-data-pg-'));
  try {
    const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
    const passfile = path.join(dir, 'pgpass');
    await fsp.writeFile(passfile, `${esc(t.host)}:${t.port}:*:${esc(t.user)}:${esc(t.password)}\n`, { mode: 0o600 });
    env.PGPASSFILE = passfile;
    return await fn(env);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/** Connection flags for libpq tools: always -h (TCP, as the app connects) and never prompt. */
export const connFlags = (t: PgTarget, database = t.database): string[] => ['-h', t.host, '-p', String(t.port), '-U', t.user, '-d', database, '--no-password'];

/** Runs a libpq tool, turning its failure into one line with its own message. */
export async function runPgTool(tool: string, args: string[], t: PgTarget, opts: { stdin?: NodeJS.ReadableStream } = {}): Promise<string> {
  return withPgEnv(t, async (env) => {
    try {
      return (await runTool(tool, args, { env, installHint: INSTALL_HINT, stdin: opts.stdin })).stdout;
    } catch (err) {
      if (err instanceof ToolFailure) {
        if (/Connection refused|password authentication failed|does not exist/.test(err.output)) {
          const e = explainPgError(new Error(err.detail), t);
          throw new ScitexError(`${tool}: ${e.message}`, e.hint, 1, { cause: err });
        }
        if (/server version mismatch/.test(err.output)) {
          throw new ScitexError(`${tool}: ${err.detail}`, 'Install a PostgreSQL client at least as new as the server (postgresql-client-<version>).', 1, { cause: err });
        }
        throw new ScitexError(`${tool} failed: ${err.detail}`, 'Nothing was published; fix the cause above and re-run.', 1, { cause: err });
      }
      throw err;
    }
  });
}

/** The major version of the local pg_dump, e.g. 15. */
export async function pgDumpMajor(): Promise<number> {
  const out = (await runTool('pg_dump', ['--version'], { installHint: INSTALL_HINT })).stdout;
  const m = /(\d+)(?:\.\d+)?/.exec(out);
  return m ? Number(m[1]) : 0;
}
