import fs from 'node:fs';
import path from 'node:path';
import type { AppEnv, PostgresConfig, Sourced, SqliteConfig } from './resolve.js';
import { UsageError } from '../../errors.js';
import { sqliteDir } from '../layout/index.js';

/** Looks a variable up in the environment, then .env. */
export type Lookup = (variable: string) => Sourced<string> | undefined;

/** The settings module the app would load, and the file that defines its database. */
export interface ModuleChoice {
  module: string;
  env: Sourced<AppEnv>;
  /** The module's own file (relative to the root), null when it is not under the root. */
  moduleFile: string | null;
  /** The file whose DATABASES the emulation reads (config/settings/settings_<env>.py behind the auto-loader). */
  databaseFile: string | null;
  /** SCITEX_CLOUD_ENV to give the child when --env chose the environment. */
  forcedEnv?: string;
}

const PLACEHOLDER = 'your_database_password_here';
const OFF_WORDS = new Set(['0', 'false', 'no', 'off']);

/** Relative path of a dotted module under the root (a module file or a package's __init__.py), null if absent. */
export function moduleFile(root: string, module: string): string | null {
  if (!/^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$/.test(module)) return null;
  const base = module.split('.').join('/');
  for (const rel of [`${base}.py`, `${base}/__init__.py`, `config/${base}.py`, `config/${base}/__init__.py`]) {
    if (fs.existsSync(path.join(root, rel))) return rel;
  }
  return null;
}

/** SCITEX_CLOUD_ENV as config/settings/__init__.py reads it: lowercased, `production` or else development. */
export function envFromVariable(lookup: Lookup, warnings: string[]): Sourced<AppEnv> {
  const v = lookup('SCITEX_CLOUD_ENV');
  if (!v) return { value: 'dev', source: 'default' };
  const lower = v.value.toLowerCase();
  if (lower !== 'production' && lower !== 'development') {
    warnings.push(`${v.variable}=${v.value} is neither "production" nor "development": the app warns and loads the development settings.`);
  }
  return { value: lower === 'production' ? 'prod' : 'dev', source: v.source, variable: v.variable };
}

/** Which settings module loads: --env, DJANGO_SETTINGS_MODULE, SCITEX_CLOUD_DJANGO_SETTINGS_MODULE, config.settings. */
export function chooseModule(root: string, flagEnv: AppEnv | undefined, lookup: Lookup, warnings: string[]): ModuleChoice {
  const autoLoader = fs.existsSync(path.join(root, 'config/settings/__init__.py'));
  const concrete = (env: AppEnv) => `config.settings.settings_${env}`;
  const finish = (module: string, env: Sourced<AppEnv>, forcedEnv?: string): ModuleChoice => {
    const file = moduleFile(root, module);
    const dbModule = module === 'config.settings' ? concrete(env.value) : module;
    return { module, env, moduleFile: file, databaseFile: moduleFile(root, dbModule), forcedEnv };
  };
  if (flagEnv) {
    const env: Sourced<AppEnv> = { value: flagEnv, source: 'flag' };
    return finish(autoLoader ? 'config.settings' : concrete(flagEnv), env, flagEnv === 'prod' ? 'production' : 'development');
  }
  for (const variable of ['DJANGO_SETTINGS_MODULE', 'SCITEX_CLOUD_DJANGO_SETTINGS_MODULE']) {
    const v = lookup(variable);
    if (!v || v.value === '') continue;
    if (v.value === 'config.settings') return finish(v.value, envFromVariable(lookup, warnings));
    // An explicit module names its environment (settings_prod, production, ...).
    const env: AppEnv = /prod/i.test(v.value.split('.').pop()!) ? 'prod' : 'dev';
    return finish(v.value, { value: env, source: v.source, variable: v.variable });
  }
  const env = envFromVariable(lookup, warnings);
  // Before config/settings/__init__.py existed, the app was pointed at settings_<env> directly.
  return finish(autoLoader ? 'config.settings' : concrete(env.value), env);
}

/** Settings text without comment lines (a commented-out DATABASES is not the app's). */
function readSettings(root: string, rel: string | null): string | null {
  if (!rel) return null;
  try {
    const file = path.join(root, rel);
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > 4 << 20) return null;
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => !l.trim().startsWith('#')).join('\n');
  } catch {
    return null;
  }
}

/** The first SQLite path the settings name (`BASE_DIR / "data" / "x.db"` over any lines, or `os.path.join`). */
export function sqlitePathIn(text: string, root: string): string | null {
  const patterns = [/BASE_DIR((?:\s*\/\s*(["'])[^"'\n]+\2)+)/g, /os\.path\.join\(\s*(?:str\()?BASE_DIR\)?((?:\s*,\s*(["'])[^"'\n]+\2)+)\s*,?\s*\)/g];
  for (const re of patterns) {
    for (const m of text.matchAll(re)) {
      const parts = [...m[1]!.matchAll(/(["'])([^"'\n]+)\1/g)].map((p) => p[2]!);
      if (parts.length && /\.(db|sqlite3?)$/.test(parts[parts.length - 1]!)) return path.join(root, ...parts);
    }
  }
  return null;
}

/** A `os.environ.get("VAR", "default")` / `os.getenv(...)` default written in the settings, if any. */
function defaultIn(text: string, variable: string): string | undefined {
  const m = new RegExp(String.raw`(?:os\.environ\.get|os\.getenv)\(\s*["']${variable}["']\s*,\s*["']([^"'\n]*)["']`).exec(text);
  return m?.[1];
}

/** The database the app would use, following the settings' own rules (the emulation when Python is not at hand). */
export function emulateDatabase(root: string, choice: ModuleChoice, lookup: Lookup, warnings: string[]): PostgresConfig | SqliteConfig {
  const env = choice.env.value;
  const E = env.toUpperCase();
  const text = readSettings(root, choice.databaseFile);
  const hardCoded = (file: string, p: string): SqliteConfig => ({ kind: 'sqlite', path: p, switch: { value: 'hard-coded', source: 'settings', variable: file } });
  if (text !== null && !/SCITEX_CLOUD_(USE_SQLITE|DB)_/.test(text)) {
    const file = choice.databaseFile!;
    if (/\bDB_PASSWORD\b/.test(text)) {
      // Before the restructure, settings_prod.py used PostgreSQL from DB_* only with a real DB_PASSWORD, else SQLite.
      const pw = lookup('DB_PASSWORD');
      if (!pw || !pw.value || pw.value === PLACEHOLDER) return hardCoded(file, sqlitePathIn(text, root) ?? path.join(root, 'data', `scitex_cloud_${env}.db`));
      return postgres(text, (k) => lookup(`DB_${k}`), { NAME: `scitex_cloud_${env}`, USER: `scitex_${env}`, HOST: 'localhost', PORT: '5432' }, 'DB_PORT');
    }
    const p = sqlitePathIn(text, root);
    if (p) return hardCoded(file, p);
    warnings.push(`${file} names no database the emulation recognises; assuming the SCITEX_CLOUD_DB_* rules.`);
  }
  const sqliteSwitch = lookup(`SCITEX_CLOUD_USE_SQLITE_${E}`);
  // Django tests the switch for being non-empty only: "0" and "false" still turn SQLite on.
  if (sqliteSwitch && sqliteSwitch.value !== '') {
    if (OFF_WORDS.has(sqliteSwitch.value.trim().toLowerCase())) {
      warnings.push(`${sqliteSwitch.variable}=${sqliteSwitch.value} looks like "off", but the app treats any non-empty value as ON: SQLite is in use. Unset the variable to use PostgreSQL.`);
    }
    return { kind: 'sqlite', path: (text && sqlitePathIn(text, root)) ?? path.join(sqliteDir(root), `scitex_cloud_${env}.db`), switch: sqliteSwitch };
  }
  const t = text ?? '';
  if (env === 'prod') {
    const pw = lookup('SCITEX_CLOUD_DB_PASSWORD_PROD');
    if (!pw || !pw.value || pw.value === PLACEHOLDER) {
      // The app then uses its built-in credentials and ignores every other _PROD variable.
      const builtIn = (value: string): Sourced<string> => ({ value, source: 'default' });
      const password = /["']PASSWORD["']\s*:\s*["']([^"'\n]*)["']/.exec(t)?.[1] ?? 'CHANGE_THIS_IN_PRODUCTION';
      return { kind: 'postgres', name: builtIn('scitex_cloud_prod'), user: builtIn('scitex_prod'), password: builtIn(password), host: builtIn('localhost'), port: { value: 5432, source: 'default' } };
    }
  }
  const dflt = env === 'dev' ? { NAME: 'scitex_cloud_dev', USER: 'scitex_dev', PASSWORD: 'scitex_dev_2025', HOST: 'localhost', PORT: '5432' } : { NAME: 'scitex_cloud_prod', USER: 'scitex_prod', HOST: 'localhost', PORT: '5432' };
  return postgres(t, (k) => lookup(`SCITEX_CLOUD_DB_${k}_${E}`), dflt, `SCITEX_CLOUD_DB_PORT_${E}`);
}

const noEmpty = (s: Sourced<string | undefined>): Sourced<string | undefined> => (s.value === '' ? { ...s, value: undefined } : s);

function postgres(text: string, get: (key: string) => Sourced<string> | undefined, dflt: Record<string, string | undefined>, portVar: string): PostgresConfig {
  const pick = (key: string): Sourced<string | undefined> => {
    const v = get(key);
    if (v) return v;
    return { value: defaultIn(text, portVar.replace('PORT', key)) ?? dflt[key], source: 'default' };
  };
  const port = pick('PORT');
  // An empty PORT is Django's "default port", as an empty PASSWORD is no password.
  const portNum = port.value === '' ? 5432 : Number(port.value);
  if (!Number.isInteger(portNum) || portNum <= 0 || portNum > 65535) {
    throw new UsageError(`${port.variable ?? 'The PostgreSQL port'} is ${JSON.stringify(port.value)}, not a port number.`, `Set ${portVar} to a number such as 5432.`);
  }
  return { kind: 'postgres', name: pick('NAME') as Sourced<string>, user: pick('USER') as Sourced<string>, password: noEmpty(pick('PASSWORD')), host: pick('HOST') as Sourced<string>, port: { ...port, value: portNum } };
}
