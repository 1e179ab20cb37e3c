import fs from 'node:fs';
import path from 'node:path';
import { evaluateSettings, type SettingsDatabase } from '../../adapters/python.js';
import type { AppEnv, PostgresConfig, Sourced, SqliteConfig } from './resolve.js';
import { UsageError } from '../../errors.js';
import type { ModuleChoice } from './emulate.js';

/** Where the database settings came from: the app's own Python, or the emulation and why. */
export type SettingsSource =
  | { source: 'python'; python: string; module: string; uid: number }
  | { source: 'emulated'; reason: string; module: string };

/** Environment variable naming the interpreter (after --python, before .venv/bin/python and python3). */
export const PYTHON_VAR = 'SCITEX_DATA_PYTHON';
const TIMEOUT_MS = 30_000;

/** The interpreter to ask: --python, $SCITEX_DATA_PYTHON, the app's .venv, else python3 on PATH. */
export function pickPython(root: string, flag: string | undefined, environ: Record<string, string | undefined>): string {
  if (flag) return flag;
  const fromEnv = environ[PYTHON_VAR];
  if (fromEnv) return fromEnv;
  const venv = path.join(root, '.venv/bin/python');
  return fs.existsSync(venv) ? venv : 'python3';
}

/** Who runs the settings: their owner (never root); as a non-root caller, ourselves. */
function runAs(root: string, file: string): { uid: number; gid: number } | undefined {
  if (process.geteuid?.() !== 0) return undefined;
  for (const p of [path.join(root, file), root]) {
    const st = fs.lstatSync(p); // whoever controls the path, not a link's target
    if (st.uid !== 0) return { uid: st.uid, gid: st.gid };
  }
  // Root-owned settings: an unprivileged nobody still reads world-readable files; root never runs them.
  return { uid: 65534, gid: 65534 };
}

/** HOME/USER of a uid from /etc/passwd, so the child does not inherit root's. */
function account(uid: number): Record<string, string> {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':');
      if (f.length >= 7 && Number(f[2]) === uid) return { HOME: f[5]!, USER: f[0]!, LOGNAME: f[0]! };
    }
  } catch {
    /* no passwd: keep the environment as it is */
  }
  return { HOME: '/nonexistent' };
}

/** Evaluates the chosen settings module with the app's environment; the reason as a string when it cannot. */
export function askPython(root: string, python: string, choice: ModuleChoice, appEnv: Record<string, string>): { db: SettingsDatabase; loaded: string[]; uid: number } | string {
  if (!choice.moduleFile) return `settings module ${choice.module} not found under ${root}`;
  if (python.includes('/') && !fs.existsSync(python)) return `${python} not found`;
  const who = runAs(root, choice.moduleFile);
  const env: Record<string, string> = { ...appEnv, ...(who ? account(who.uid) : {}) };
  delete env.SSH_AUTH_SOCK; // root's agent is not the app's
  if (choice.forcedEnv) env.SCITEX_CLOUD_ENV = choice.forcedEnv;
  const r = evaluateSettings({ python, root, module: choice.module, env, uid: who?.uid, gid: who?.gid, timeoutMs: TIMEOUT_MS });
  if (!r.ok) return `${choice.module}: ${r.reason}`;
  return { db: r.database, loaded: r.loaded, uid: r.uid };
}

/** The environment the settings actually loaded (config.settings picks settings_prod or settings_dev itself). */
export function loadedEnv(choice: ModuleChoice, loaded: string[]): Sourced<AppEnv> {
  if (choice.module !== 'config.settings') return choice.env;
  // settings_<env> on main; production/development in the first auto-loader.
  const names = { prod: ['settings_prod', 'production'], dev: ['settings_dev', 'development'] } as const;
  for (const env of ['prod', 'dev'] as const) {
    const hit = names[env].map((n) => `config.settings.${n}`).find((m) => loaded.includes(m));
    if (hit && env !== choice.env.value) return { value: env, source: 'settings', variable: hit };
  }
  return choice.env;
}

/**
 * DATABASES["default"] as the configuration scitex-data uses. Each value keeps the origin the emulation found when
 * both agree (so `config` can still say which variable set it), else it is attributed to the settings module.
 */
export function fromSettings(root: string, db: SettingsDatabase, emulated: PostgresConfig | SqliteConfig, file: string, warnings: string[]): PostgresConfig | SqliteConfig {
  const engine = String(db.ENGINE ?? '');
  const bySettings = <T>(value: T): Sourced<T> => ({ value, source: 'settings', variable: file });
  if (/sqlite3|spatialite/.test(engine)) {
    const name = String(db.NAME ?? '');
    if (!name || name === ':memory:' || name.startsWith('file:')) throw new UsageError(`The app's settings name the SQLite database ${JSON.stringify(name)}, which is not a file scitex-data can back up.`, `Check DATABASES["default"]["NAME"] in ${file}.`);
    const p = path.resolve(root, name); // Django opens a relative NAME from the app's working directory, the root
    const sw = emulated.kind === 'sqlite' && emulated.switch.source !== 'settings' ? emulated.switch : { value: 'hard-coded', source: 'settings' as const, variable: file };
    return { kind: 'sqlite', path: p, switch: sw };
  }
  if (!/postgres|postgis/.test(engine)) {
    throw new UsageError(`The app's settings use the database engine ${JSON.stringify(engine)}; scitex-data handles PostgreSQL and SQLite only.`, `Check DATABASES["default"]["ENGINE"] in ${file}.`);
  }
  const pg = emulated.kind === 'postgres' ? emulated : undefined;
  const keep = <T>(value: T, e: Sourced<T> | undefined): Sourced<T> => (e && e.value === value ? e : bySettings(value));
  const str = (v: string | number | null | undefined) => (v === null || v === undefined ? '' : String(v));
  let host = str(db.HOST);
  if (host === '') {
    warnings.push(`The app's settings leave HOST empty (a Unix-socket connection); scitex-data connects over TCP to localhost.`);
    host = 'localhost';
  }
  const portText = str(db.PORT) || '5432';
  const port = Number(portText);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new UsageError(`The app's settings give the PostgreSQL port ${JSON.stringify(portText)}, not a port number.`, `Check DATABASES["default"]["PORT"] in ${file}.`);
  const password = db.PASSWORD === null || db.PASSWORD === undefined || db.PASSWORD === '' ? undefined : String(db.PASSWORD);
  return {
    kind: 'postgres',
    name: keep(str(db.NAME), pg?.name),
    user: keep(str(db.USER), pg?.user),
    password: keep(password, pg?.password),
    host: keep(host, pg?.host),
    port: keep(port, pg?.port),
  };
}
