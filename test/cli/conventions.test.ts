import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('CLI conventions', () => {
  it('--version and --help exit 0; unknown commands and bad options exit 2', () => {
    expect(cli(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(cli(['--help']).code).toBe(0);
    expect(cli(['init', '--help']).code).toBe(0);
    expect(cli(['nope']).code).toBe(2);
    expect(cli(['init', '--bogus']).code).toBe(2);
    expect(cli(['--env', 'staging', 'config']).code).toBe(2);
  });
  it('--json prints exactly one JSON document on stdout, also on error', () => {
    root = tempDir();
    const ok = cli(['--root', root, '--json', 'init']);
    expect(JSON.parse(ok.stdout).ok).toBe(true);
    const bad = cli(['--root', path.join(root, 'missing'), '--json', 'init']);
    expect(bad.code).toBe(2);
    const doc = JSON.parse(bad.stdout);
    expect(doc.ok).toBe(false);
    expect(doc.error.message).toMatch(/does not exist/);
    expect(bad.stderr).toBe('');
  });
  it('errors are one line without a stack trace unless --debug', () => {
    root = tempDir();
    const r = cli(['--root', path.join(root, 'missing'), 'init']);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const d = cli(['--root', path.join(root, 'missing'), '--debug', 'init']);
    expect(d.stderr).toMatch(/\n\s+at /);
  });
  it('--quiet prints nothing on success; no colour escapes when stdout is not a terminal', () => {
    root = tempDir();
    expect(cli(['--root', root, '-q', 'init'])).toMatchObject({ code: 0, stdout: '' });
    const r = cli(['--root', root, 'init']);
    expect(r.stdout).not.toMatch(/\x1b\[/);
  });
  it('global options work after the command name too, and --env follows SCITEX_CLOUD_ENV', () => {
    root = tempDir();
    const a = JSON.parse(cli(['config', '--json', '--root', root], { env: { SCITEX_CLOUD_ENV: 'production' } }).stdout);
    expect(a.config.env).toEqual({ value: 'prod', source: 'environment', variable: 'SCITEX_CLOUD_ENV' });
    expect(a.config.database.name.value).toBe('scitex_cloud_prod');
  });
  it('config masks the password in human, --json and --debug output and warns on SQLite=0', () => {
    root = tempDir();
    const env = { SCITEX_CLOUD_DB_PASSWORD_DEV: 's3cret-pw-123' };
    for (const args of [['config'], ['--json', 'config'], ['--debug', 'config']]) {
      const r = cli(['--root', root, ...args], { env });
      expect(r.code).toBe(0);
      expect(r.stdout + r.stderr).not.toContain('s3cret-pw-123');
    }
    const w = cli(['--root', root, 'config'], { env: { SCITEX_CLOUD_USE_SQLITE_DEV: 'false' } });
    expect(w.stdout).toMatch(/SQLite/);
    expect(w.stderr).toMatch(/warning: .*looks like "off"/);
  });
});
