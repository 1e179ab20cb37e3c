import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyCluster, startCluster, type TestCluster } from '../../src/devtools/pgcluster.js';
import { cli, cliAsync, tempDir } from '../helpers/cli.js';
import { trials } from './report.js';

const PW = 'torture-pw';
let pg: TestCluster;
let root = '';
let shim = '';
let env: Record<string, string>;
const published = () => fs.readdirSync(path.join(root, 'data/db/backups')).filter((n) => !n.startsWith('.'));

beforeAll(async () => {
  pg = await startCluster();
  await pg.createOwnedDatabase('scitex_dev', PW, 'scitex_cloud_dev');
  await pg.sql('CREATE TABLE mine(x int); INSERT INTO mine VALUES (1)', 'scitex_cloud_dev');
  await pg.sql('ALTER TABLE mine OWNER TO scitex_dev', 'scitex_cloud_dev');
  root = tempDir();
  expect(cli(['--root', root, 'init']).code).toBe(0);
  shim = tempDir('scitex-shim-');
  const real = execFileSync('sh', ['-c', 'command -v pg_dump']).toString().trim();
  // Fault-injection seam for what this machine cannot produce (an older local pg_dump): otherwise the real tool.
  fs.writeFileSync(path.join(shim, 'pg_dump'), `#!/bin/sh\nif [ -n "$FAKE_OLD_PG_DUMP" ]; then\n  [ "$1" = "--version" ] && { echo "pg_dump (PostgreSQL) 14.9"; exit 0; }\n  echo "pg_dump: error: aborting because of server version mismatch" >&2; echo "pg_dump: detail: server version: 15.8; pg_dump version: 14.9" >&2; exit 1\nfi\n[ -n "$SHIM_SLEEP" ] && sleep "$SHIM_SLEEP"\nexec ${real} "$@"\n`, { mode: 0o755 });
  const realRestore = execFileSync('sh', ['-c', 'command -v pg_restore']).toString().trim();
  fs.writeFileSync(path.join(shim, 'pg_restore'), `#!/bin/sh\n[ -n "$SHIM_SLEEP" ] && sleep "$SHIM_SLEEP"\nexec ${realRestore} "$@"\n`, { mode: 0o755 });
  env = { PATH: `${shim}:${process.env.PATH}`, SCITEX_CLOUD_DB_HOST_DEV: pg.host, SCITEX_CLOUD_DB_PORT_DEV: String(pg.port), SCITEX_CLOUD_DB_PASSWORD_DEV: PW };
}, 120_000);
afterAll(() => {
  destroyCluster(pg);
  for (const d of [root, shim]) fs.rmSync(d, { recursive: true, force: true });
});

describe('PostgreSQL faults', () => {
  it('server stopped while a backup runs, then back: clear error, nothing published, the next run works', async () => {
    await trials('PostgreSQL restarted during backup db', 2, 'exit 1 naming the unreachable server; no artifact; the next run succeeds', async () => {
      const before = published();
      const run = cliAsync(['--root', root, 'backup', 'db'], { env: { ...env, SHIM_SLEEP: '1' } });
      await new Promise((r) => setTimeout(r, 400));
      pg.stop();
      const r = await run.done;
      pg.start();
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/not reachable|terminat|connection/i);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(published()).toEqual(before);
      expect(cli(['--root', root, 'backup', 'db'], { env }).code).toBe(0);
    });
  });

  it('missing privileges on a table: pg_dump\'s own message, exit 1, nothing published', async () => {
    await pg.sql('CREATE TABLE theirs(x int)', 'scitex_cloud_dev');
    try {
      await trials('missing privileges for pg_dump', 1, "exit 1 with pg_dump's own message; no artifact", () => {
        const before = published();
        const r = cli(['--root', root, 'backup', 'db'], { env });
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/permission denied for table theirs/);
        expect(published()).toEqual(before);
      });
    } finally {
      await pg.sql('DROP TABLE theirs', 'scitex_cloud_dev');
    }
  });

  it('a local pg_dump older than the server: verify names it; backup says what to install', async () => {
    await trials('server newer than the local pg_dump (simulated)', 1, 'verify fails db.postgres; backup exits 1 with an install hint; no artifact', () => {
      const v = cli(['--root', root, '--json', 'verify'], { env: { ...env, FAKE_OLD_PG_DUMP: '1' } });
      const check = JSON.parse(v.stdout).checks.find((c: { name: string }) => c.name === 'db.postgres');
      expect(check.found).toMatch(/server is PostgreSQL 15 but the local pg_dump is 14/);
      expect(v.code).toBe(3);
      const before = published();
      const b = cli(['--root', root, 'backup', 'db'], { env: { ...env, FAKE_OLD_PG_DUMP: '1' } });
      expect(b.code).toBe(1);
      expect(b.stderr).toMatch(/server version mismatch.*Install a PostgreSQL client/);
      expect(published()).toEqual(before);
    });
  });

  it('SIGKILL during restore db: the live database is untouched, and the next restore drops the leftover scratch database', async () => {
    expect(cli(['--root', root, 'backup', 'db'], { env }).code).toBe(0);
    await trials('SIGKILL during restore db (PostgreSQL)', 2, 'live database untouched until the swap; the re-run drops the scratch database and restores', async () => {
      await pg.sql('INSERT INTO mine VALUES (2)', 'scitex_cloud_dev');
      const run = cliAsync(['--root', root, 'restore', 'db', '--yes'], { env: { ...env, SHIM_SLEEP: '2' } });
      await new Promise((r) => setTimeout(r, 1000));
      run.child.kill('SIGKILL');
      await run.done;
      expect((await pg.sql('SELECT count(*)::int AS n FROM mine', 'scitex_cloud_dev')).rows[0].n).toBe(2);
      await new Promise((r) => setTimeout(r, 1500)); // the orphaned pg_restore finishes
      const again = cli(['--root', root, 'restore', 'db', '--yes'], { env });
      expect(again.code, again.stderr).toBe(0);
      expect((await pg.sql('SELECT count(*)::int AS n FROM mine', 'scitex_cloud_dev')).rows[0].n).toBe(1);
      const scratch = (await pg.sql("SELECT datname FROM pg_database WHERE datname LIKE 'scitex_cloud_dev_restore_%'")).rows;
      expect(scratch).toEqual([]);
      for (const r of (await pg.sql("SELECT datname FROM pg_database WHERE datname LIKE 'scitex_cloud_dev_pre_restore_%'")).rows) await pg.sql(`DROP DATABASE "${r.datname}"`);
    });
  });

  it('--deep catches a dump that lists fine but does not restore', async () => {
    expect(cli(['--root', root, 'backup', 'db', '--format', 'plain'], { env }).code).toBe(0);
    const sql = fs.readdirSync(path.join(root, 'data/db/backups')).filter((n) => n.endsWith('.sql')).sort().pop()!;
    const file = path.join(root, 'data/db/backups', sql);
    // Valid-looking, complete ending, correct checksum; but a statement that fails on restore.
    const text = fs.readFileSync(file, 'utf8').replace('CREATE TABLE public.mine', 'CREATE TABLE public.mine_broken (x int);\nSELECT no_such_function();\nCREATE TABLE public.mine');
    fs.writeFileSync(file, text);
    execFileSync('sh', ['-c', `sha256sum ${sql} > ${sql}.sha256`], { cwd: path.dirname(file) });
    const shallow = cli(['--root', root, '--json', 'verify', '--backups'], { env });
    expect(JSON.parse(shallow.stdout).checks.find((c: { name: string }) => c.name === 'backups.readable').status).toBe('pass');
    const deep = cli(['--root', root, '--json', 'verify', '--deep'], { env });
    expect(deep.code).toBe(3);
    const c = JSON.parse(deep.stdout).checks.find((x: { name: string }) => x.name === 'deep.database');
    expect(c.status).toBe('fail');
    expect(c.found).toMatch(/does not restore.*no_such_function/);
    const left = (await pg.sql("SELECT datname FROM pg_database WHERE datname LIKE '%verify%'")).rows;
    expect(left).toEqual([]);
  });
});
