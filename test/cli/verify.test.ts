import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { appTreeWithAlice } from '../helpers/apptree.js';

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };

function fresh(): void {
  root = appTreeWithAlice();
}
const verify = (...args: string[]) => {
  const r = cli(['--root', root, '--json', 'verify', ...args], { env });
  return { code: r.code, doc: JSON.parse(r.stdout) as { checks: { name: string; status: string; found: string; hint?: string }[]; repairs: string[] } };
};
const check = (doc: { checks: { name: string; status: string; found: string; hint?: string }[] }, name: string) => doc.checks.find((c) => c.name === name)!;

describe('verify: layout', () => {
  it('passes on a freshly initialised tree', () => {
    fresh();
    const r = verify();
    expect(r.doc.checks.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(r.code).toBe(0);
  });

  it.each([
    ['a database file left in data/', () => fs.writeFileSync(path.join(root, 'data/scitex_cloud_prod.db'), ''), 'layout.old-entries', /data\/scitex_cloud_prod\.db/],
    ['a settings file with an old path', () => {
      fs.mkdirSync(path.join(root, 'config/settings'), { recursive: true });
      fs.writeFileSync(path.join(root, 'config/settings/settings_prod.py'), 'DATABASES = {"default": {"NAME": BASE_DIR / "data" / "scitex_cloud_prod.db"}}\n');
    }, 'settings.sqlite-paths', /settings_prod\.py:1/],
    ['a .gitignore with the data/**/ rule after the block', () => fs.appendFileSync(path.join(root, '.gitignore'), 'data/**/\n'), 'gitignore.rules', /data\/\*\*\//],
    ['a world-readable backup', () => fs.writeFileSync(path.join(root, 'data/db/backups/x_20250101_000000.dump'), 'PGDMP', { mode: 0o644 }), 'permissions.backup-files', /x_20250101_000000\.dump/],
    ['a backup directory open to others', () => fs.chmodSync(path.join(root, 'data/db/backups'), 0o755), 'permissions.backup-directory', /data\/db\/backups/],
    ['a workspace_info.json naming someone else', () => fs.writeFileSync(path.join(root, 'data/users/alice/workspace_info.json'), JSON.stringify({ username: 'mallory' })), 'users.workspace-info', /mallory/],
    ['a damaged SQLite database', () => fs.writeFileSync(path.join(root, 'data/db/sqlite/scitex_cloud_prod.db'), 'SQLite format 3\0' + 'garbage'.repeat(200)), 'db.sqlite', /scitex_cloud_prod\.db/],
  ])('fails on %s, naming the check and a hint', (_n, damage, name, found) => {
    fresh();
    damage();
    const r = verify();
    expect(r.code).toBe(3);
    const c = check(r.doc, name);
    expect(c.status).toBe('fail');
    expect(c.found).toMatch(found);
    expect(c.hint).toBeTruthy();
  });

  it('--fix repairs what is safe (dirs, .gitkeep, .gitignore, modes) and --dry-run only lists it', () => {
    fresh();
    fs.rmSync(path.join(root, 'data/db/migrations_archive'), { recursive: true });
    fs.rmSync(path.join(root, 'data/users/.gitkeep'));
    fs.appendFileSync(path.join(root, '.gitignore'), 'data/**/\n');
    fs.chmodSync(path.join(root, 'data/db/backups'), 0o755);
    fs.writeFileSync(path.join(root, 'data/db/backups/x_20250101_000000.dump'), 'PGDMP', { mode: 0o644 });
    const dry = verify('--fix', '--dry-run');
    expect(dry.code).toBe(3);
    expect(dry.doc.repairs.length).toBeGreaterThanOrEqual(5);
    expect(fs.existsSync(path.join(root, 'data/db/migrations_archive'))).toBe(false);
    const fixed = verify('--fix');
    expect(fixed.doc.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(fixed.code).toBe(0);
    expect(fs.statSync(path.join(root, 'data/db/backups/x_20250101_000000.dump')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(root, 'data/db/backups/x_20250101_000000.dump'), 'utf8')).toBe('PGDMP');
  });

  it('warnings fail only with --strict; unknown entries are named', () => {
    fresh();
    fs.mkdirSync(path.join(root, 'data/mystery'));
    const r = verify();
    expect(check(r.doc, 'layout.unknown-entries')).toMatchObject({ status: 'warn' });
    expect(check(r.doc, 'layout.unknown-entries').found).toMatch(/data\/mystery/);
    expect(r.code).toBe(0);
    expect(verify('--strict').code).toBe(3);
  });
});

describe('verify --backups', () => {
  it('passes after a backup, then fails on a flipped byte, a truncated dump and an old backup; writes metrics', () => {
    fresh();
    expect(cli(['--root', root, 'backup'], { env }).code).toBe(0);
    const ok = verify('--backups', '--deep');
    expect(ok.doc.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(ok.code).toBe(0);
    const metrics = path.join(root, 'scitex.prom');
    expect(cli(['--root', root, '-q', 'verify', '--backups', '--metrics', metrics], { env }).code).toBe(0);
    const prom = fs.readFileSync(metrics, 'utf8');
    expect(prom).toMatch(/^scitex_data_verify_failed_checks 0$/m);
    expect(prom).toMatch(/^scitex_data_backup_newest_age_seconds\{kind="users"\} \d+$/m);
    // An old backup
    expect(verify('--backups', '--max-age', '0').doc.checks.find((c) => c.name === 'backups.freshness.database')!.status).toBe('fail');
    // A flipped byte in a user archive
    const set = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => n.startsWith('users_'))!;
    const arch = path.join(root, 'data/db/backups', set, 'alice.tar.gz');
    const b = fs.readFileSync(arch);
    b[b.length >> 1] ^= 1;
    fs.writeFileSync(arch, b);
    const flipped = verify('--backups');
    expect(flipped.code).toBe(3);
    expect(check(flipped.doc, 'backups.checksums').found).toMatch(/alice\.tar\.gz does not match/);
    // A truncated plain dump (with a checksum that matches the truncated bytes, as if truncated before publishing)
    const sql = path.join(root, 'data/db/backups/scitex_cloud_dev_20250101_000000.sql');
    fs.writeFileSync(sql, '--\n-- PostgreSQL database dump\n--\nCREATE TABLE x(a int);\nCOPY x (a) FROM stdin;\n1\n', { mode: 0o600 });
    const t = verify('--backups');
    expect(check(t.doc, 'backups.readable').found).toMatch(/scitex_cloud_dev_20250101_000000\.sql: the plain dump has no "dump complete" ending/);
  });
});
