import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { env, exactSnapshot, holdOpen, subtree } from '../helpers/migtree.js';
import { makeOldTree } from '../helpers/oldtree.js';
import { makeUser, snapshotTree } from '../helpers/tree.js';
import { TRIALS, trials } from './report.js';

const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../helpers/sqlite-writer.cjs');
const NAMED = ['db', 'users'];
let template = '';
let before: Record<string, string>;

beforeAll(() => {
  template = tempDir('scitex-trust-');
  makeOldTree(template);
  // Users named like the folders the new layout creates, one with a folder named like the layout's inside.
  for (const [i, n] of NAMED.entries()) makeUser(path.join(template, 'data'), n, 10 + i);
  fs.mkdirSync(path.join(template, 'data/users/users'));
  fs.writeFileSync(path.join(template, 'data/users/users/notes.txt'), 'a folder of user "users"');
  // The old backups folder belongs to the app user with its own mode: --rollback recreates it as it was.
  fs.chmodSync(path.join(template, 'data/backups'), 0o750);
  fs.chownSync(path.join(template, 'data/backups'), 1000, 1000);
  before = snapshotTree(template);
});
afterAll(() => fs.rmSync(template, { recursive: true, force: true }));

function copy(): string {
  const d = tempDir('scitex-trust-trial-');
  execFileSync('cp', ['-a', `${template}/.`, d]);
  return d;
}
const undoneRecords = (file: string) => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"t":"undone"')).length;
const journal = (root: string) => path.join(root, 'data/.scitex-data-migrate.journal');
/** Everything but SQLite's -shm index (rewritten by any reader) and our lock file and journals. */
const data = (snap: Record<string, string>) => Object.fromEntries(Object.entries(snap).filter(([k]) => !k.endsWith('-shm') && !k.startsWith('data/.scitex-data') && k !== 'data'));

/** The old tree is back exactly: every entry (directories included) as before, nothing added. */
function assertOldTree(root: string): void {
  expect(data(snapshotTree(root))).toEqual(data(before));
}

describe('migrate and --rollback under SIGKILL, with users named like layout folders', () => {
  it('a kill at any journal record of migrate, then of --rollback: re-runs finish and give the old tree back', async () => {
    await trials('SIGKILL during migrate and its --rollback (users named db, users)', Math.max(3, TRIALS), 'the kill lands mid-run (journal present, run died); re-runs finish: users intact in data/users/, then the old tree back exactly (entries, modes, owners, mtimes, links)', (i) => {
      const root = copy();
      try {
        const k = 1 + ((i * 7) % 28); // the run writes about 30 records
        const killed = cli(['--root', root, 'migrate', '--yes'], { env: { ...env, SCITEX_DATA_TEST_KILL_AFTER: String(k) } });
        expect([k, killed.code === 0, fs.existsSync(journal(root))]).toEqual([k, false, true]);
        if (i % 2 === 0) {
          const finish = cli(['--root', root, 'migrate', '--yes'], { env });
          expect([k, finish.code, finish.stderr]).toEqual([k, 0, '']);
          const after = exactSnapshot(root);
          for (const n of NAMED) expect(subtree(after, `data/users/${n}`)).toEqual(subtree(exactSnapshot(template), `data/${n}`, `data/users/${n}`));
        }
        const m = 1 + ((i * 5) % 12);
        const back = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env: { ...env, SCITEX_DATA_TEST_KILL_AFTER: String(m) } });
        if (back.code === 0) {
          // It had fewer than m entries to move back, so it completed (its journal was set aside).
          const done = fs.readdirSync(path.join(root, 'data')).find((n) => n.startsWith('.scitex-data-migrate.journal.rolledback-'))!;
          expect(undoneRecords(path.join(root, 'data', done))).toBeLessThan(m);
        } else {
          expect(undoneRecords(journal(root))).toBe(m); // the kill landed right after the m-th record
          const again = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
          expect([k, m, again.code, again.stderr]).toEqual([k, m, 0, '']);
        }
        assertOldTree(root);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });
});

describe('migrate --rollback and unsafe SQLite states', () => {
  it('stops before moving anything on a hot journal, an open database or a stale side file', async () => {
    await trials('--rollback with a hot journal, an open database or a stale side file', Math.max(3, TRIALS), 'refused with one line before anything moves; the tree is unchanged', async (i) => {
      const root = copy();
      try {
        expect(cli(['--root', root, 'migrate', '--yes'], { env }).code).toBe(0);
        const db = path.join(root, 'data/db/sqlite/scitex_cloud.db');
        let hold: Awaited<ReturnType<typeof holdOpen>> | undefined;
        if (i % 3 === 0) fs.writeFileSync(db + '-journal', Buffer.alloc(512, 1)); // non-empty: SQLite would replay it
        else if (i % 3 === 1) hold = await holdOpen(path.join(root, 'data/db/sqlite/scitex_cloud_prod.db-wal'));
        else fs.writeFileSync(path.join(root, 'data/scitex_cloud.db-wal'), 'stale');
        const snap = data(exactSnapshot(root));
        try {
          const r = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
          expect(r.code).toBe(1);
          expect(r.stderr.trim().split('\n')).toHaveLength(1);
          expect(r.stderr).toMatch(/Rollback stopped before moving anything: .*(hot journal|is in use by pid|exists without its database)/);
        } finally {
          hold?.kill('SIGKILL');
        }
        expect(data(exactSnapshot(root))).toEqual(snap);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });
});

describe('migrate --dry-run on WAL databases', () => {
  it('writes nothing, whatever state the app left its WAL database in', async () => {
    await trials('migrate --dry-run on WAL databases left by a crashed or cleanly closed app', Math.max(3, TRIALS), 'every path, size, mtime (ns) and mode unchanged', (i) => {
      const root = copy();
      try {
        const prod = path.join(root, 'data/scitex_cloud_prod.db');
        // A crash after a random number of commits (rows only in the -wal), or a clean close (no side files).
        spawnSync(process.execPath, [WRITER, prod, i % 2 ? 'nocheckpoint' : 'checkpoint', String(7 + i * 13)]);
        if (i % 2 === 0) for (const s of ['-wal', '-shm']) expect(fs.existsSync(prod + s)).toBe(false);
        const snap = exactSnapshot(root);
        for (const args of [['migrate', '--dry-run'], ['--json', 'migrate', '--dry-run']]) {
          const r = cli(['--root', root, ...args], { env });
          expect(r.code, r.stderr).toBe(0);
          expect(exactSnapshot(root)).toEqual(snap);
        }
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });
});

describe('a migrate journal planted by the app user', () => {
  it('is never trusted nor written through: a symlink, a foreign owner, a forged path', async () => {
    await trials('planted migrate journal (symlink, foreign owner, forged paths)', 3, 'refused with one line; the file it points at and the tree stay untouched', (i) => {
      const root = copy();
      const victim = path.join(tempDir('scitex-victim-'), 'precious');
      try {
        fs.writeFileSync(victim, 'root-owned secret\n', { mode: 0o600 });
        const j = journal(root);
        const forged = (src: string) => JSON.stringify({ t: 'plan', plan: { version: 1, created: '', steps: [{ id: 0, what: 'user', src, dst: 'data/users/alice.smith', size: null }], left: [], unknown: [], settings: [], gitignore: 'unchanged', conflicts: [], warnings: [], users: [] } }) + '\n' + JSON.stringify({ t: 'done', id: 0 }) + '\n';
        if (i === 0) fs.symlinkSync(victim, j); // a fresh run would truncate what it points at
        else if (i === 1) {
          fs.writeFileSync(j, forged('data/alice.smith'));
          fs.chownSync(j, 65534, 65534); // written by the app user, not by whoever runs scitex-data
        } else fs.writeFileSync(j, forged(path.relative(root, victim))); // a path migrate never moves
        const snap = data(exactSnapshot(root));
        for (const args of [['migrate', '--yes'], ['migrate', '--rollback', '--yes'], ['migrate', '--dry-run']]) {
          const r = cli(['--root', root, ...args], { env });
          expect([i, args, r.code]).toEqual([i, args, 1]);
          expect(r.stderr).toMatch(/refusing to trust/);
          expect(r.stderr.trim().split('\n')).toHaveLength(1);
        }
        expect(fs.readFileSync(victim, 'utf8')).toBe('root-owned secret\n');
        expect(data(exactSnapshot(root))).toEqual(snap);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
        fs.rmSync(path.dirname(victim), { recursive: true, force: true });
      }
    });
  });
});
