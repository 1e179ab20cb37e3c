import fs from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import { UsageError } from '../errors.js';
import { backupsDir, sqliteDir } from './layout/paths.js';
import type { PgTarget } from '../adapters/postgres.js';

/** The app's two environments. */
export type AppEnv = 'dev' | 'prod';
/** Where a configuration value came from. */
export type Source = 'flag' | 'environment' | '.env' | 'default';

/** A value with its origin, so `config` can say where each one came from. */
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
  warnings: string[];
}

/** Options a caller may set explicitly (flags win over everything). */
export interface ConfigOptions {
  env?: AppEnv;
  backupDir?: string;
}

/** Environment variable that moves the backup directory. */
export const BACKUP_DIR_VAR = 'SCITEX_DATA_BACKUP_DIR';

const PG_DEFAULTS: Record<AppEnv, { NAME: string; USER: string; PASSWORD?: string; HOST: string; PORT: string }> = {
  dev: { NAME: 'scitex_cloud_dev', USER: 'scitex_dev', PASSWORD: 'scitex_dev_2025', HOST: 'localhost', PORT: '5432' },
  prod: { NAME: 'scitex_cloud_prod', USER: 'scitex_prod', HOST: 'localhost', PORT: '5432' },
};

/** Reads `<root>/.env` (following a symlink) and reports lines that are not KEY=value. */
export function readDotenv(root: string): { values: Record<string, string>; warnings: string[] } {
  const file = path.join(root, '.env');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { values: {}, warnings: [] };
    return { values: {}, warnings: [`.env could not be read (${code}); using the environment only.`] };
  }
  const warnings: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) return;
    if (!/^(export\s+)?[A-Za-z_][\w.-]*\s*=/.test(t)) warnings.push(`.env line ${i + 1} is not KEY=value; ignored.`);
  });
  return { values: dotenv.parse(text), warnings };
}

const OFF_WORDS = new Set(['0', 'false', 'no', 'off']);

/** Resolves the configuration exactly as the Django settings would, with sources. */
export function resolveConfig(root: string, opts: ConfigOptions, processEnv: Record<string, string | undefined>): ResolvedConfig {
  const absRoot = path.resolve(root);
  const dot = readDotenv(absRoot);
  const warnings = [...dot.warnings];
  // Real environment variables win over .env, as with python-dotenv's default (override=False).
  const lookup = (variable: string): Sourced<string> | undefined => {
    const envValue = processEnv[variable];
    if (envValue !== undefined) return { value: envValue, source: 'environment', variable };
    if (variable in dot.values) return { value: dot.values[variable]!, source: '.env', variable };
    return undefined;
  };

  let env: Sourced<AppEnv>;
  if (opts.env) {
    env = { value: opts.env, source: 'flag' };
  } else {
    const v = lookup('SCITEX_CLOUD_ENV');
    env = v ? { value: v.value === 'production' ? 'prod' : 'dev', source: v.source, variable: v.variable } : { value: 'dev', source: 'default' };
  }
  const E = env.value.toUpperCase();

  const sqliteSwitch = lookup(`SCITEX_CLOUD_USE_SQLITE_${E}`);
  let database: PostgresConfig | SqliteConfig;
  // Django tests the switch for being non-empty only: "0" and "false" still turn SQLite on.
  if (sqliteSwitch && sqliteSwitch.value !== '') {
    if (OFF_WORDS.has(sqliteSwitch.value.trim().toLowerCase())) {
      warnings.push(
        `${sqliteSwitch.variable}=${sqliteSwitch.value} looks like "off", but the app treats any non-empty value as ON: SQLite is in use. Unset the variable to use PostgreSQL.`,
      );
    }
    database = { kind: 'sqlite', path: path.join(sqliteDir(absRoot), `scitex_cloud_${env.value}.db`), switch: sqliteSwitch };
  } else {
    const d = PG_DEFAULTS[env.value];
    const pick = (key: keyof typeof d): Sourced<string | undefined> => lookup(`SCITEX_CLOUD_DB_${key}_${E}`) ?? { value: d[key], source: 'default' };
    const port = pick('PORT');
    const portNum = Number(port.value);
    if (!Number.isInteger(portNum) || portNum <= 0 || portNum > 65535) {
      throw new UsageError(`${port.variable ?? 'The PostgreSQL port'} is ${JSON.stringify(port.value)}, not a port number.`, `Set SCITEX_CLOUD_DB_PORT_${E} to a number such as 5432.`);
    }
    database = {
      kind: 'postgres',
      name: pick('NAME') as Sourced<string>,
      user: pick('USER') as Sourced<string>,
      password: pick('PASSWORD'),
      host: pick('HOST') as Sourced<string>,
      port: { ...port, value: portNum },
    };
  }

  let backupDir: Sourced<string>;
  if (opts.backupDir) backupDir = { value: path.resolve(absRoot, opts.backupDir), source: 'flag' };
  else {
    const v = lookup(BACKUP_DIR_VAR);
    backupDir = v && v.value ? { ...v, value: path.resolve(absRoot, v.value) } : { value: backupsDir(absRoot), source: 'default' };
  }
  return { root: absRoot, env, database, backupDir, warnings };
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
    warnings: cfg.warnings,
  };
}

/** The connection target (for the PostgreSQL adapter) of the configured database. */
export function pgTarget(cfg: PostgresConfig): PgTarget {
  return { host: cfg.host.value, port: cfg.port.value, user: cfg.user.value, database: cfg.name.value, password: cfg.password.value };
}
