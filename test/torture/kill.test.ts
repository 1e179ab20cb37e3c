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
  // Some megabytes, so that a snapshot or a restore of the database lasts long enough to be killed mid-way.
  const db = new Database(path.join(template, 'data/db/sqlite/scitex_cloud_dev.db'));
  db.exec('CREATE TABLE pad(b BLOB); INSERT INTO pad(b) SELECT randomblob(262144) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) SELECT i FROM n)');
  db.close();
});
afterAll(() => fs.rmSync(template, { recursive: true, force: true }));

function copy(): string {
  const d = tempDir('scitex-trial-');
  execFileSync('cp', ['-a', `${template}/.`, d]);
  return d;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ended = (run: ReturnType<typeof cliAsync>) => run.child.exitCode !== null || run.child.signalCode !== null;
const ls = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir) : []);
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


/** A run to kill: `ready` says the chosen kill point is reached; `inProgress` names what only a run in progress leaves. */
interface Victim {
  run: ReturnType<typeof cliAsync>;
  ready: () => boolean;
  inProgress: () => string | null;
}

/**
 * Kills a run mid-operation: waits until it is `ready`, lets it go on for `extraMs`, and sends SIGKILL
 * only while `inProgress` still names a partial file or a staging directory. Returns that name, or null
 * when the run got past it first (no kill landed mid-operation: the caller retries on a fresh copy).
 */
async function killMidway(v: Victim, extraMs: number): Promise<string | null> {
  while (!v.ready()) {
    if (ended(v.run)) return (await v.run.done, null);
    await sleep(2);
  }
  if (extraMs) await sleep(extraMs);
  const seen = v.inProgress();
  if (!seen || ended(v.run)) return (await v.run.done, null);
  v.run.child.kill('SIGKILL');
  const r = await v.run.done;
  return r.code === -1 ? seen : null; // it exited on its own between the check and the signal
}

/**
 * Runs one kill trial on fresh copies until a kill lands mid-operation (at most 5 tries), then checks the
 * outcome. `start` gets the attempt number: from the third on it should aim at the earliest kill point.
 */
async function killTrial(start: (root: string, attempt: number) => Victim, extraMs: number, check: (root: string, seen: string) => Promise<void> | void): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const root = copy();
    try {
      // A retry kills at the first moment the point is reached: the later point was missed.
      const seen = await killMidway(start(root, attempt), attempt ? 0 : extraMs);
      if (seen) return await check(root, seen);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  throw new Error('no kill landed mid-operation in 5 tries');
}

describe('SIGKILL mid-operation', () => {
  it('backup (db + users): no finished-looking partial backup, no stale lock, a re-run completes and cleans up', async () => {
    await trials('SIGKILL during backup (db + users)', TRIALS, 'killed while a partial backup file or set exists: no partial backup looks finished; no stale lock; re-run publishes a verifiable set and removes leftovers', async (i) => {
      // Trial i kills once the set being written holds i % 7 archives (0: at the first partial file, the database snapshot).
      await killTrial(
        (root, attempt) => ({
          run: cliAsync(['--root', root, 'backup'], { env }),
          ready: () => {
            const want = attempt > 1 ? 0 : i % 7;
            const set = leftovers(root).find((n) => n.startsWith('.users_'));
            return want === 0 ? leftovers(root).length > 0 : !!set && ls(path.join(backupDir(root), set)).length >= want;
          },
          inProgress: () => leftovers(root)[0] ?? null,
        }),
        (i * 37) % 120,
        async (root, seen) => {
          expect(seen).toMatch(/^\..*\.partial-/);
          await allBackupsSound(root);
          const again = cli(['--root', root, 'backup'], { env });
          expect(again.code, again.stderr).toBe(0);
          expect(leftovers(root)).toEqual([]);
          await allBackupsSound(root);
        },
      );
    });
  });

  it('restore users: live users are whole (old or restored), and a re-run restores them exactly', async () => {
    await trials('SIGKILL during restore users', TRIALS, 'killed while the staging directory exists: each user directory is either untouched or fully restored; re-run finishes; staging removed', async (i) => {
      // Trial i kills once i % 9 users are extracted into staging (8: all, about to swap), a little later on each trial.
      let expected: Record<string, Record<string, string>> = {};
      let damaged: Record<string, Record<string, string>> = {};
      await killTrial(
        (root, attempt) => {
          const users = path.join(root, 'data/users');
          const want = attempt > 1 ? 0 : i % 9;
          expect(cli(['--root', root, 'backup', 'users']).code).toBe(0);
          expected = Object.fromEntries(fs.readdirSync(users).filter((u) => u.startsWith('user')).map((u) => [u, snapshotTree(path.join(users, u))]));
          for (const u of Object.keys(expected)) fs.writeFileSync(path.join(users, u, 'shared', 'refs.bib'), 'damaged');
          damaged = Object.fromEntries(Object.keys(expected).map((u) => [u, snapshotTree(path.join(users, u))]));
          const work = path.join(users, '.~scitex-data');
          return {
            run: cliAsync(['--root', root, 'restore', 'users', '--yes']),
            // Staged users leave staging when they are swapped in (after the safety directory appears).
            ready: () => ls(work).some((n) => n.startsWith('staging') && (ls(path.join(work, n, 'data/users')).length >= want || ls(work).includes('safety'))),
            inProgress: () => ls(work).find((n) => n.startsWith('staging')) ?? null,
          };
        },
        (i * 29) % 80,
        (root) => {
          const users = path.join(root, 'data/users');
          for (const u of Object.keys(expected)) {
            if (!fs.existsSync(path.join(users, u))) continue; // between the two renames: the re-run brings it back
            const now = snapshotTree(path.join(users, u));
            expect([u, JSON.stringify(now) === JSON.stringify(expected[u]) || JSON.stringify(now) === JSON.stringify(damaged[u])]).toEqual([u, true]);
          }
          const again = cli(['--root', root, 'restore', 'users', '--yes']);
          expect(again.code, again.stderr).toBe(0);
          for (const u of Object.keys(expected)) expect(snapshotTree(path.join(users, u))).toEqual(expected[u]);
          expect(fs.readdirSync(path.join(users, '.~scitex-data')).filter((n) => n.startsWith('staging'))).toEqual([]);
        },
      );
    });
  });

  it('restore db (SQLite): the live database is always the old or the new one, intact', async () => {
    await trials('SIGKILL during restore db (SQLite)', TRIALS, 'killed while the partial restored file exists: live database passes integrity_check and holds the old or the restored rows; re-run restores', async (i) => {
      await killTrial(
        (root) => {
          const file = path.join(root, 'data/db/sqlite/scitex_cloud_dev.db');
          expect(cli(['--root', root, 'backup', 'db'], { env }).code).toBe(0);
          spawnSync(process.execPath, [WRITER, file, 'checkpoint', '500']);
          return {
            run: cliAsync(['--root', root, 'restore', 'db', '--yes'], { env }),
            ready: () => ls(path.dirname(file)).some((x) => x.includes('.partial-')),
            inProgress: () => ls(path.dirname(file)).find((x) => x.includes('.partial-')) ?? null,
          };
        },
        (i * 13) % 60,
        (root) => {
          const file = path.join(root, 'data/db/sqlite/scitex_cloud_dev.db');
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
        },
      );
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
