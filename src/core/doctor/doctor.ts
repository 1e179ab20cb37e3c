import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { runTool } from '../../adapters/proc.js';
import '../../adapters/sqlitekeep.js';
import { databaseSeries, listBackups } from '../catalog/index.js';
import { pgTarget, type ResolvedConfig } from '../config/index.js';
import { freeBytes } from '../fs/index.js';
import { sqliteDir } from '../layout/index.js';
import { maintenance } from '../restore/index.js';
import type { Check } from '../verify/index.js';

const pass = (name: string, found: string): Check => ({ name, status: 'pass', found });
const warn = (name: string, found: string, hint: string): Check => ({ name, status: 'warn', found, hint });
const fail = (name: string, found: string, hint: string): Check => ({ name, status: 'fail', found, hint });

/** What `doctor` found: each check, and the versions of the tools it looked at. */
export interface DoctorResult {
  checks: Check[];
  tools: Record<string, string | null>;
  failed: number;
  warned: number;
}

/** The first line a tool prints for --version, or null when it is not installed (or fails). */
async function version(tool: string, args = ['--version']): Promise<string | null> {
  try {
    const r = await runTool(tool, args);
    return (r.stdout || r.stderr).split('\n').find((l) => l.trim())?.replace(/\*+/g, '').trim() ?? '';
  } catch {
    return null;
  }
}

const major = (v: string | null): number => Number(/(\d+)(?:\.\d+)/.exec(v ?? '')?.[1] ?? 0);

const human = (n: number): string => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; n >= 1024 && i < u.length - 1; i++) n /= 1024;
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
};

/** The tools a backup and a restore run: GNU tar always, zstd for --compression zstd, the PostgreSQL client when it is the primary. */
async function toolChecks(cfg: ResolvedConfig, tools: DoctorResult['tools'], encrypting: boolean): Promise<Check[]> {
  const out: Check[] = [];
  for (const t of ['tar', 'zstd', 'pg_dump', 'pg_restore', 'psql', 'sqlite3']) tools[t] = await version(t, t === 'sqlite3' ? ['-version'] : ['--version']);
  tools['sqlite (built in)'] = sqliteLibraryVersion();
  const tar = tools.tar;
  out.push(
    !tar
      ? fail('tools.tar', 'tar is not installed', 'Install GNU tar (Debian: apt-get install tar): restores extract with it.')
      : !/GNU tar/.test(tar)
        ? fail('tools.tar', `tar is not GNU tar (${tar})`, 'Install GNU tar and put it first on PATH: restores rely on its checks and options.')
        : pass('tools.tar', tar),
  );
  out.push(tools.zstd ? pass('tools.zstd', tools.zstd) : warn('tools.zstd', 'zstd is not installed', 'Install zstd (apt-get install zstd) to use or restore --compression zstd archives; gzip needs nothing.'));
  // age encrypts copies and sealed backups (SCITEX_DATA_ENCRYPT_TO) and is needed to restore them anywhere.
  tools.age = await version('age');
  out.push(
    tools.age ? pass('tools.age', `age ${tools.age}`)
    : encrypting ? fail('tools.age', 'SCITEX_DATA_ENCRYPT_TO is set but the age command is not installed', 'apt-get install age: without it, encrypted copies and sealed backups cannot be made.')
    : warn('tools.age', 'age is not installed', 'Install age (apt-get install age) to encrypt off-site copies or local backups, or to restore encrypted ones.'),
  );
  const pgTools = ['pg_dump', 'pg_restore', 'psql'];
  if (cfg.database.kind === 'postgres') {
    const missing = pgTools.filter((t) => !tools[t]);
    out.push(
      missing.length
        ? fail('tools.postgres-client', `${missing.join(', ')} not installed`, 'Install the PostgreSQL client of the server\'s version (Debian: apt-get install postgresql-client-<major>).')
        : pass('tools.postgres-client', pgTools.map((t) => `${t} ${major(tools[t]!)}`).join(', ')),
    );
  } else {
    out.push(pass('tools.postgres-client', `not needed (the database is SQLite)${tools.pg_dump ? `; ${tools.pg_dump}` : ''}`));
  }
  out.push(pass('tools.sqlite', `SQLite ${tools['sqlite (built in)']} built in${tools.sqlite3 ? `; sqlite3 CLI ${tools.sqlite3.split(' ')[0]}` : '; no sqlite3 CLI (only needed to open snapshots by hand)'}`));
  return out;
}

function sqliteLibraryVersion(): string | null {
  try {
    const Database = createRequire(import.meta.url)('better-sqlite3') as typeof import('better-sqlite3');
    const db = new Database(':memory:');
    try {
      return (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}

/** The server's version against the client's, and the privileges a restore needs (CREATEDB, owning the database). */
async function postgresChecks(cfg: ResolvedConfig, tools: DoctorResult['tools']): Promise<Check[]> {
  if (cfg.database.kind !== 'postgres') return [];
  const t = pgTarget(cfg.database);
  let c;
  try {
    c = await maintenance(t);
  } catch (err) {
    return [fail('postgres.server', `cannot connect as ${t.user}@${t.host}:${t.port}: ${(err as Error).message}`, (err as { hint?: string }).hint ?? 'Check the server and `scitex-data config`.')];
  }
  try {
    const server = Math.floor(Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v) / 10000);
    tools['postgres server'] = String(server);
    const out: Check[] = [];
    const old = ['pg_dump', 'pg_restore', 'psql'].filter((x) => tools[x] && major(tools[x]) < server);
    out.push(
      old.length
        ? fail('postgres.versions', `server is PostgreSQL ${server}; ${old.map((x) => `${x} is ${major(tools[x]!)}`).join(', ')}`, `Install postgresql-client-${server}: an older pg_dump refuses to dump a newer server.`)
        : pass('postgres.versions', `server ${server}; client tools ${['pg_dump', 'pg_restore', 'psql'].map((x) => major(tools[x] ?? null) || 'missing').join('/')}`),
    );
    const role = (await c.query<{ rolcreatedb: boolean; rolsuper: boolean }>('SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user')).rows[0];
    out.push(
      role?.rolcreatedb || role?.rolsuper
        ? pass('postgres.createdb', `${t.user} may create databases${role.rolsuper ? ' (superuser)' : ''}: a restore can stage into a new database`)
        : fail('postgres.createdb', `${t.user} lacks CREATEDB`, `A restore stages into a new database first. As a superuser: ALTER ROLE ${t.user} CREATEDB;`),
    );
    const owner = (await c.query<{ owner: string }>('SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1', [t.database])).rows[0]?.owner;
    out.push(
      !owner
        ? warn('postgres.owner', `database ${t.database} does not exist yet`, 'Create it (the app\'s migrations) before the first backup; a restore would create it.')
        : owner === t.user || role?.rolsuper
          ? pass('postgres.owner', `${t.database} is owned by ${owner}${owner !== t.user ? ` (${t.user} is a superuser)` : ''}: a restore can swap it`)
          : fail('postgres.owner', `${t.database} is owned by ${owner}, not ${t.user}`, `A restore swaps the database by name. As a superuser: ALTER DATABASE ${t.database} OWNER TO ${t.user}; or restore as ${owner}.`),
    );
    return out;
  } finally {
    await c.end().catch(() => {});
  }
}

/** SQLite: a restore writes the new file and its safety copy in data/db/sqlite. */
function sqliteChecks(cfg: ResolvedConfig): Check[] {
  if (cfg.database.kind !== 'sqlite') return [];
  const dir = sqliteDir(cfg.root);
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    return [fail('sqlite.writable', `${dir} cannot be written (${(err as NodeJS.ErrnoException).code})`, 'Run as the user that owns data/ (or root), or run `scitex-data init`.')];
  }
  return [pass('sqlite.writable', `${dir} is writable: a restore can stage there${fs.existsSync(cfg.database.path) ? '' : ` (${path.basename(cfg.database.path)} does not exist yet)`}`)];
}

/** Free space in the backup directory against the last backup's size (database plus user set). */
async function spaceCheck(cfg: ResolvedConfig): Promise<Check> {
  const dir = cfg.backupDir.value;
  let p = path.resolve(dir);
  while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
  const free = await freeBytes(p);
  const all = fs.existsSync(dir) ? await listBackups(dir).catch(() => []) : [];
  const series = databaseSeries(cfg);
  const db = all.find((e) => e.kind === cfg.database.kind && e.series === series);
  const users = all.find((e) => e.kind === 'users' && !e.partial);
  const last = (db?.size ?? 0) + (users?.size ?? 0);
  if (!last) return pass('space.backups', `${human(free)} free in ${p}; no backup yet to compare with`);
  const found = `${human(free)} free in ${p}; the last backup took ${human(last)}`;
  if (free < last) return fail('space.backups', found, 'The next backup will not fit: free space, prune (`scitex-data prune --keep-daily 7`) or set SCITEX_DATA_BACKUP_DIR to a larger volume.');
  if (free < 3 * last) return warn('space.backups', found, 'Room for fewer than three more backups: prune or grow the volume soon.');
  return pass('space.backups', found);
}

/** Lines mentioning scitex-data in the current user's crontab and in /etc/cron.d, /etc/crontab. */
async function cronLines(): Promise<{ source: string; line: string; hasPath: boolean }[]> {
  const sources: { source: string; text: string }[] = [];
  const user = os.userInfo().username;
  const mine = await runTool('crontab', ['-l']).catch(() => null);
  if (mine) sources.push({ source: `crontab -l (${user})`, text: mine.stdout });
  const files = ['/etc/crontab', ...(fs.existsSync('/etc/cron.d') ? fs.readdirSync('/etc/cron.d').map((f) => path.join('/etc/cron.d', f)) : [])];
  for (const f of files) {
    try {
      sources.push({ source: f, text: fs.readFileSync(f, 'utf8') });
    } catch {
      /* unreadable: not ours to judge */
    }
  }
  const out: { source: string; line: string; hasPath: boolean }[] = [];
  for (const s of sources) {
    const lines = s.text.split('\n').map((l) => l.trim());
    const hasPath = lines.some((l) => /^PATH\s*=/.test(l));
    for (const l of lines) if (!l.startsWith('#') && /scitex-data/.test(l)) out.push({ source: s.source, line: l, hasPath });
  }
  return out;
}

/** The cron entries it can see: each must name scitex-data by absolute path or set PATH (cron's is /usr/bin:/bin). */
async function cronCheck({ self, node }: CommandPaths): Promise<Check> {
  const lines = await cronLines();
  if (!lines.length) return warn('cron', 'no cron entry mentions scitex-data (crontab -l of this user, /etc/crontab, /etc/cron.d)', `Add the nightly job (see the README), naming the command by its absolute path: ${self}.`);
  // A bare `scitex-data` (not preceded by a path) needs a PATH line: cron's default PATH is /usr/bin:/bin.
  const bare = lines.filter((l) => !l.hasPath && /(^|[\s;&|(])scitex-data(\s|$)/.test(l.line));
  if (bare.length) return fail('cron', `${bare[0]!.source}: \`${bare[0]!.line}\` runs scitex-data without a path or a PATH line`, `cron's PATH is /usr/bin:/bin, so this fails with "scitex-data: not found" (exit 127): write ${self}, or add a PATH= line.`);
  // `#!/usr/bin/env node` needs node on cron's PATH too (not there with nvm or a /usr/local install).
  const cronHasNode = ['/usr/bin/node', '/bin/node'].some((p) => fs.existsSync(p));
  const noNode = cronHasNode ? [] : lines.filter((l) => !l.hasPath && !/\/node\s/.test(l.line));
  if (noNode.length) return fail('cron', `${noNode[0]!.source}: \`${noNode[0]!.line}\` needs node, which is not in cron's PATH (/usr/bin:/bin)`, `Add a PATH= line with the directory of \`command -v node\` (${path.dirname(node)}), or run ${node} ${self} ... in the line.`);
  return pass('cron', lines.map((l) => `${l.source}: ${l.line}`).join(' | '));
}

/** Absolute paths of the running command and of node, suggested for cron lines. */
export interface CommandPaths {
  self: string;
  node: string;
}

/** Looks at the machine the way a restore at 3 a.m. will need it, and says what to fix first. */
export async function doctor(cfg: ResolvedConfig, paths: CommandPaths = { self: 'scitex-data', node: 'node' }, opts: { encrypting?: boolean } = {}): Promise<DoctorResult> {
  const tools: DoctorResult['tools'] = {};
  const checks = [...(await toolChecks(cfg, tools, !!opts.encrypting)), ...(await postgresChecks(cfg, tools)), ...sqliteChecks(cfg), await spaceCheck(cfg), await cronCheck(paths)];
  return { checks, tools, failed: checks.filter((c) => c.status === 'fail').length, warned: checks.filter((c) => c.status === 'warn').length };
}
