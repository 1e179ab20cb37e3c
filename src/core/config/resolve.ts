import fs from 'node:fs';
import path from 'node:path';
import type { PgTarget } from '../../adapters/postgres.js';
import { askPython, fromSettings, loadedEnv, pickPython, type SettingsSource } from './appsettings.js';
import { dotenvDisabled, dotenvValues, parseDotenv } from './dotenv.js';
import { chooseModule, emulateDatabase, moduleFile } from './emulate.js';
import { backupsDir } from '../layout/index.js';

export type { SettingsSource } from './appsettings.js';

/** The app's two environments. */
export type AppEnv = 'dev' | 'prod';
/** Where a configuration value came from. */
export type Source = 'flag' | 'environment' | '.env' | 'default' | 'settings';

/** A value with its origin, so `config` can say where each one came from (for 'settings', variable is the file). */
export interface Sourced<T> {
  value: T;
  source: Source;
  variable?: string;
}

/** PostgreSQL connection as the app would use it. */
export interface PostgresConfig {
  kind: 'postgres';
  name: Sourced<string>;
  user: Sourced<string>;
  password: Sourced<string | undefined>;
  host: Sourced<string>;
  port: Sourced<number>;
}

/** The SQLite fallback as the app would use it. */
export interface SqliteConfig {
  kind: 'sqlite';
  path: string;
  switch: Sourced<string>;
}

/** Everything a command needs to know about where data lives. */
export interface ResolvedConfig {
  root: string;
  env: Sourced<AppEnv>;
  database: PostgresConfig | SqliteConfig;
  backupDir: Sourced<string>;
  /** Whether the database came from the app's own Python or from the emulation (and why). */
  settings: SettingsSource;
  warnings: string[];
}

/** Options a caller may set explicitly (flags win over everything). */
export interface ConfigOptions {
  env?: AppEnv;
  backupDir?: string;
  /** Interpreter that evaluates the app's settings (default $SCITEX_DATA_PYTHON, .venv/bin/python, python3). */
  python?: string;
}

/** Environment variable that moves the backup directory. */
export const BACKUP_DIR_VAR = 'SCITEX_DATA_BACKUP_DIR';

/** Reads `<root>/.env` (following a symlink) as python-dotenv would load it; reports lines it cannot parse. */
export function readDotenv(root: string, environ: Record<string, string | undefined> = {}): { values: Record<string, string>; warnings: string[] } {
  const file = path.join(root, '.env');
  if (dotenvDisabled(environ)) {
    return { values: {}, warnings: fs.existsSync(file) ? [`PYTHON_DOTENV_DISABLED is set: the app's load_dotenv() loads nothing, so .env is ignored.`] : [] };
  }
  let text: string;
  try {
    const st = fs.statSync(file);
    // A FIFO or a huge file planted as .env would hang or exhaust us; python-dotenv's case is a small regular file.
    if (!st.isFile() || st.size > 1 << 20) return { values: {}, warnings: [`.env is not a regular file under 1 MiB; using the environment only.`] };
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { values: {}, warnings: [] };
    return { values: {}, warnings: [`.env could not be read (${code}); using the environment only.`] };
  }
  const parsed = parseDotenv(text);
  const warnings = parsed.errorLines.map((n) => `.env line ${n} is not KEY=value; ignored (python-dotenv skips it too).`);
  return { values: dotenvValues(parsed, environ), warnings };
}

/** Resolves the configuration exactly as the Django settings would, with sources. */
export function resolveConfig(root: string, opts: ConfigOptions, processEnv: Record<string, string | undefined>): ResolvedConfig {
  const absRoot = path.resolve(root);
  const dot = readDotenv(absRoot, processEnv);
  const warnings = [...dot.warnings];
  // Real environment variables win over .env, as with python-dotenv's default (override=False).
  const lookup = (variable: string): Sourced<string> | undefined => {
    const envValue = processEnv[variable];
    if (envValue !== undefined) return { value: envValue, source: 'environment', variable };
    if (variable in dot.values) return { value: dot.values[variable]!, source: '.env', variable };
    return undefined;
  };

  const choice = chooseModule(absRoot, opts.env, lookup, warnings);
  let env = choice.env;
  const emulationWarnings: string[] = [];
  const emulated = emulateDatabase(absRoot, choice, lookup, emulationWarnings);
  let database = emulated;
  let settings: SettingsSource;
  const python = pickPython(absRoot, opts.python, processEnv);
  const asked = askPython(absRoot, python, choice, appEnvironment(processEnv, dot.values));
  if (typeof asked === 'string') {
    settings = { source: 'emulated', reason: asked, module: choice.module };
    warnings.push(...emulationWarnings);
  } else {
    env = loadedEnv(choice, asked.loaded);
    const same = env.value === choice.env.value;
    const againstEnv = same ? emulated : emulateDatabase(absRoot, { ...choice, env, databaseFile: moduleFile(absRoot, `config.settings.settings_${env.value}`) }, lookup, []);
    const file = (same ? choice.databaseFile : moduleFile(absRoot, `config.settings.settings_${env.value}`)) ?? choice.moduleFile!;
    database = fromSettings(absRoot, asked.db, againstEnv, file, warnings);
    // The off-looking switch warning stays true when the app did turn SQLite on.
    if (database.kind === 'sqlite') warnings.push(...emulationWarnings.filter((w) => /looks like "off"/.test(w)));
    settings = { source: 'python', python, module: choice.module, uid: asked.uid };
  }

  let backupDir: Sourced<string>;
  if (opts.backupDir) backupDir = { value: path.resolve(absRoot, opts.backupDir), source: 'flag' };
  else {
    const v = lookup(BACKUP_DIR_VAR);
    backupDir = v && v.value ? { ...v, value: path.resolve(absRoot, v.value) } : { value: backupsDir(absRoot), source: 'default' };
  }
  return { root: absRoot, env, database, backupDir, settings, warnings };
}

/** The environment the app's process sees: ours, plus what its load_dotenv() adds from .env. */
function appEnvironment(processEnv: Record<string, string | undefined>, dotValues: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(processEnv)) if (v !== undefined) env[k] = v;
  for (const [k, v] of Object.entries(dotValues)) if (!(k in env)) env[k] = v;
  return env;
}

/** The configuration as plain data with the password masked, for `config` and --json. */
export function describeConfig(cfg: ResolvedConfig): Record<string, unknown> {
  const db = cfg.database;
  const show = <T>(s: Sourced<T>) => ({ value: s.value, source: s.source, ...(s.variable ? { variable: s.variable } : {}) });
  return {
    root: cfg.root,
    env: show(cfg.env),
    database:
      db.kind === 'sqlite'
        ? { kind: 'sqlite', path: db.path, switch: show(db.switch) }
        : {
            kind: 'postgres',
            name: show(db.name),
            user: show(db.user),
            password: { ...show(db.password), value: db.password.value ? '********' : '(none)' },
            host: show(db.host),
            port: show(db.port),
          },
    backupDir: show(cfg.backupDir),
    settings: cfg.settings,
    warnings: cfg.warnings,
  };
}

/** The connection target (for the PostgreSQL adapter) of the configured database. */
export function pgTarget(cfg: PostgresConfig): PgTarget {
  return { host: cfg.host.value, port: cfg.port.value, user: cfg.user.value, database: cfg.name.value, password: cfg.password.value };
}
