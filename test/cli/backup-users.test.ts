import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { makeUser, snapshotTree } from '../helpers/tree.js';

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
const USERS = ['alice', 'bob.smith', 'carol@lab.org', 'dave+test', 'jürgen', 'backups'];

function setup(): { users: string; snap: Record<string, Record<string, string>> } {
  root = tempDir();
  expect(cli(['--root', root, 'init']).code).toBe(0);
  const users = path.join(root, 'data/users');
  const snap: Record<string, Record<string, string>> = {};
  USERS.forEach((u, i) => {
    makeUser(users, u, i + 1);
    snap[u] = snapshotTree(path.join(users, u));
  });
  return { users, snap };
}

const backup = (...args: string[]) => {
  const r = cli(['--root', root, '--json', 'backup', 'users', ...args]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { set: string; artifacts: { path: string; sha256: string }[] };
};

describe('backup users / restore users', () => {
  it('writes one private archive per user that plain GNU tar restores exactly', () => {
    const { snap } = setup();
    const doc = backup();
    expect(path.basename(doc.set)).toMatch(/^users_\d{8}_\d{6}$/);
    expect(fs.statSync(doc.set).mode & 0o777).toBe(0o700);
    expect(doc.artifacts.map((a) => path.basename(a.path)).sort()).toEqual(USERS.map((u) => `${u}.tar.gz`).sort());
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: doc.set }).toString().match(/: OK/g)).toHaveLength(USERS.length);
    const manifest = JSON.parse(fs.readFileSync(path.join(doc.set, 'MANIFEST.json'), 'utf8'));
    expect(manifest.users.find((u: { username: string }) => u.username === 'alice').files).toBeGreaterThan(5);
    for (const a of doc.artifacts) expect(fs.statSync(a.path).mode & 0o777).toBe(0o600);
    const names = execFileSync('tar', ['-tzf', path.join(doc.set, 'jürgen.tar.gz')]).toString().trim().split('\n');
    expect(names.every((n) => n.startsWith('data/users/jürgen/'))).toBe(true);
    const scratch = tempDir();
    try {
      execFileSync('tar', ['-xzf', path.join(doc.set, 'alice.tar.gz'), '--same-owner', '-p'], { cwd: scratch });
      expect(snapshotTree(path.join(scratch, 'data/users/alice'))).toEqual(snap.alice);
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('restores a damaged user and a deleted user exactly, leaving the others untouched', () => {
    const { users, snap } = setup();
    backup();
    fs.writeFileSync(path.join(users, 'alice/proj/neuro-analysis/scripts/analysis_1.py'), 'oops');
    fs.rmSync(path.join(users, 'alice/shared'), { recursive: true });
    fs.rmSync(path.join(users, 'bob.smith'), { recursive: true });
    fs.writeFileSync(path.join(users, 'dave+test/new-today.txt'), 'keep me');
    const daveNow = snapshotTree(path.join(users, 'dave+test'));
    const dry = cli(['--root', root, '--json', 'restore', 'users', '--user', 'alice', '--dry-run']);
    const d = JSON.parse(dry.stdout).users[0].diff;
    expect(d.changed).toBeGreaterThanOrEqual(1);
    expect(d.missing).toBeGreaterThanOrEqual(2);
    expect(snapshotTree(path.join(users, 'dave+test'))).toEqual(daveNow);
    const one = cli(['--root', root, '--json', 'restore', 'users', '--user', 'alice', '--yes']);
    expect(one.code, one.stderr).toBe(0);
    expect(snapshotTree(path.join(users, 'alice'))).toEqual(snap.alice);
    expect(fs.existsSync(path.join(users, 'bob.smith'))).toBe(false); // not named: not touched
    expect(snapshotTree(path.join(users, 'dave+test'))).toEqual(daveNow);
    const safety = JSON.parse(one.stdout).users[0].safetyCopy as string;
    expect(fs.readFileSync(path.join(safety, 'proj/neuro-analysis/scripts/analysis_1.py'), 'utf8')).toBe('oops');
    const all = cli(['--root', root, 'restore', 'users', '--yes']);
    expect(all.code, all.stderr).toBe(0);
    for (const u of USERS) expect(snapshotTree(path.join(users, u))).toEqual(snap[u]);
  });

  it('nightly run on an unchanged tree hard-links archives; a change re-archives only that user', () => {
    const { users } = setup();
    const first = backup();
    const second = backup();
    for (const a of second.artifacts) {
      const prev = first.artifacts.find((x) => path.basename(x.path) === path.basename(a.path))!;
      expect(fs.statSync(a.path).ino).toBe(fs.statSync(prev.path).ino);
    }
    fs.appendFileSync(path.join(users, 'alice/shared/refs.bib'), '% edited\n');
    const third = backup();
    const changed = third.artifacts.filter((a) => fs.statSync(a.path).ino !== fs.statSync(second.artifacts.find((x) => path.basename(x.path) === path.basename(a.path))!.path).ino);
    expect(changed.map((a) => path.basename(a.path))).toEqual(['alice.tar.gz']);
    // Each set stays complete on its own after the older ones are deleted.
    fs.rmSync(first.set, { recursive: true });
    fs.rmSync(second.set, { recursive: true });
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: third.set }).toString().match(/: OK/g)).toHaveLength(USERS.length);
  });

  it('--to extracts elsewhere without touching live data; zstd archives restore too', () => {
    const { users, snap } = setup();
    const z = backup('--compression', 'zstd', '--user', 'alice');
    expect(z.artifacts[0]!.path).toMatch(/alice\.tar\.zst$/);
    fs.rmSync(path.join(users, 'alice/run.sh'));
    const live = snapshotTree(path.join(users, 'alice'));
    const out = tempDir();
    try {
      const r = cli(['--root', root, 'restore', 'users', '--user', 'alice', '--to', out]);
      expect(r.code, r.stderr).toBe(0);
      expect(snapshotTree(path.join(out, 'data/users/alice'))).toEqual(snap.alice);
      expect(snapshotTree(path.join(users, 'alice'))).toEqual(live);
      const plain = tempDir();
      execFileSync('tar', ['--zstd', '-xf', z.artifacts[0]!.path, '-p', '--same-owner'], { cwd: plain });
      expect(snapshotTree(path.join(plain, 'data/users/alice'))).toEqual(snap.alice);
      fs.rmSync(plain, { recursive: true, force: true });
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('a file that keeps changing while read: retried, then a partial set and exit 3 naming it', async () => {
    const { users } = setup();
    const busy = path.join(users, 'alice/proj/neuro-analysis/data/live.log');
    fs.writeFileSync(busy, 'start\n'.repeat(2_000_000)); // large: reading it takes long enough that the writer's appends land in the window on a loaded machine
    const writer = spawn('bash', ['-c', `while true; do echo line >> '${busy}'; done`], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100));
      const r = cli(['--root', root, '--json', 'backup', 'users', '--user', 'alice']);
      expect(r.code).toBe(3);
      const doc = JSON.parse(r.stdout);
      expect(doc.partial).toBe(true);
      expect(JSON.stringify(doc.warnings)).toContain('proj/neuro-analysis/data/live.log');
      const list = JSON.parse(cli(['--root', root, '--json', 'list', 'users']).stdout);
      expect(list.backups[0].partial).toBe(true);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('sockets and fifos are skipped with a note; bad --user is refused (exit 2)', () => {
    const { users } = setup();
    execFileSync('mkfifo', [path.join(users, 'alice/temp/pipe')]);
    const r = cli(['--root', root, 'backup', 'users', '--user', 'alice']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/skipped fifo data\/users\/alice\/temp\/pipe/);
    expect(cli(['--root', root, 'backup', 'users', '--user', '../etc']).code).toBe(2);
    expect(cli(['--root', root, 'backup', 'users', '--user', 'nobody']).code).toBe(2);
  });
});

describe('backup keeps going where it should', () => {
  it('a failed database backup still backs up the users, then exits 1 and skips retention', () => {
    root = tempDir();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    makeUser(path.join(root, 'data/users'), 'alice');
    fs.writeFileSync(path.join(root, 'data/db/backups/scitex_cloud_dev_20200101_000000.db'), 'old');
    const r = cli(['--root', root, 'backup', '--keep-daily', '1'], { env: { SCITEX_CLOUD_USE_SQLITE_DEV: '1' } }); // no database file
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error: .*does not exist/);
    const names = fs.readdirSync(path.join(root, 'data/db/backups'));
    expect(names.some((n) => n.startsWith('users_'))).toBe(true);
    expect(names).toContain('scitex_cloud_dev_20200101_000000.db'); // retention did not run
  });
});
