import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appTree, okOn, runOn, sha256, stamp } from '../helpers/apptree.js';
import { tempDir } from '../helpers/cli.js';

// The operator's screens: status, ls, diff, clean (and verify's leftovers check).
const work: string[] = [];
let template = '';
const bdir = (root: string) => path.join(root, 'data/db/backups');
const sets = (root: string) => fs.readdirSync(bdir(root)).filter((n) => n.startsWith('users_')).sort();
const ts = stamp;
const sha = sha256;
const run = runOn;
const ok = okOn;
const json = (root: string, ...args: string[]) => JSON.parse(run(root, '--json', ...args).stdout);

function copy(): string {
  const d = tempDir('scitex-ops-');
  work.push(d);
  execFileSync('cp', ['-a', `${template}/.`, d]);
  return d;
}

/** Moves every backup back in time by `hours`, as if the nightly job had stopped then. */
function age(root: string, hours: number): void {
  for (const n of fs.readdirSync(bdir(root))) {
    const m = /\d{8}_\d{6}/.exec(n);
    if (!m || n.endsWith('.sha256')) continue;
    const d = new Date(Date.UTC(+m[0].slice(0, 4), +m[0].slice(4, 6) - 1, +m[0].slice(6, 8), +m[0].slice(9, 11), +m[0].slice(11, 13), +m[0].slice(13, 15)) - hours * 3_600_000);
    const to = n.replace(m[0], ts(d));
    fs.renameSync(path.join(bdir(root), n), path.join(bdir(root), to));
    if (fs.existsSync(path.join(bdir(root), n + '.sha256'))) {
      fs.rmSync(path.join(bdir(root), n + '.sha256'));
      fs.writeFileSync(path.join(bdir(root), to + '.sha256'), `${sha(path.join(bdir(root), to))}  ${to}\n`, { mode: 0o600 });
    }
  }
}

beforeAll(() => {
  template = appTree(['alice', 'bob'], { prefix: 'scitex-ops-tpl-' });
}, 60_000);
afterAll(() => {
  for (const d of [template, ...work]) fs.rmSync(d, { recursive: true, force: true });
});

describe('status', () => {
  it('is good on a fresh tree, exits 3 on a stale one, and says when no run was recorded yet', () => {
    const root = copy();
    expect(run(root, 'status').code).toBe(3); // no backup at all
    ok(root, 'backup', '--keep-last', '3');
    const fresh = json(root, 'status');
    expect(fresh.exitCode).toBe(0);
    expect(fresh.kinds.map((k: { kind: string; state: string }) => `${k.kind}:${k.state}`).sort()).toEqual(['sqlite scitex_cloud_dev:ok', 'users:ok']);
    expect(fresh.retention.source).toBe('last run'); // the policy the backup applied
    expect(fresh.retention.wouldDelete).toEqual([]);
    fs.rmSync(path.join(bdir(root), '.scitex-data-state.json'), { force: true });
    expect(ok(root, 'status').stdout).toContain('no run recorded yet');
    age(root, 30);
    const stale = run(root, 'status');
    expect(stale.code).toBe(3);
    expect(stale.stdout).toMatch(/users .* STALE/);
    expect(stale.stdout).toMatch(/newest users backup users_\d{8}_\d{6} is 30\.\d h old \(max 26 h\)/);
    // --quiet never hides a problem.
    expect(run(root, '--quiet', 'status').stdout).toContain('problem(s)');
    // A failed last run (state file of the CLI) fails the status too.
    fs.writeFileSync(path.join(bdir(root), '.scitex-data-state.json'), JSON.stringify({ format: 1, lastRun: { backup: { result: 'failed', exitCode: 1, started: new Date().toISOString(), finished: new Date().toISOString(), durationMs: 1500, message: 'disk full' } } }));
    const failed = json(root, 'status', '--max-age', '48');
    expect(failed.exitCode).toBe(3);
    expect(failed.problems).toEqual(['the last backup failed (exit 1): disk full']);
    expect(failed.lastRuns[0]).toMatchObject({ command: 'backup', durationMs: 1500 });
  });

  it('shows what retention deletes next with the given policy', () => {
    const root = copy();
    ok(root, 'backup', 'db');
    age(root, 24 * 10);
    ok(root, 'backup', 'db');
    const doc = json(root, 'status', '--keep-last', '1', '--max-age', '1000');
    expect(doc.retention.source).toBe('flags');
    expect(doc.retention.wouldDelete).toHaveLength(1);
    expect(fs.readdirSync(bdir(root)).filter((n) => n.endsWith('.db'))).toHaveLength(2); // a dry run
  });
});

describe('ls and diff', () => {
  it('ls shows a set\'s users and one user\'s files with sizes; diff names what changed for which user', () => {
    const root = copy();
    ok(root, 'backup', 'users');
    const [first] = sets(root);
    const users = json(root, 'ls', first!);
    expect(users.users.map((u: { username: string }) => u.username)).toEqual(['alice', 'bob']);
    expect(ok(root, 'list', first!).stdout).toMatch(/alice\s+[\d.]+ KiB/);
    const files = json(root, 'ls', first!, 'alice', '--path', 'proj/neuro-analysis/data');
    const weights = files.entries.find((e: { rel: string }) => e.rel === 'proj/neuro-analysis/data/weights.npy');
    expect(weights).toMatchObject({ type: 'file', size: 300_000 });
    expect(files.entries.every((e: { rel: string }) => e.rel.startsWith('proj/neuro-analysis/data'))).toBe(true);
    expect(run(root, 'ls', first!, 'mallory').code).toBe(2);
    expect(run(root, 'ls', 'users_20000101_000000').code).toBe(2);

    const alice = path.join(root, 'data/users/alice');
    fs.writeFileSync(path.join(alice, 'proj/neuro-analysis/new.txt'), 'new');
    fs.writeFileSync(path.join(alice, 'run.sh'), '#!/bin/sh\necho changed\n');
    fs.rmSync(path.join(alice, 'private.key'));
    const live = json(root, 'diff', first!);
    const a = live.users.find((u: { username: string }) => u.username === 'alice');
    expect(a).toMatchObject({ state: 'changed', added: ['proj/neuro-analysis/new.txt'], changed: ['run.sh'], removed: ['private.key'] });
    expect(live.users.find((u: { username: string }) => u.username === 'bob').state).toBe('same');
    ok(root, 'backup', 'users');
    const second = sets(root)[1]!;
    const between = json(root, 'diff', first!, second);
    expect(between.users.find((u: { username: string }) => u.username === 'alice')).toMatchObject({ added: ['proj/neuro-analysis/new.txt'], changed: ['run.sh'], removed: ['private.key'] });
    expect(ok(root, 'diff', first!, second).stdout).toMatch(/alice: 1 added, 1 changed, 1 removed[\s\S]*bob: unchanged/);
  });
});

describe('clean and verify\'s leftovers check', () => {
  it('lists safety copies and pre-restore files, removes only those older than --older-than, and verify warns about them', () => {
    const root = copy();
    ok(root, 'backup');
    // A real restore of each kind leaves its leftovers (alice changed, so she gets a safety copy).
    fs.writeFileSync(path.join(root, 'data/users/alice/run.sh'), 'changed');
    ok(root, 'restore', 'users', '--user', 'alice', '--yes');
    ok(root, 'restore', 'db', '--yes');
    const sqlite = path.join(root, 'data/db/sqlite');
    const recentDb = fs.readdirSync(sqlite).find((n) => /_pre_restore_\d{8}_\d{6}\.db$/.test(n))!;
    expect(recentDb).toBeTruthy();
    // An old restore's leftovers: a safety copy and a SQLite copy with a side file, 40 days old.
    const old = ts(new Date(Date.now() - 40 * 86_400_000));
    const safety = path.join(root, 'data/users/.~scitex-data/safety');
    const recentCopy = fs.readdirSync(safety)[0]!;
    fs.cpSync(path.join(safety, recentCopy), path.join(safety, `alice.pre_restore_${old}`), { recursive: true });
    fs.copyFileSync(path.join(sqlite, recentDb), path.join(sqlite, `scitex_cloud_dev_pre_restore_${old}.db`));
    fs.writeFileSync(path.join(sqlite, `scitex_cloud_dev_pre_restore_${old}.db-wal`), 'wal');

    const v = json(root, 'verify', '--skip-db');
    const check = v.checks.find((c: { name: string }) => c.name === 'leftovers');
    expect(check.status).toBe('warn');
    expect(check.found).toMatch(/4 leftover\(s\) of earlier restores use [\d.]+ MiB/);
    expect(json(root, 'status', '--skip-db').leftovers.items).toHaveLength(4);

    const dry = json(root, 'clean', '--older-than', '30d', '--dry-run');
    expect(dry.wouldRemove.map((l: { name: string }) => l.name).sort()).toEqual([`alice.pre_restore_${old}`, `scitex_cloud_dev_pre_restore_${old}.db`]);
    expect(dry.kept).toHaveLength(2);
    expect(fs.existsSync(path.join(safety, `alice.pre_restore_${old}`))).toBe(true);
    expect(run(root, 'clean', '--older-than', '30d').code).toBe(2); // no terminal, no --yes
    const real = json(root, 'clean', '--older-than', '30d', '--yes');
    expect(real.removed).toHaveLength(2);
    expect(fs.existsSync(path.join(safety, `alice.pre_restore_${old}`))).toBe(false);
    expect(fs.readdirSync(sqlite).filter((n) => n.includes(old))).toEqual([]);
    // The recent ones stay until they are old enough.
    expect(fs.existsSync(path.join(safety, recentCopy))).toBe(true);
    expect(fs.existsSync(path.join(sqlite, recentDb))).toBe(true);
    ok(root, 'clean', '--older-than', '0h', '--yes');
    expect(fs.existsSync(path.join(root, 'data/users/.~scitex-data/safety', recentCopy))).toBe(false);
    expect(json(root, 'verify', '--skip-db').checks.find((c: { name: string }) => c.name === 'leftovers').status).toBe('pass');
  });
});
