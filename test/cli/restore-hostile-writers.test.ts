import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aliceAndBob } from '../helpers/apptree.js';
import { cli, tempDir } from '../helpers/cli.js';
import { BOB, CORPUS, gnuTar, plantMultiSet, pythonTar, writeFiles } from '../helpers/hostile-writers.js';
import { makeUser, snapshotTree } from '../helpers/tree.js';

const A = 'data/users/alice';
const B = 'data/users/bob';

let root = '';
let outside = '';
let liveBefore: Record<string, string>;
beforeAll(() => {
  ({ root, outside } = aliceAndBob());
  liveBefore = snapshotTree(path.join(root, 'data'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

/** Live data (backups aside) exactly as before, nothing planted outside. */
function untouched(): void {
  const now = snapshotTree(path.join(root, 'data'));
  const strip = (s: Record<string, string>) => Object.fromEntries(Object.entries(s).filter(([k]) => !k.startsWith('db/backups') && !k.startsWith('.scitex-data.lock')));
  expect(strip(now)).toEqual(strip(liveBefore));
  expect(fs.readdirSync(outside)).toEqual([]);
  expect(fs.existsSync('/tmp/scitex-pwned')).toBe(false);
}

describe('restore users refuses archives that two tar readers read differently (other writers)', () => {
  it.each(CORPUS.map(([n, f], i) => [n, f, i] as const))('%s', (_name, build, i) => {
    const set = plantMultiSet(path.join(root, 'data/db/backups'), `20260401_${String(i).padStart(6, '0')}`, { alice: build(), bob: BOB() });
    try {
      const r = cli(['--root', root, 'restore', 'users', '--from', set, '--yes']);
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/^error: (Refusing|Extracting) alice\.tar\.gz/)]);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      untouched();
    } finally {
      fs.rmSync(set, { recursive: true, force: true });
    }
  });

  it('control: clean archives from Python tarfile and GNU tar --format=pax restore (with --to)', () => {
    const alice = gnuTar((s) => writeFiles(s, { [`${A}/notes/a.txt`]: 'a', [`${A}/${'long-'.repeat(30)}.txt`]: 'long' }), ['--format=pax', '--numeric-owner', A]);
    const set = plantMultiSet(path.join(root, 'data/db/backups'), '20260402_000000', { alice, bob: BOB() });
    const to = path.join(os.tmpdir(), `scitex-to-${process.pid}`);
    try {
      const r = cli(['--root', root, 'restore', 'users', '--from', set, '--to', to, '--yes']);
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(fs.readFileSync(path.join(to, A, 'notes/a.txt'), 'utf8')).toBe('a');
      expect(fs.readFileSync(path.join(to, B, 'notes.txt'), 'utf8')).toBe('bob');
      untouched();
    } finally {
      fs.rmSync(set, { recursive: true, force: true });
      fs.rmSync(to, { recursive: true, force: true });
    }
  });
});

describe('restored workspaces keep their owners; an archive cannot hand a workspace to root', () => {
  const asRoot = process.getuid?.() === 0;
  let r2 = '';
  const C = 'data/users/carol';
  beforeAll(() => {
    if (!asRoot) return;
    r2 = tempDir();
    expect(cli(['--root', r2, 'init']).code).toBe(0);
    const home = makeUser(path.join(r2, 'data/users'), 'carol');
    // The app runs as an unprivileged user and owns data/, data/users and the workspace; some files
    // inside belong to uid 1000 (makeUser) and to root, as real trees do.
    fs.writeFileSync(path.join(home, 'root-owned.txt'), 'root\n');
    for (const p of ['data', 'data/users']) fs.chownSync(path.join(r2, p), 65534, 65534);
    const walk = (p: string) => {
      const st = fs.lstatSync(p);
      if (!p.endsWith('owned-by-1000.txt') && !p.endsWith('root-owned.txt')) fs.lchownSync(p, 65534, 65534);
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
    };
    walk(home);
  });
  afterAll(() => {
    if (r2) fs.rmSync(r2, { recursive: true, force: true });
  });

  it('restore users (as root) gives back every owner: the workspace 65534, files of uid 1000 and root keep theirs', (ctx) => {
    if (!asRoot) ctx.skip();
    const before = snapshotTree(path.join(r2, C));
    expect(before['']).toBe('dir 755 65534:65534');
    expect(before['owned-by-1000.txt']).toMatch(/ 1000:1000 /);
    expect(before['root-owned.txt']).toMatch(/ 0:0 /);
    expect(cli(['--root', r2, 'backup', 'users']).code).toBe(0);
    // Gone (the incident), then damaged in place: both come back with the same owners.
    fs.rmSync(path.join(r2, C), { recursive: true });
    let r = cli(['--root', r2, 'restore', 'users', '--user', 'carol', '--yes']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(snapshotTree(path.join(r2, C))).toEqual(before);
    fs.writeFileSync(path.join(r2, C, 'run.sh'), 'damaged');
    r = cli(['--root', r2, 'restore', 'users', '--user', 'carol', '--yes']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(snapshotTree(path.join(r2, C))).toEqual(before);
  });

  it.each([
    ['a workspace handed to root', `member(t, '${C}', type=tarfile.DIRTYPE, mode=0o755, uid=0, gid=0)`, /would belong to 0:0, who owns no app data here/],
    ['a setuid file of the app user', `member(t, '${C}', type=tarfile.DIRTYPE, mode=0o755, uid=65534, gid=65534), member(t, '${C}/sh', '#!/bin/sh', mode=0o4755, uid=65534, gid=65534)`, /setuid/],
    ['a workspace without its own directory entry (tar would invent it, owned by root)', `member(t, '${C}/notes.txt', 'x', uid=65534, gid=65534)`, /no entry for data\/users\/carol/],
  ])('%s is refused', (_n, members, reason, ctx) => {
    if (!asRoot) ctx.skip();
    const before = snapshotTree(path.join(r2, 'data/users'));
    const set = plantMultiSet(path.join(r2, 'data/db/backups'), '20260501_000000', { carol: pythonTar(`tf(lambda t: (${members},))`) });
    try {
      const r = cli(['--root', r2, 'restore', 'users', '--from', set, '--yes']);
      expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(reason)]);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(snapshotTree(path.join(r2, 'data/users'))).toEqual(before);
    } finally {
      fs.rmSync(set, { recursive: true, force: true });
    }
  });
});
