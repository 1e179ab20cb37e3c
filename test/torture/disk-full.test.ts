import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyCluster, startCluster, type TestCluster } from '../../src/devtools/pgcluster.js';
import { cli, tempDir } from '../helpers/cli.js';
import { trials } from './report.js';

// The disk fills at every instant of a backup: while archive data streams, on the checksum or origin
// file, on MANIFEST.json, on SHA256SUMS, at the rename. A small tmpfs, filled to a chosen level page by
// page around the exact size the backup needs, makes each of those instants the one that fails.
const PAGE = 4096;
let mnt = '';
let root = '';
let canMount = false;
const SQLITE = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };

beforeAll(() => {
  mnt = tempDir('scitex-full-');
  canMount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]).status === 0;
  root = tempDir();
  expect(cli(['--root', root, 'init']).code).toBe(0);
  for (let i = 0; i < 3; i++) {
    const home = path.join(root, 'data/users', `user${i}`);
    fs.mkdirSync(path.join(home, 'notes'), { recursive: true });
    // Noise and text: gzip and zstd both have real work to do (the files stay the same for every run).
    fs.writeFileSync(path.join(home, 'data.bin'), crypto.randomBytes(300_000));
    fs.writeFileSync(path.join(home, 'notes', 'log.txt'), `user ${i} line\n`.repeat(20_000));
  }
  execFileSync('sqlite3', [path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), 'CREATE TABLE t(b BLOB); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 100) INSERT INTO t SELECT randomblob(3000) FROM c;']);
});
afterAll(() => {
  if (canMount) spawnSync('umount', [mnt]);
  fs.rmSync(mnt, { recursive: true, force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

const FILLER = '.filler';
const clear = () => {
  for (const n of fs.readdirSync(mnt)) fs.rmSync(path.join(mnt, n), { recursive: true, force: true });
};
const freePages = () => {
  const s = fs.statfsSync(mnt);
  return Math.floor((Number(s.bavail) * Number(s.bsize)) / PAGE);
};
/** Leaves exactly `pages` pages free on the volume. */
const leaveFree = (pages: number) => {
  clear();
  expect(pages).toBeGreaterThanOrEqual(0);
  const fill = Math.max(0, freePages() - pages);
  fs.writeFileSync(path.join(mnt, FILLER), Buffer.alloc(fill * PAGE));
  expect(freePages()).toBe(Math.min(pages, freePages() + fill));
};
/** Pages a successful run needs at its peak (measured: run on an empty volume, read what stayed). */
const pagesNeeded = (args: string[], env?: Record<string, string>) => {
  clear();
  const before = freePages();
  const r = cli(['--root', root, ...args, '--backup-dir', mnt], { env });
  expect(r.code, r.stderr).toBe(0);
  const used = before - freePages();
  clear();
  return used;
};

/** Our own bookkeeping (the backup directory's lock, the run record): not a partial backup. A partial of one of them starts with '..'. */
const isBookkeeping = (n: string) => n.startsWith('.scitex-data.lock') || n === '.scitex-data-state.json';

/** Every backup left on the volume is complete and verifiable; no partial or temporary file is left. */
function checkLeft(where: string): string[] {
  const left = fs.readdirSync(mnt).filter((n) => n !== FILLER && !isBookkeeping(n));
  expect(left.filter((n) => n.startsWith('.')), `${where}: no partial file`).toEqual([]);
  for (const n of left.filter((x) => x.startsWith('users_'))) execFileSync('sha256sum', ['-c', '--strict', 'SHA256SUMS'], { cwd: path.join(mnt, n), stdio: 'pipe' });
  for (const n of left.filter((x) => x.endsWith('.sha256'))) execFileSync('sha256sum', ['-c', '--strict', n], { cwd: mnt, stdio: 'pipe' });
  for (const n of left.filter((x) => !x.startsWith('users_') && !x.includes('.sha256') && !x.endsWith('.origin.json'))) expect(left, where).toContain(`${n}.sha256`);
  return left;
}

/**
 * The outcome of one run on a volume with `free` pages: a complete backup, or exit 1 with a "disk is
 * full" line naming the directory and the next step, and (for one target) that line only and nothing left.
 */
function checkRun(args: string[], free: number, env?: Record<string, string>): 'ok' | 'full' {
  leaveFree(free);
  const r = cli(['--root', root, ...args, '--backup-dir', mnt], { env });
  const where = `${args.join(' ')} with ${free} pages free`;
  const left = checkLeft(where);
  if (r.code === 0) {
    expect(left.length, `${where}: ${r.stdout}`).toBeGreaterThan(0);
    return 'ok';
  }
  expect(r.code, `${where}: ${r.stderr}`).toBe(1);
  const lines = r.stderr.trim().split('\n');
  const last = lines[lines.length - 1]!;
  expect(last, where).toMatch(/disk is full/i);
  expect(last, where).toContain(mnt);
  expect(last, where).toMatch(/free space|another volume/i);
  if (!args.includes('all')) {
    expect(lines, where).toHaveLength(1);
    expect(left, `${where}: nothing published`).toEqual([]);
  }
  return 'full';
}

describe('a full disk at every instant of a backup', () => {
  for (const compression of ['none', 'gzip', 'zstd']) {
    it(`backup users --compression ${compression}: exit 1, one line naming the directory, nothing left`, async (ctx) => {
      if (!canMount) ctx.skip();
      const args = ['backup', 'users', '--compression', compression];
      const need = pagesNeeded(args);
      // Coarse levels (the archives themselves fail) and every page of the last stretch (checksums, manifest, rename).
      const levels = [0, 1, Math.floor(need / 4), Math.floor(need / 2), need - 40, ...Array.from({ length: 8 }, (_, k) => need - 7 + k)];
      await trials(`full disk at every instant of backup users (${compression})`, 1, 'exit 1 with one "disk is full" line naming the directory; nothing published, no partial file', () => {
        const outcomes = [...new Set(levels.map((l) => Math.max(0, l)))].map((free) => checkRun(args, free));
        expect(outcomes.filter((o) => o === 'full').length).toBeGreaterThanOrEqual(levels.length - 2);
      });
    });
  }

  it('backup db (SQLite) and backup all: exit 1, one line, nothing left', async (ctx) => {
    if (!canMount) ctx.skip();
    await trials('full disk at every instant of backup db / all', 1, 'exit 1 with one "disk is full" line naming the directory; nothing published, no partial file', () => {
      for (const args of [['backup', 'db'], ['backup', 'all', '--compression', 'none']]) {
        const need = pagesNeeded(args, SQLITE);
        const levels = [0, Math.floor(need / 2), ...Array.from({ length: 6 }, (_, k) => need - 5 + k)];
        const outcomes = [...new Set(levels.map((l) => Math.max(0, l)))].map((free) => checkRun(args, free, SQLITE));
        expect(outcomes.filter((o) => o === 'full').length).toBeGreaterThanOrEqual(levels.length - 2);
      }
    });
  });
});

describe('a full disk under pg_dump', () => {
  const PW = 'full-pw';
  let pg: TestCluster | undefined;
  beforeAll(async () => {
    pg = await startCluster();
    await pg.createOwnedDatabase('scitex_dev', PW, 'scitex_cloud_dev');
    await pg.sql("CREATE TABLE t AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS v FROM generate_series(1, 20000) g", 'scitex_cloud_dev');
    await pg.sql('ALTER TABLE t OWNER TO scitex_dev', 'scitex_cloud_dev');
  }, 120_000);
  afterAll(() => destroyCluster(pg));

  it('backup db (PostgreSQL, custom and plain): exit 1, one line naming the directory, nothing left', async (ctx) => {
    if (!canMount) ctx.skip();
    const env = { SCITEX_CLOUD_DB_HOST_DEV: pg!.host, SCITEX_CLOUD_DB_PORT_DEV: String(pg!.port), SCITEX_CLOUD_DB_PASSWORD_DEV: PW };
    await trials('full disk at every instant of backup db (PostgreSQL)', 1, 'exit 1 with one "disk is full" line naming the directory; nothing published, no partial file', () => {
      for (const format of ['custom', 'plain']) {
        const args = ['backup', 'db', '--format', format];
        const need = pagesNeeded(args, env);
        const levels = [0, Math.floor(need / 2), ...Array.from({ length: 5 }, (_, k) => need - 4 + k)];
        const outcomes = [...new Set(levels.map((l) => Math.max(0, l)))].map((free) => checkRun(args, free, env));
        expect(outcomes.filter((o) => o === 'full').length).toBeGreaterThanOrEqual(levels.length - 2);
      }
    });
  }, 120_000);
});
