import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { describeConfig, resolveConfig } from '../../src/index.js';
import { tempDir } from '../helpers/cli.js';

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('configuration as the app sees it', () => {
  it('defaults to dev PostgreSQL with the documented defaults', () => {
    root = tempDir();
    const c = resolveConfig(root, {}, {});
    expect(c.env).toEqual({ value: 'dev', source: 'default' });
    expect(c.database.kind).toBe('postgres');
    if (c.database.kind !== 'postgres') return;
    expect([c.database.name.value, c.database.user.value, c.database.host.value, c.database.port.value]).toEqual(['scitex_cloud_dev', 'scitex_dev', 'localhost', 5432]);
  });
  it('SCITEX_CLOUD_ENV=production selects prod, anything else dev', () => {
    root = tempDir();
    expect(resolveConfig(root, {}, { SCITEX_CLOUD_ENV: 'production' }).env.value).toBe('prod');
    expect(resolveConfig(root, {}, { SCITEX_CLOUD_ENV: 'prod' }).env.value).toBe('dev');
    expect(resolveConfig(root, { env: 'prod' }, { SCITEX_CLOUD_ENV: 'development' }).env).toEqual({ value: 'prod', source: 'flag' });
    const p = resolveConfig(root, { env: 'prod' }, {}).database;
    // The app's built-in prod credentials carry its placeholder password.
    expect(p.kind === 'postgres' && p.password.value).toBe('CHANGE_THIS_IN_PRODUCTION');
  });
  it('reads a symlinked .env with export lines; the environment wins; garbage lines warn', () => {
    root = tempDir();
    const real = path.join(root, 'secrets.env');
    fs.writeFileSync(real, 'export SCITEX_CLOUD_DB_NAME_DEV=from_dotenv\nexport SCITEX_CLOUD_DB_USER_DEV="dot_user"\nthis is garbage\nSCITEX_CLOUD_DB_PORT_DEV=6543\n');
    fs.symlinkSync(real, path.join(root, '.env'));
    const c = resolveConfig(root, {}, { SCITEX_CLOUD_DB_USER_DEV: 'env_user' });
    if (c.database.kind !== 'postgres') throw new Error('expected postgres');
    expect(c.database.name).toEqual({ value: 'from_dotenv', source: '.env', variable: 'SCITEX_CLOUD_DB_NAME_DEV' });
    expect(c.database.user.source).toBe('environment');
    expect(c.database.user.value).toBe('env_user');
    expect(c.database.port.value).toBe(6543);
    expect(c.warnings.join('\n')).toMatch(/\.env line 3 is not KEY=value/);
  });
  it.each(['1', 'yes', '0', 'false', 'off', 'no'])('SQLite switch %j turns SQLite on, like the app', (v) => {
    root = tempDir();
    const c = resolveConfig(root, {}, { SCITEX_CLOUD_USE_SQLITE_DEV: v });
    expect(c.database.kind).toBe('sqlite');
    if (c.database.kind === 'sqlite') expect(c.database.path).toBe(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'));
    expect(c.warnings.some((w) => /looks like "off"/.test(w))).toBe(['0', 'false', 'off', 'no'].includes(v));
  });
  it('an empty switch leaves PostgreSQL on; the prod switch does not affect dev', () => {
    root = tempDir();
    expect(resolveConfig(root, {}, { SCITEX_CLOUD_USE_SQLITE_DEV: '' }).database.kind).toBe('postgres');
    expect(resolveConfig(root, {}, { SCITEX_CLOUD_USE_SQLITE_PROD: '1' }).database.kind).toBe('postgres');
  });
  it('masks the password and refuses a bad port', () => {
    root = tempDir();
    const d = describeConfig(resolveConfig(root, {}, { SCITEX_CLOUD_DB_PASSWORD_DEV: 'hunter2' }));
    expect(JSON.stringify(d)).not.toContain('hunter2');
    expect(() => resolveConfig(root, {}, { SCITEX_CLOUD_DB_PORT_DEV: 'abc' })).toThrow(/not a port number/);
  });
  it('backup dir: flag, then SCITEX_DATA_BACKUP_DIR, then data/db/backups', () => {
    root = tempDir();
    expect(resolveConfig(root, {}, {}).backupDir.value).toBe(path.join(root, 'data/db/backups'));
    expect(resolveConfig(root, {}, { SCITEX_DATA_BACKUP_DIR: '/mnt/b' }).backupDir).toEqual({ value: '/mnt/b', source: 'environment', variable: 'SCITEX_DATA_BACKUP_DIR' });
    expect(resolveConfig(root, { backupDir: 'x' }, { SCITEX_DATA_BACKUP_DIR: '/mnt/b' }).backupDir.value).toBe(path.join(root, 'x'));
  });
});
