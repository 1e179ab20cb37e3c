import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyCluster, startCluster, type TestCluster } from '../../src/devtools/pgcluster.js';
import { cli, tempDir } from '../helpers/cli.js';

// PostgreSQL pre-restore databases are leftovers too: status and verify list them, clean drops the old ones.
const PW = 'owner-pw-7731';
const DB = 'scitex_cloud_dev';
let cluster: TestCluster;
let root = '';
let env: Record<string, string>;
const ts = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
const dbs = async (like: string) => (await cluster.sql(`SELECT datname FROM pg_database WHERE datname LIKE '${like}' ORDER BY 1`)).rows.map((r) => r.datname as string);

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.createOwnedDatabase('scitex_dev', PW, DB);
  await cluster.sql('CREATE TABLE paper(id serial PRIMARY KEY, title text); INSERT INTO paper(title) VALUES (\'a\')', DB);
  await cluster.sql(`ALTER TABLE paper OWNER TO scitex_dev`, DB);
  root = tempDir();
  expect(cli(['--root', root, 'init']).code).toBe(0);
  env = { SCITEX_CLOUD_DB_HOST_DEV: cluster.host, SCITEX_CLOUD_DB_PORT_DEV: String(cluster.port), SCITEX_CLOUD_DB_PASSWORD_DEV: PW };
  const b = cli(['--root', root, 'backup', 'db'], { env });
  expect(b.code, b.stderr).toBe(0);
}, 120_000);
afterAll(() => {
  destroyCluster(cluster);
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('clean (PostgreSQL)', () => {
  it('lists pre-restore databases with their size, keeps the recent one and drops the old one', async () => {
    const r = cli(['--root', root, '--json', 'restore', 'db', '--yes'], { env });
    expect(r.code, r.stderr).toBe(0);
    const recent = JSON.parse(r.stdout).safetyCopy as string;
    const old = `${DB}_pre_restore_${ts(new Date(Date.now() - 40 * 86_400_000))}`;
    await cluster.sql(`CREATE DATABASE ${old} OWNER scitex_dev`);
    // Not ours: another database's copy is never touched.
    await cluster.sql(`CREATE DATABASE other_pre_restore_20200101_000000 OWNER scitex_dev`);
    await cluster.sql(`CREATE DATABASE scitex_pre_restore_20200101_000000 OWNER scitex_dev`);

    const st = JSON.parse(cli(['--root', root, '--json', 'status'], { env }).stdout);
    const pgItems = st.leftovers.items.filter((l: { kind: string }) => l.kind === 'postgres');
    expect(pgItems.map((l: { name: string }) => l.name).sort()).toEqual([old, recent].sort());
    expect(pgItems.every((l: { size: number }) => l.size > 0)).toBe(true);
    const v = JSON.parse(cli(['--root', root, '--json', 'verify'], { env }).stdout);
    expect(v.checks.find((c: { name: string }) => c.name === 'leftovers').found).toContain(old);

    const dry = JSON.parse(cli(['--root', root, '--json', 'clean', '--older-than', '30d', '--dry-run'], { env }).stdout);
    expect(dry.wouldRemove.map((l: { name: string }) => l.name)).toEqual([old]);
    expect(await dbs(`%_pre_restore_%`)).toHaveLength(4);
    const real = cli(['--root', root, '--json', 'clean', '--older-than', '30d', '--yes'], { env });
    expect(real.code, real.stderr).toBe(0);
    expect(await dbs(`%_pre_restore_%`)).toEqual([recent, 'other_pre_restore_20200101_000000', 'scitex_pre_restore_20200101_000000'].sort());
  });
});
