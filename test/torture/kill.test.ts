import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/index.js';
import { cli, cliAsync, tempDir } from '../helpers/cli.js';
import { makeUser, snapshotTree } from '../helpers/tree.js';
import { TRIALS, trials } from './report.js';

const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../helpers/sqlite-writer.cjs');
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };
let template = '';
beforeAll(() => {
  template = tempDir('scitex-torture-');
  expect(cli(['--root', template, 'init']).code).toBe(0);
  for (let i = 0; i < 8; i++) {
    const home = makeUser(path.join(template, 'data/users'), `user${i}`, i);
    fs.writeFileSync(path.join(home, 'big.bin'), Buffer.alloc(4 << 20, i)); // some bytes, so that runs take a while
  }
  spawnSync(process.execPath, [WRITER, path.join(template, 'data/db/sqlite/scitex_cloud_dev.db'), 'checkpoint', '3000']);
});
afterAll(() => fs.rmSync(template, { recursive: true, force: true }));

function copy(): string {
  const d = tempDir('scitex-trial-');
  execFileSync('cp', ['-a', `${template}/.`, d]);
  return d;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const backupDir = (root: string) => path.join(root, 'data/db/backups');
const leftovers = (root: string) => fs.readdirSync(backupDir(root)).filter((n) => n.includes('.partial-'));

/** Every published backup verifies: no finished-looking partial artifact exists. */
async function allBackupsSound(root: string): Promise<void> {
  for (const e of await listBackups(backupDir(root))) {
    expect(e.checksum).toBe(true);
    if (e.kind === 'users') expect(execFileSync('sha256sum', ['--quiet', '-c', 'SHA256SUMS'], { cwd: e.path }).toString()).toBe('');
    else expect(execFileSync('sha256sum', ['--quiet', '-c', e.name + '.sha256'], { cwd: backupDir(root) }).toString()).toBe('');
  }
}

describe('SIGKILL at random times', () => {
  it('backup (db + users): no finished-looking partial backup, no stale lock, a re-run completes and cleans up', async () => {
    await trials('SIGKILL during backup (db + users)', TRIALS, 'no partial backup looks finished; no stale lock; re-run publishes a verifiable set and removes leftovers', async (i) => {
      const root = copy();
      try {
        const run = cliAsync(['--root', root, 'backup'], { env });
        await sleep(50 + ((i * 137) % 400));
        run.child.kill('SIGKILL');
        await run.done;
        await allBackupsSound(root);
        const again = cli(['--root', root, 'backup'], { env });
        expect(again.code, again.stderr).toBe(0);
        expect(leftovers(root)).toEqual([]);
        await allBackupsSound(root);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });

  it('restore users: live users are whole (old or restored), and a re-run restores them exactly', async () => {
    await trials('SIGKILL during restore users', TRIALS, 'each user directory is either untouched or fully restored; re-run finishes; staging removed', async (i) => {
      const root = copy();
      try {
        const users = path.join(root, 'data/users');
        expect(cli(['--root', root, 'backup', 'users']).code).toBe(0);
        const want = Object.fromEntries(fs.readdirSync(users).filter((u) => u.startsWith('user')).map((u) => [u, snapshotTree(path.join(users, u))]));
        for (const u of Object.keys(want)) fs.writeFileSync(path.join(users, u, 'shared', 'refs.bib'), 'damaged');
        const damaged = Object.fromEntries(Object.keys(want).map((u) => [u, snapshotTree(path.join(users, u))]));
        const run = cliAsync(['--root', root, 'restore', 'users', '--yes']);
        await sleep(50 + ((i * 173) % 500));
        run.child.kill('SIGKILL');
        await run.done;
        for (const u of Object.keys(want)) {
          if (!fs.existsSync(path.join(users, u))) continue; // between the two renames: the re-run brings it back
          const now = snapshotTree(path.join(users, u));
          expect([u, JSON.stringify(now) === JSON.stringify(want[u]) || JSON.stringify(now) === JSON.stringify(damaged[u])]).toEqual([u, true]);
        }
        const again = cli(['--root', root, 'restore', 'users', '--yes']);
        expect(again.code, again.stderr).toBe(0);
        for (const u of Object.keys(want)) expect(snapshotTree(path.join(users, u))).toEqual(want[u]);
        expect(fs.readdirSync(path.join(users, '~scitex-data')).filter((n) => n.startsWith('staging'))).toEqual([]);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });

  it('restore db (SQLite): the live database is always the old or the new one, intact', async () => {
    await trials('SIGKILL during restore db (SQLite)', TRIALS, 'live database passes integrity_check and holds the old or the restored rows; re-run restores', async (i) => {
      const root = copy();
      try {
        const file = path.join(root, 'data/db/sqlite/scitex_cloud_dev.db');
        expect(cli(['--root', root, 'backup', 'db'], { env }).code).toBe(0);
        spawnSync(process.execPath, [WRITER, file, 'checkpoint', '500']);
        const run = cliAsync(['--root', root, 'restore', 'db', '--yes'], { env });
        await sleep(30 + ((i * 97) % 300));
        run.child.kill('SIGKILL');
        await run.done;
        const db = new Database(file, { readonly: true });
        const n = (db.prepare('SELECT count(*) n FROM a').get() as { n: number }).n;
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        db.close();
        expect([3000, 3500]).toContain(n);
        const again = cli(['--root', root, 'restore', 'db', '--yes'], { env });
        expect(again.code, again.stderr).toBe(0);
        const db2 = new Database(file, { readonly: true });
        expect((db2.prepare('SELECT count(*) n FROM a').get() as { n: number }).n).toBe(3000);
        db2.close();
        expect(fs.readdirSync(path.dirname(file)).filter((x) => x.includes('.partial-'))).toEqual([]);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });
});

describe('concurrent runs', () => {
  it('of several backups at once exactly one proceeds; the others exit 4', async () => {
    await trials('4 runs started at once', TRIALS, 'exactly one proceeds, the others exit 4 naming the holder', async () => {
      const root = copy();
      try {
        const runs = Array.from({ length: 4 }, () => cliAsync(['--root', root, 'backup'], { env }));
        const codes = (await Promise.all(runs.map((r) => r.done))).map((r) => r.code).sort();
        expect(codes).toEqual([0, 4, 4, 4]);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });
});
