import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyCluster, startCluster, type TestCluster } from '../../src/devtools/pgcluster.js';
import { cli, tempDir } from '../helpers/cli.js';

// What the app relies on besides rows: who owns the database and its tables, who may connect, and the
// database's own settings. A restore (as the owning role, or as a superuser) must keep all of it.
const PW = 'owner-pw-5521';
const DB = 'scitex_cloud_dev';
let cluster: TestCluster;
let root = '';
let owner: Record<string, string>;
let superuser: Record<string, string>;
let original: Record<string, unknown>;

/** Everything the test compares: owner, ACL entries, settings per role, connection limit, comment, owners of objects. */
async function props(db = DB): Promise<Record<string, unknown>> {
  const q = async (sql: string, args: unknown[] = [], database = 'postgres') => {
    const c = new pg.Client({ host: cluster.host, port: cluster.port, user: 'postgres', password: cluster.superPassword, database });
    await c.connect();
    try {
      return (await c.query(sql, args)).rows;
    } finally {
      await c.end();
    }
  };
  const d = (await q('SELECT oid, pg_get_userbyid(datdba) AS owner, datconnlimit, shobj_description(oid, \'pg_database\') AS comment FROM pg_database WHERE datname = $1', [db]))[0];
  const acl = await q(
    "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1 ORDER BY 1, 2",
    [db],
  );
  const settings = await q("SELECT coalesce(pg_get_userbyid(NULLIF(setrole, 0)), '(all)') AS role, setconfig FROM pg_db_role_setting WHERE setdatabase = $1 ORDER BY 1", [d.oid]);
  const objects = await q("SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v') ORDER BY 1", [], db);
  const rows = await q('SELECT count(*)::int AS n FROM paper', [], db);
  return { owner: d.owner, connlimit: d.datconnlimit, comment: d.comment, acl, settings, objects, rows: rows[0].n };
}

/** Whether `user` may connect to the database. */
async function canConnect(user: string, password: string): Promise<boolean> {
  const c = new pg.Client({ host: cluster.host, port: cluster.port, user, password, database: DB });
  try {
    await c.connect();
    await c.end();
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.createOwnedDatabase('scitex_dev', PW, DB);
  await cluster.sql("CREATE ROLE app_reader LOGIN PASSWORD 'reader-pw'; CREATE ROLE outsider LOGIN PASSWORD 'outsider-pw'");
  await cluster.sql(`REVOKE CONNECT, TEMPORARY ON DATABASE ${DB} FROM PUBLIC; GRANT CONNECT ON DATABASE ${DB} TO app_reader`);
  await cluster.sql(`ALTER DATABASE ${DB} SET statement_timeout = '7s'; ALTER DATABASE ${DB} SET search_path = "$user", public, "odd ""name"""; ALTER DATABASE ${DB} CONNECTION LIMIT 40`);
  await cluster.sql(`ALTER ROLE scitex_dev IN DATABASE ${DB} SET work_mem = '8MB'; ALTER ROLE app_reader IN DATABASE ${DB} SET default_transaction_read_only = on`);
  await cluster.sql(`COMMENT ON DATABASE ${DB} IS 'the app''s database'`);
  const app = new pg.Client({ host: cluster.host, port: cluster.port, user: 'scitex_dev', password: PW, database: DB });
  await app.connect();
  await app.query("CREATE TABLE paper(id serial PRIMARY KEY, title text); INSERT INTO paper(title) SELECT 'p' || g FROM generate_series(1, 50) g; CREATE VIEW titles AS SELECT title FROM paper; GRANT SELECT ON paper TO app_reader");
  await app.end();
  root = tempDir();
  expect(cli(['--root', root, 'init']).code).toBe(0);
  const base = { SCITEX_CLOUD_DB_HOST_DEV: cluster.host, SCITEX_CLOUD_DB_PORT_DEV: String(cluster.port) };
  owner = { ...base, SCITEX_CLOUD_DB_PASSWORD_DEV: PW };
  superuser = { ...base, SCITEX_CLOUD_DB_USER_DEV: 'postgres', SCITEX_CLOUD_DB_PASSWORD_DEV: cluster.superPassword };
  const b = cli(['--root', root, 'backup', 'db'], { env: owner });
  expect(b.code, b.stderr).toBe(0);
  original = await props();
  expect(original.owner).toBe('scitex_dev');
}, 120_000);
afterAll(() => {
  destroyCluster(cluster);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

const dbs = async (like: string) => (await cluster.sql(`SELECT datname FROM pg_database WHERE datname LIKE '${like}' ORDER BY 1`)).rows.map((r) => r.datname as string);

describe('restore db (PostgreSQL) keeps what the app relies on', () => {
  it('restored as a superuser: the database and its objects stay owned by the owner; grants, settings, limit and comment kept', async () => {
    await cluster.sql('DELETE FROM paper WHERE id > 10', DB);
    const r = cli(['--root', root, '--json', 'restore', 'db', '--yes'], { env: superuser });
    expect(r.code, r.stderr).toBe(0);
    expect(await props()).toEqual(original);
    expect(await canConnect('app_reader', 'reader-pw')).toBe(true);
    expect(await canConnect('outsider', 'outsider-pw')).toBe(false);
    expect(await dbs(`${DB}_pre_restore_%`)).toEqual([JSON.parse(r.stdout).safetyCopy]);
  });

  it('as the owning role, a setting of another role it may not carry over stops the restore before anything changes', async () => {
    await cluster.sql('DELETE FROM paper WHERE id > 10', DB);
    const before = await props();
    const pre = await dbs(`${DB}_%`);
    const r = cli(['--root', root, 'restore', 'db', '--yes'], { env: owner });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot give the restored database.*app_reader.*superuser/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(await props()).toEqual(before);
    expect(await dbs(`${DB}_%`)).toEqual(pre);
  });

  it('restored as the owning role: owner, grants, settings, connection limit, comment and object owners are kept', async () => {
    await cluster.sql(`ALTER ROLE app_reader IN DATABASE ${DB} RESET ALL`);
    const want = { ...original, settings: (original.settings as { role: string }[]).filter((s) => s.role !== 'app_reader') };
    await cluster.sql('DELETE FROM paper WHERE id > 10', DB);
    const r = cli(['--root', root, '--json', 'restore', 'db', '--yes'], { env: owner });
    expect(r.code, r.stderr).toBe(0);
    expect(await props()).toEqual(want);
    expect(await canConnect('app_reader', 'reader-pw')).toBe(true);
    expect(await canConnect('outsider', 'outsider-pw')).toBe(false);
  });

  it('a plain-format dump restored as a superuser: objects owned by the owner, not postgres', async () => {
    const b = cli(['--root', root, '--json', 'backup', 'db', '--format', 'plain'], { env: owner });
    expect(b.code, b.stderr).toBe(0);
    const want = await props();
    await cluster.sql('DELETE FROM paper WHERE id > 10', DB);
    const r = cli(['--root', root, 'restore', 'db', '--yes', '--from', JSON.parse(b.stdout).artifacts[0].path], { env: superuser });
    expect(r.code, r.stderr).toBe(0);
    expect(await props()).toEqual(want);
  });

  it('sealed (--encrypt-local): only a .dump.age is published; restore and verify --deep decrypt it with --identity', async () => {
    const keyDir = tempDir('scitex-key-');
    const key = path.join(keyDir, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const pub = execFileSync('age-keygen', ['-y', key]).toString().trim();
    const b = cli(['--root', root, '--json', 'backup', 'db', '--encrypt-local', '--encrypt-to', pub], { env: owner });
    expect(b.code, b.stderr).toBe(0);
    const file = JSON.parse(b.stdout).artifacts[0].path as string;
    expect(file).toMatch(/\.dump\.age$/);
    expect(fs.readFileSync(file).subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    // Without scitex-data: age -d, then pg_restore reads it.
    const plain = path.join(keyDir, 'x.dump');
    execFileSync('age', ['-d', '-i', key, '-o', plain, file]);
    expect(execFileSync('pg_restore', ['-l', plain]).toString()).toMatch(/TABLE DATA public paper/);
    const want = await props();
    await cluster.sql('DELETE FROM paper WHERE id > 10', DB);
    expect(cli(['--root', root, 'restore', 'db', '--yes', '--from', file], { env: superuser }).code).toBe(2);
    const r = cli(['--root', root, 'restore', 'db', '--yes', '--from', file, '--identity', key], { env: superuser });
    expect(r.code, r.stderr).toBe(0);
    expect(await props()).toEqual(want);
    const v = cli(['--root', root, 'verify', '--deep', '--identity', key], { env: owner });
    expect(v.stdout).toMatch(/PASS\s+deep\.database\s+.*\.dump restores/);
    expect(fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith('.unseal'))).toEqual([]);
    fs.rmSync(keyDir, { recursive: true, force: true });
  });
});
