import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyCluster, startCluster, type TestCluster } from '../../src/devtools/pgcluster.js';
import { BIN, cleanEnv, cli, tempDir } from '../helpers/cli.js';

interface Doc {
  ok: boolean;
  exitCode: number;
  checks: { name: string; status: string; found: string; hint?: string }[];
  tools: Record<string, string | null>;
}

let root = '';
let shims = '';
const doctor = (env: Record<string, string | undefined>, ...extra: string[]) => {
  const r = cli(['--root', root, '--json', ...extra, 'doctor'], { env: { PATH: `${shims}:${process.env.PATH}`, ...env } });
  const doc = JSON.parse(r.stdout) as Doc;
  return { code: r.code, doc, check: (name: string) => doc.checks.find((c) => c.name === name)! };
};
/** A `crontab` on PATH that prints `text` for `crontab -l` (the machine's own crontab is left alone). */
const fakeCrontab = (text: string | null) => {
  fs.writeFileSync(path.join(shims, 'crontab'), text === null ? '#!/bin/sh\necho "no crontab for $(id -un)" >&2\nexit 1\n' : `#!/bin/sh\ncat <<'EOF'\n${text}\nEOF\n`, { mode: 0o755 });
};

beforeAll(() => {
  root = tempDir('scitex-doctor-');
  shims = path.join(root, 'shims');
  fs.mkdirSync(shims);
  expect(cli(['--root', root, 'init']).code).toBe(0);
  const db = new Database(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'));
  db.exec('CREATE TABLE t(x)');
  db.close();
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('doctor (SQLite)', () => {
  const sqlite = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };

  it('reports the tools with their versions and passes on a sound machine with a cron entry that names its path', () => {
    fakeCrontab(`30 2 * * * cd ${root} && /usr/local/bin/scitex-data --quiet backup`);
    const r = doctor(sqlite);
    expect(r.doc.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.check('tools.tar').found).toMatch(/GNU tar\) \d/);
    expect(r.doc.tools.tar).toMatch(/GNU tar/);
    expect(r.check('tools.sqlite').found).toMatch(/SQLite 3\.\d+/);
    expect(r.check('tools.postgres-client').found).toMatch(/not needed/);
    expect(r.check('tools.age')).toMatchObject({ status: 'pass', found: expect.stringMatching(/^age v?\d/) });
    expect(r.check('sqlite.writable').status).toBe('pass');
    expect(r.check('cron')).toMatchObject({ status: 'pass' });
    expect(r.check('cron').found).toContain('/usr/local/bin/scitex-data --quiet backup');
  });

  it('fails on a cron line that needs a PATH it does not set, and says how to fix it', () => {
    fakeCrontab(`30 2 * * * cd ${root} && scitex-data --quiet backup`);
    const r = doctor(sqlite);
    expect(r.code).toBe(3);
    expect(r.check('cron')).toMatchObject({ status: 'fail' });
    expect(r.check('cron').hint).toMatch(/not found.*127/);
    fakeCrontab(`PATH=/usr/local/bin:/usr/bin:/bin\n30 2 * * * cd ${root} && scitex-data --quiet backup`);
    expect(doctor(sqlite).check('cron').status).toBe('pass');
    fakeCrontab(null);
    expect(doctor(sqlite).check('cron').status).toBe('warn');
  });

  it('fails when the next backup cannot fit: free space against the last backup', () => {
    fakeCrontab(null);
    const big = path.join(root, 'data/db/backups/scitex_cloud_dev_20260101_000000.db');
    // A sparse file: as big as a real backup to the catalog, no space on the disk.
    const fd = fs.openSync(big, 'w', 0o600);
    const st = fs.statfsSync(path.dirname(big));
    fs.ftruncateSync(fd, 2 * st.bavail * st.bsize);
    fs.closeSync(fd);
    try {
      const r = doctor(sqlite);
      expect(r.code).toBe(3);
      expect(r.check('space.backups')).toMatchObject({ status: 'fail' });
      expect(r.check('space.backups').found).toMatch(/free in .*; the last backup took [\d.]+ [GT]iB$/);
    } finally {
      fs.rmSync(big);
    }
  });

  it('fails when data/db/sqlite cannot be written by the user running it (a restore stages there)', () => {
    fakeCrontab(null);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, '--root', root, '--json', 'doctor'], { encoding: 'utf8', env: cleanEnv({ ...sqlite, PATH: `${shims}:${process.env.PATH}` }) });
    const doc = JSON.parse(r.stdout) as Doc;
    expect(r.status).toBe(3);
    expect(doc.checks.find((c) => c.name === 'sqlite.writable')).toMatchObject({ status: 'fail' });
  });

  it('prints the things to fix under --quiet, and nothing when all is well', () => {
    fakeCrontab(`30 2 * * * cd ${root} && scitex-data backup`);
    const bad = cli(['--root', root, '--quiet', 'doctor'], { env: { ...sqlite, PATH: `${shims}:${process.env.PATH}` } });
    expect(bad.code).toBe(3);
    expect(bad.stdout).toMatch(/^FIX\s+cron\s+/m);
    expect(bad.stdout).not.toMatch(/^ok/m);
    fakeCrontab(`30 2 * * * cd ${root} && /usr/bin/scitex-data backup`);
    expect(cli(['--root', root, '--quiet', 'doctor'], { env: { ...sqlite, PATH: `${shims}:${process.env.PATH}` } })).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});

describe('doctor (PostgreSQL)', () => {
  let cluster: TestCluster;
  let env: Record<string, string>;
  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.createOwnedDatabase('scitex_dev', 'owner-pw', 'scitex_cloud_dev');
    await cluster.sql("CREATE ROLE outsider LOGIN PASSWORD 'outsider-pw'");
    env = { SCITEX_CLOUD_DB_HOST_DEV: cluster.host, SCITEX_CLOUD_DB_PORT_DEV: String(cluster.port), SCITEX_CLOUD_DB_PASSWORD_DEV: 'owner-pw' };
    fakeCrontab(`30 2 * * * cd ${root} && /usr/bin/scitex-data backup`);
  }, 120_000);
  afterAll(() => destroyCluster(cluster));

  it('the owner with CREATEDB passes: server and client versions, privileges', () => {
    const r = doctor(env);
    expect(r.doc.checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(r.check('postgres.versions').found).toMatch(/server \d+; client tools \d+\/\d+\/\d+/);
    expect(r.check('postgres.createdb').status).toBe('pass');
    expect(r.check('postgres.owner').found).toMatch(/scitex_cloud_dev is owned by scitex_dev/);
  });

  it('a role without CREATEDB that does not own the database: both fail, with the SQL that fixes them', () => {
    const r = doctor({ ...env, SCITEX_CLOUD_DB_USER_DEV: 'outsider', SCITEX_CLOUD_DB_PASSWORD_DEV: 'outsider-pw' });
    expect(r.code).toBe(3);
    expect(r.check('postgres.createdb')).toMatchObject({ status: 'fail', hint: expect.stringContaining('ALTER ROLE outsider CREATEDB') });
    expect(r.check('postgres.owner')).toMatchObject({ status: 'fail', hint: expect.stringContaining('ALTER DATABASE scitex_cloud_dev OWNER TO outsider') });
  });

  it('a pg_dump older than the server fails (it would refuse to dump it)', () => {
    // Only one PostgreSQL is installed here: an older client is a shim reporting an old version.
    fs.writeFileSync(path.join(shims, 'pg_dump'), '#!/bin/sh\necho "pg_dump (PostgreSQL) 9.6.24"\n', { mode: 0o755 });
    try {
      const r = doctor(env);
      expect(r.code).toBe(3);
      expect(r.check('postgres.versions')).toMatchObject({ status: 'fail' });
      expect(r.check('postgres.versions').found).toMatch(/pg_dump is 9/);
    } finally {
      fs.rmSync(path.join(shims, 'pg_dump'));
    }
  });

  it('an unreachable server is something to fix', () => {
    const r = doctor({ ...env, SCITEX_CLOUD_DB_PORT_DEV: '1' });
    expect(r.code).toBe(3);
    expect(r.check('postgres.server').status).toBe('fail');
  });
});
