import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, tempDir } from '../helpers/cli.js';
import { makeOldTree, newPathOf, OLD_USERS } from '../helpers/oldtree.js';
import { snapshotTree } from '../helpers/tree.js';
import { record, TRIALS } from '../torture/report.js';

// PostgreSQL is not configured in these tests; point it at a closed port so the auth_user probe fails fast.
const env = { SCITEX_CLOUD_DB_PORT_DEV: '1', SCITEX_CLOUD_DB_HOST_DEV: '127.0.0.1' };
let template = '';
let before: Record<string, string>;
const work: string[] = [];

/** A fresh copy of the realistic old tree (cp -a keeps everything, including the -wal files). */
function copyTree(): string {
  const dir = tempDir('scitex-mig-');
  work.push(dir);
  execFileSync('cp', ['-a', `${template}/.`, dir]);
  return dir;
}
/** Files and links only, without SQLite's -shm index and our lock file (neither is data). */
const files = (snap: Record<string, string>) => Object.fromEntries(Object.entries(snap).filter(([k, v]) => !v.startsWith('dir') && !k.endsWith('-shm') && !k.startsWith('data/.scitex-data.lock')));
const rows = (file: string, table: string) => {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
};

/** Asserts the migrated tree holds every old file, unchanged, at its new place, and nothing else but our own files. */
function assertMigrated(root: string): void {
  const after = files(snapshotTree(root));
  const expected: Record<string, string> = {};
  for (const [rel, v] of Object.entries(files(before))) {
    if (rel.startsWith('config/') || rel === '.gitignore') continue;
    const to = newPathOf(rel);
    // Moved backups are made private (0600); everything else keeps its mode.
    expected[to] = to.startsWith('data/db/backups/') && !to.endsWith('.gitkeep') ? v.replace(/^file \d+/, 'file 600') : v;
  }
  for (const [rel, v] of Object.entries(expected)) expect([rel, after[rel]]).toEqual([rel, v]);
  const ours = /^(data\/db\/(sqlite|backups|migrations_archive)\/\.gitkeep|data\/users\/\.gitkeep|data\/\.scitex-data.*|data\/db\/backups\/pre-migrate_[^/]+(\/.*)?|config\/settings\/.*|\.gitignore.*)$/;
  const extra = Object.keys(after).filter((k) => !(k in expected) && !ours.test(k));
  expect(extra).toEqual([]);
  expect(rows(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), 'a')).toBe(120);
  expect(rows(path.join(root, 'data/db/sqlite/scitex_cloud_prod.db'), 'a')).toBe(80);
  expect(fs.readFileSync(path.join(root, 'config/settings/settings_prod.py'), 'utf8')).toContain("BASE_DIR / 'data' / 'db' / 'sqlite' / 'scitex_cloud_prod.db'");
}

beforeAll(() => {
  template = tempDir('scitex-old-');
  makeOldTree(template);
  before = snapshotTree(template);
});
afterAll(() => {
  for (const d of [template, ...work]) fs.rmSync(d, { recursive: true, force: true });
});

describe('scitex-data migrate', () => {
  it('--dry-run prints the whole plan and changes nothing', () => {
    const root = copyTree();
    const r = cli(['--root', root, 'migrate', '--dry-run'], { env });
    expect(r.code).toBe(0);
    for (const u of OLD_USERS) expect(r.stdout).toContain(`data/${u} -> data/users/${u}`);
    expect(r.stdout).toMatch(/stays +data\/ssh_keys\/: used by the app in place/);
    expect(r.stdout).toMatch(/unknown +data\/mystery\/: no evidence.*--user mystery/);
    expect(r.stdout).toMatch(/\+DATABASES = .*"data" \/ "db" \/ "sqlite" \/ "scitex_cloud_dev\.db"/);
    // SQLite may rewrite its -shm index when a database is opened read-only; that is not data.
    expect(files(snapshotTree(root))).toEqual(files(before));
  });

  it('migrates a realistic old tree losing nothing; a second run is a no-op', () => {
    const root = copyTree();
    expect(fs.statSync(path.join(root, 'scitex_cloud_dev.db-wal')).size).toBeGreaterThan(0);
    const r = cli(['--root', root, '--json', 'migrate', '--yes'], { env });
    const doc = JSON.parse(r.stdout);
    expect(doc.moved).toBe(doc.plan.steps.length);
    expect(doc.checks.filter((c: { status: string }) => c.status === 'fail')).toEqual([]);
    expect(r.code).toBe(0);
    assertMigrated(root);
    expect(fs.statSync(path.join(root, 'data/ssh_keys')).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.join(root, 'data/ssh_keys/user_1/id_ed25519')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(root, 'data/mystery/notes.txt'))).toBe(true);
    // The originals of the edited settings are kept under the (ignored, private) backup directory.
    const copies = fs.readdirSync(path.join(root, 'data/db/backups')).filter((n) => n.startsWith('pre-migrate_'));
    expect(fs.readdirSync(path.join(root, 'data/db/backups', copies[0]!, 'config/settings'))).toHaveLength(3);
    const snap = files(snapshotTree(root));
    const again = cli(['--root', root, 'migrate', '--yes'], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/Already migrated: nothing to do/);
    expect(files(snapshotTree(root))).toEqual(snap);
    expect(cli(['--root', root, 'verify', '--skip-db'], { env }).code).toBe(0);
  });

  it('stops before the first move on a conflict, an ambiguous name or a database in use', async () => {
    const root = copyTree();
    fs.mkdirSync(path.join(root, 'data/users/alice.smith'), { recursive: true });
    fs.writeFileSync(path.join(root, 'data/users/alice.smith/other.txt'), 'different');
    const snap = files(snapshotTree(root));
    const r = cli(['--root', root, 'migrate', '--yes'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/data\/users\/alice\.smith already exists and differs/);
    expect(files(snapshotTree(root))).toEqual(snap);
    const amb = copyTree();
    fs.writeFileSync(path.join(amb, 'data/backups/workspace_info.json'), JSON.stringify({ username: 'backups' }));
    const a = cli(['--root', amb, 'migrate', '--yes'], { env });
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/--user backups or --system backups/);
    const busy = copyTree();
    const { spawn } = await import('node:child_process');
    // Another process holds the database open, as the running app would.
    const hold = spawn('bash', ['-c', `exec 3<'${path.join(busy, 'data/scitex_cloud_prod.db')}'; sleep 30`], { stdio: 'ignore' });
    await new Promise((res) => setTimeout(res, 300));
    try {
      const b = cli(['--root', busy, 'migrate', '--yes'], { env });
      expect(b.code).toBe(1);
      expect(b.stderr + b.stdout).toMatch(/data\/scitex_cloud_prod\.db is in use by pid \d+ \(\w+\): stop the app first/);
    } finally {
      hold.kill('SIGKILL');
    }
  });

  it('--rollback puts a completed migration back to the old layout exactly', () => {
    const root = copyTree();
    expect(cli(['--root', root, 'migrate', '--yes'], { env }).code).toBe(0);
    const r = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(r.code, r.stderr).toBe(0);
    const after = files(snapshotTree(root));
    for (const [rel, v] of Object.entries(files(before))) expect([rel, after[rel]]).toEqual([rel, v]);
  });

  it('survives SIGKILL after every journal record, in the first run and in each resume: the last re-run finishes with nothing lost or duplicated', () => {
    // One tree, one process per record: each run (a fresh one first, then resumes) is killed right after
    // the first journal record it adds, so every record is a kill point and every resume starts from a
    // crash. Half the processes of one fresh run per point, and no copy or tree comparison per point.
    const root = copyTree();
    const journal = path.join(root, 'data/.scitex-data-migrate.journal');
    const records = () => (fs.existsSync(journal) ? fs.readFileSync(journal, 'utf8').split('\n').filter(Boolean).length : 0);
    const seen: number[] = [];
    let killAfter = 1;
    for (let run = 0; ; run++) {
      expect(run).toBeLessThan(100);
      const before = records();
      const r = cli(['--root', root, 'migrate', '--yes'], { env: { ...env, SCITEX_DATA_TEST_KILL_AFTER: String(killAfter) } });
      if (r.code === 0) {
        expect(r.stdout).toMatch(/Already migrated: nothing to do/); // the previous run was killed after the last record
        break;
      }
      expect([run, r.code, r.stderr.match(/^error:.*/m)?.[0]]).toEqual([run, -1, undefined]); // killed, not failed
      const after = records();
      // A resume's first step hook can come after init, before any new record: then count one more hook.
      if (after === before) killAfter++;
      else expect([run, after]).toEqual([run, before + 1]);
      seen.push(after);
    }
    const total = records();
    expect(total).toBeGreaterThan(20);
    // Killed after record 1, 2, ..., the last ("complete"): none skipped.
    expect([...new Set(seen)]).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    assertMigrated(root);
    record('SIGKILL during migrate, after each journal record (first run and resumes)', total, total, 'the last re-run completes: every file at its new place with content, mode, owner, mtime and links intact, database rows counted, nothing duplicated');
  }, 300_000);

  it('survives SIGKILL after every journal record of a fresh run (each point from a fresh copy; full scale under npm run torture)', () => {
    // The exhaustive variant costs a copy and two runs per record: under the normal suite it covers the
    // first record and the last three (settings edits, .gitignore, complete); `npm run torture` covers every one.
    let points = 0;
    const all = TRIALS > 3;
    const queue = all ? Array.from({ length: 60 }, (_, i) => i + 1) : [1];
    for (let k = queue.shift(); k !== undefined; k = queue.shift()) {
      const root = copyTree();
      const killed = cli(['--root', root, 'migrate', '--yes'], { env: { ...env, SCITEX_DATA_TEST_KILL_AFTER: String(k) } });
      const finish = cli(['--root', root, 'migrate', '--yes'], { env });
      expect([k, finish.code, finish.stderr]).toEqual([k, 0, '']);
      assertMigrated(root);
      if (!all && k === 1) {
        // R records in all; a fresh run has R + 1 step hooks (one after init writes none): add the last three.
        const r = fs.readFileSync(path.join(root, 'data/.scitex-data-migrate.journal'), 'utf8').split('\n').filter(Boolean).length;
        queue.push(r - 1, r, r + 1);
      }
      fs.rmSync(root, { recursive: true, force: true });
      points++;
      if (killed.code === 0) break; // k is past the last record: the whole run completed
      expect(killed.code).toBe(-1);
    }
    if (!all) expect(points).toBe(4);
    record('SIGKILL during migrate, after each journal record of a fresh run', points, points, 'as above, from a fresh copy per record');
  }, 600_000);

  it('survives SIGKILL at random times', async () => {
    const n = Math.max(6, TRIALS);
    for (let i = 0; i < n; i++) {
      const root = copyTree();
      const run = cliAsync(['--root', root, 'migrate', '--yes'], { env });
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 250));
      run.child.kill('SIGKILL');
      await run.done;
      const finish = cli(['--root', root, 'migrate', '--yes'], { env });
      expect(finish.code, finish.stdout + finish.stderr).toBe(0);
      assertMigrated(root);
      fs.rmSync(root, { recursive: true, force: true });
    }
    record('SIGKILL during migrate, at random times', n, n, 'as above');
  });
});
