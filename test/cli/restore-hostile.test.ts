import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aliceAndBob } from '../helpers/apptree.js';
import { cli } from '../helpers/cli.js';
import { craftTarGz, plantSet, type CraftMember } from '../helpers/hostile.js';
import { snapshotTree } from '../helpers/tree.js';
import { record } from '../torture/report.js';

let root = '';
let outside = '';
let liveBefore: Record<string, string>;
beforeAll(() => {
  ({ root, outside } = aliceAndBob());
  liveBefore = snapshotTree(path.join(root, 'data/users'));
});
let refused = 0;
afterAll(() => {
  record('hostile archives for restore users (corpus + gzip bomb + tampered manifest + flipped byte)', CORPUS.length + 3, refused, 'refused with one line before anything live is touched; nothing written outside the target');
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

const U = 'data/users/alice';
const deep = Array.from({ length: 10_000 }, () => 'd').join('/');
const CORPUS: [string, CraftMember[], RegExp][] = [
  ['absolute path', [{ path: `${U}/ok.txt`, body: 'x' }, { path: '/tmp/scitex-pwned', body: 'x' }], /absolute/],
  ['.. segments', [{ path: `${U}/../../../../tmp/scitex-pwned`, body: 'x' }], /"\.\." segment/],
  ['symlink then file through it', [{ path: `${U}/link`, type: 'SymbolicLink', linkpath: '../bob' }, { path: `${U}/link/pwned.txt`, body: 'x' }], /points outside/],
  ['in-tree symlink then file through it', [{ path: `${U}/shared`, type: 'Directory' }, { path: `${U}/l`, type: 'SymbolicLink', linkpath: 'shared' }, { path: `${U}/l/pwned.txt`, body: 'x' }], /goes through or replaces a symlink/],
  ['absolute symlink', [{ path: `${U}/etc`, type: 'SymbolicLink', linkpath: '/etc' }], /absolute path/],
  ['hard link to /etc/passwd', [{ path: `${U}/passwd`, type: 'Link', linkpath: '/etc/passwd' }], /absolute|hard link/],
  ['hard link to another user', [{ path: `${U}/stolen`, type: 'Link', linkpath: 'data/users/bob/private.key' }], /hard link/],
  ['device node', [{ path: `${U}/null`, type: 'CharacterDevice' }], /CharacterDevice|character device/],
  ['fifo', [{ path: `${U}/fifo`, type: 'FIFO' }], /FIFO/],
  ['member for another user', [{ path: 'data/users/bob/planted.txt', body: 'x' }], /outside data\/users\/alice/],
  ['name with a newline', [{ path: `${U}/evil\nname.txt`, body: 'x' }], /control characters/],
  ['10,000-deep path', [{ path: `${U}/${deep}/f`, body: 'x' }], /longer than|deeper than/],
];

describe('restore users refuses hostile archives (with a matching, tampered manifest)', () => {
  it.each(CORPUS)('%s', (name, members, reason) => {
    const ts = `2026010${CORPUS.findIndex((c) => c[0] === name) % 10}_0${String(CORPUS.findIndex((c) => c[0] === name)).padStart(5, '0')}`;
    const set = plantSet(path.join(root, 'data/db/backups'), ts, 'alice', craftTarGz(members));
    try {
      const r = cli(['--root', root, 'restore', 'users', '--from', set, '--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(reason);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(fs.existsSync('/tmp/scitex-pwned')).toBe(false);
      expect(snapshotTree(path.join(root, 'data/users'))).toEqual(liveBefore);
      expect(fs.readdirSync(outside)).toEqual([]);
      refused++;
    } finally {
      fs.rmSync(set, { recursive: true, force: true });
    }
  });

  it('a gzip bomb (declared far beyond the manifest) is refused before it fills the disk', () => {
    // 64 MiB of zeros compresses to ~64 KiB; the manifest promises 100 KB.
    const bomb = craftTarGz([{ path: `${U}/zeros.bin`, size: 64 << 20 }]);
    expect(bomb.length).toBeLessThan(1 << 20);
    const set = plantSet(path.join(root, 'data/db/backups'), '20260201_000000', 'alice', bomb);
    const r = cli(['--root', root, 'restore', 'users', '--from', set, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/decompression/);
    expect(snapshotTree(path.join(root, 'data/users'))).toEqual(liveBefore);
    fs.rmSync(set, { recursive: true, force: true });
    refused++;
  });

  it('a manifest naming an archive outside its set, or a flipped byte, is refused', () => {
    const good = craftTarGz([{ path: `${U}/ok.txt`, body: 'x' }]);
    const set = plantSet(path.join(root, 'data/db/backups'), '20260301_000000', 'alice', good);
    const m = JSON.parse(fs.readFileSync(path.join(set, 'MANIFEST.json'), 'utf8'));
    m.users[0].archive = '../../../etc/passwd';
    fs.writeFileSync(path.join(set, 'MANIFEST.json'), JSON.stringify(m));
    const r = cli(['--root', root, 'restore', 'users', '--from', set, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/outside its set/);
    fs.rmSync(set, { recursive: true, force: true });
    const set2 = plantSet(path.join(root, 'data/db/backups'), '20260302_000000', 'alice', good);
    const bytes = fs.readFileSync(path.join(set2, 'alice.tar.gz'));
    bytes[20] ^= 1;
    fs.writeFileSync(path.join(set2, 'alice.tar.gz'), bytes);
    const r2 = cli(['--root', root, 'restore', 'users', '--from', set2, '--yes']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/does not match its recorded checksum/);
    expect(snapshotTree(path.join(root, 'data/users'))).toEqual(liveBefore);
    fs.rmSync(set2, { recursive: true, force: true });
    refused += 2;
  });
});
