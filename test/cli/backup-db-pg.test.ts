import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock, listBackups } from '../../src/index.js';
import { cli, cliAsync, tempDir } from '../helpers/cli.js';
import { destroyCluster, startCluster, type TestCluster } from '../../src/devtools/pgcluster.js';

const PW = 'Pw-with:colon\\and-secret-9137';
let pg: TestCluster;
let root: string;
let shimDir: string;
let env: Record<string, string>;

async function content(db = 'scitex_cloud_dev'): Promise<string> {
  const r = await pg.sql('SELECT id, title, body FROM paper ORDER BY id', db);
  return JSON.stringify(r.rows);
}

beforeAll(async () => {
  pg = await startCluster();
  await pg.createOwnedDatabase('scitex_dev', PW.replace(/'/g, "''"), 'scitex_cloud_dev');
  // Tables are created by the owning role, as the app's migrations would.
  const owner = new (await import('pg')).default.Client({ host: pg.host, port: pg.port, user: 'scitex_dev', password: PW, database: 'scitex_cloud_dev' });
  await owner.connect();
  await owner.query("CREATE TABLE paper(id serial primary key, title text, body text); CREATE INDEX paper_trgm ON paper USING gin (title gin_trgm_ops); INSERT INTO paper(title, body) SELECT 'Title ' || g, repeat(md5(g::text), 20) FROM generate_series(1, 2000) g;");
  await owner.end();
  root = tempDir();
  expect(cli(['--root', root, 'init']).code).toBe(0);
  // A pg_dump/pg_restore/psql shim that records argv and password-related environment, then runs the real tool.
  shimDir = tempDir('scitex-shim-');
  for (const tool of ['pg_dump', 'pg_restore', 'psql']) {
    const real = execFileSync('bash', ['-c', `command -v ${tool}`]).toString().trim();
    fs.writeFileSync(path.join(shimDir, tool), `#!/bin/sh\necho "${tool} $*" >> ${shimDir}/argv.log\nenv | grep -E '^PGPASS' >> ${shimDir}/env.log\n[ -n "$SHIM_SLEEP" ] && sleep "$SHIM_SLEEP"\nexec ${real} "$@"\n`, { mode: 0o755 });
  }
  env = { PATH: `${shimDir}:${process.env.PATH}`, SCITEX_CLOUD_DB_HOST_DEV: pg.host, SCITEX_CLOUD_DB_PORT_DEV: String(pg.port), SCITEX_CLOUD_DB_PASSWORD_DEV: PW };
}, 120_000);
afterAll(() => {
  destroyCluster(pg);
  for (const d of [root, shimDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

describe('PostgreSQL backup and restore (real server, owning role, password auth)', () => {
  it('backs up in custom format: private, checksummed, readable by pg_restore --list, no password in argv', async () => {
    const r = cli(['--root', root, '--json', 'backup', 'db'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout);
    const a = doc.artifacts[0];
    expect(a.kind).toBe('postgres');
    expect(path.basename(a.path)).toMatch(/^scitex_cloud_dev_\d{8}_\d{6}\.dump$/);
    expect(fs.statSync(a.path).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(a.path)).mode & 0o777).toBe(0o700);
    expect(execFileSync('sha256sum', ['-c', path.basename(a.path) + '.sha256'], { cwd: path.dirname(a.path) }).toString()).toMatch(/: OK/);
    expect(execFileSync('pg_restore', ['--list', a.path]).toString()).toMatch(/TABLE public paper/);
    const argv = fs.readFileSync(path.join(shimDir, 'argv.log'), 'utf8');
    expect(argv).toMatch(/pg_dump -h 127\.0\.0\.1 -p \d+ -U scitex_dev -d scitex_cloud_dev/);
    expect(argv).not.toContain(PW);
    expect(fs.readFileSync(path.join(shimDir, 'env.log'), 'utf8')).not.toMatch(/PGPASSWORD/);
    expect(r.stdout).not.toContain(PW);
  });

  it('restores a custom dump after damage: same content by query, pre-restore copy kept', async () => {
    const before = await content();
    await pg.sql('DELETE FROM paper WHERE id % 3 = 0; UPDATE paper SET title = \'damaged\'', 'scitex_cloud_dev');
    expect(await content()).not.toBe(before);
    const r = cli(['--root', root, 'restore', 'db', '--yes'], { env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(await content()).toBe(before);
    const dbs = (await pg.sql("SELECT datname FROM pg_database WHERE datname LIKE 'scitex_cloud_dev%' ORDER BY 1")).rows.map((x) => x.datname);
    expect(dbs.some((d: string) => /^scitex_cloud_dev_pre_restore_\d{8}_\d{6}$/.test(d))).toBe(true);
    expect(dbs.some((d: string) => /_restore_/.test(d) && !/_pre_restore_/.test(d))).toBe(false);
    // the trigram index came back too
    expect((await pg.sql("SELECT indexname FROM pg_indexes WHERE tablename = 'paper'", 'scitex_cloud_dev')).rows.map((x) => x.indexname)).toContain('paper_trgm');
  });

  it('plain format backs up and restores, terminating other sessions with --yes', async () => {
    const b = cli(['--root', root, '--json', 'backup', 'db', '--format', 'plain'], { env });
    expect(b.code).toBe(0);
    const file = JSON.parse(b.stdout).artifacts[0].path as string;
    expect(file).toMatch(/\.sql$/);
    expect(fs.readFileSync(file, 'utf8')).toMatch(/PostgreSQL database dump complete/);
    const before = await content();
    await pg.sql('TRUNCATE paper', 'scitex_cloud_dev');
    const pgmod = (await import('pg')).default;
    const app = new pgmod.Client({ host: pg.host, port: pg.port, user: 'scitex_dev', password: PW, database: 'scitex_cloud_dev' });
    await app.connect();
    app.on('error', () => {});
    const noYes = cli(['--root', root, 'restore', 'db', '--from', file], { env });
    expect(noYes.code).toBe(2);
    const r = cli(['--root', root, '--json', 'restore', 'db', '--from', file, '--yes'], { env });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).sessionsTerminated).toBeGreaterThanOrEqual(1);
    expect(await content()).toBe(before);
    await app.end().catch(() => {});
  });

  it('refuses a corrupted backup before changing anything', async () => {
    const newest = (await listBackups(path.join(root, 'data/db/backups'))).find((e) => e.name.endsWith('.dump'))!;
    const copy = path.join(root, 'data/db/backups', newest.name.replace('.dump', '_x.dump'));
    const bytes = fs.readFileSync(newest.path);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    fs.writeFileSync(copy, bytes);
    fs.copyFileSync(newest.path + '.sha256', copy + '.sha256');
    const before = await content();
    const r = cli(['--root', root, 'restore', 'db', '--from', copy, '--yes'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not match its recorded SHA-256/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(await content()).toBe(before);
    fs.rmSync(copy);
    fs.rmSync(copy + '.sha256');
  });

  it('refuses a dump into SQLite and a SQLite file into PostgreSQL (exit 2)', () => {
    const dump = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => n.endsWith('.dump'))!;
    const r = cli(['--root', root, 'restore', 'db', '--from', path.join('data/db/backups', dump), '--yes'], { env: { ...env, SCITEX_CLOUD_USE_SQLITE_DEV: '1' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/PostgreSQL dump.*configured database is SQLite/);
  });

  it('wrong password and server down: one-line error, exit 1, nothing published', async () => {
    const count = () => fs.readdirSync(path.join(root, 'data/db/backups')).length;
    const n = count();
    const bad = cli(['--root', root, 'backup', 'db'], { env: { ...env, SCITEX_CLOUD_DB_PASSWORD_DEV: 'wrong' } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/password/);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    const down = cli(['--root', root, 'backup', 'db'], { env: { ...env, SCITEX_CLOUD_DB_PORT_DEV: '1' } });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/not reachable/);
    expect(down.stderr).not.toContain(PW);
    expect(count()).toBe(n);
  });

  it('a role without CREATEDB gets a clear error before anything changes', async () => {
    await pg.sql('ALTER ROLE scitex_dev NOCREATEDB');
    try {
      const r = cli(['--root', root, 'restore', 'db', '--yes'], { env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/lacks CREATEDB.*ALTER ROLE scitex_dev CREATEDB/);
    } finally {
      await pg.sql('ALTER ROLE scitex_dev CREATEDB');
    }
  });

  it('a second run while one holds the lock exits 4 naming the holder', () => {
    const lock = acquireLock(root, 'backup');
    try {
      const r = cli(['--root', root, 'backup', 'db'], { env });
      expect(r.code).toBe(4);
      expect(r.stderr).toMatch(/scitex-data backup \(pid \d+/);
    } finally {
      lock.release();
    }
  });

  it('kill -9 during pg_dump leaves no finished-looking backup and no stale lock', async () => {
    const dir = path.join(root, 'data/db/backups');
    const before = (await listBackups(dir)).length;
    const { child, done } = cliAsync(['--root', root, 'backup', 'db'], { env: { ...env, SHIM_SLEEP: '2' } });
    await new Promise((r) => setTimeout(r, 800));
    child.kill('SIGKILL');
    await done;
    await new Promise((r) => setTimeout(r, 2500)); // the orphaned pg_dump finishes writing its partial file
    expect((await listBackups(dir)).length).toBe(before);
    const again = cli(['--root', root, 'backup', 'db'], { env });
    expect(again.code).toBe(0);
    expect(fs.readdirSync(dir).filter((n) => n.includes('.partial-'))).toEqual([]);
    expect((await listBackups(dir)).length).toBe(before + 1);
  });
});
