import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import type { Member } from '../../src/adapters/tarreader.js';
import { StrictTarScanner } from '../../src/adapters/tarstrict.js';
import { checkStaged } from '../../src/core/restore/stagecheck.js';
import { cli, tempDir } from '../helpers/cli.js';
import { makeUser } from '../helpers/tree.js';

let dir = '';
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A staging directory as GNU tar would leave it, and the member list the strict reader accepted. */
function staged(): { cwd: string; members: Map<string, Member> } {
  dir = tempDir();
  const cwd = path.join(dir, 'stage');
  const top = path.join(cwd, 'data/users/alice');
  fs.mkdirSync(path.join(top, 'sub'), { recursive: true });
  fs.writeFileSync(path.join(top, 'sub/a.txt'), 'abc');
  fs.symlinkSync('sub/a.txt', path.join(top, 'l'));
  const own = (p: string) => {
    const st = fs.lstatSync(path.join(cwd, p));
    return { mode: st.isSymbolicLink() ? 0o777 : st.mode & 0o7777, uid: st.uid, gid: st.gid };
  };
  const members = new Map<string, Member>([
    ['data/users/alice', { path: 'data/users/alice/', type: 'Directory', size: 0, ...own('data/users/alice') }],
    ['data/users/alice/sub', { path: 'data/users/alice/sub/', type: 'Directory', size: 0, ...own('data/users/alice/sub') }],
    ['data/users/alice/sub/a.txt', { path: 'data/users/alice/sub/a.txt', type: 'File', size: 3, ...own('data/users/alice/sub/a.txt') }],
    ['data/users/alice/l', { path: 'data/users/alice/l', type: 'SymbolicLink', size: 0, linkpath: 'sub/a.txt', ...own('data/users/alice/l') }],
  ]);
  return { cwd, members };
}

describe('the staged result is compared with the checked headers (whatever GNU tar made of them)', () => {
  it('accepts a faithful extraction', () => {
    const { cwd, members } = staged();
    expect(checkStaged(cwd, 'alice', members, null)).toBeNull();
  });
  it('refuses a member GNU tar wrote into another user, or beside data/', () => {
    let { cwd, members } = staged();
    fs.mkdirSync(path.join(cwd, 'data/users/bob'));
    expect(checkStaged(cwd, 'alice', members, null)).toMatch(/GNU tar wrote "data\/users\/bob", outside data\/users\/alice/);
    fs.rmSync(dir, { recursive: true });
    ({ cwd, members } = staged());
    fs.writeFileSync(path.join(cwd, 'etc'), '');
    expect(checkStaged(cwd, 'alice', members, null)).toMatch(/GNU tar wrote "etc"/);
  });
  it('refuses a renamed member (extracted under another name inside the workspace)', () => {
    const { cwd, members } = staged();
    fs.renameSync(path.join(cwd, 'data/users/alice/sub/a.txt'), path.join(cwd, 'data/users/alice/sub/.bashrc'));
    expect(checkStaged(cwd, 'alice', members, null)).toMatch(/extracted "data\/users\/alice\/sub\/.bashrc", which no checked member names/);
  });
  it('refuses another size, type or link target than the header said', () => {
    let { cwd, members } = staged();
    fs.appendFileSync(path.join(cwd, 'data/users/alice/sub/a.txt'), 'more');
    expect(checkStaged(cwd, 'alice', members, null)).toMatch(/wrote 7 bytes .* says 3/);
    fs.rmSync(dir, { recursive: true });
    ({ cwd, members } = staged());
    fs.rmSync(path.join(cwd, 'data/users/alice/l'));
    fs.symlinkSync('sub', path.join(cwd, 'data/users/alice/l'));
    expect(checkStaged(cwd, 'alice', members, null)).toMatch(/point to "sub", but its header says "sub\/a.txt"/);
  });
  it('refuses a file that shares its inode with a file outside the workspace', () => {
    const { cwd, members } = staged();
    fs.linkSync(path.join(cwd, 'data/users/alice/sub/a.txt'), path.join(dir, 'outside.txt'));
    expect(checkStaged(cwd, 'alice', members, null)).toMatch(/shares its inode with a file outside/);
  });
  it('refuses a workspace owned by someone who owns no app data here (root runs)', (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip();
    const { cwd, members } = staged();
    expect(checkStaged(cwd, 'alice', members, { uids: new Set([65534]), gids: new Set([65534]) })).toMatch(/would belong to 0:0/);
    expect(checkStaged(cwd, 'alice', members, { uids: new Set([0]), gids: new Set([0]) })).toBeNull();
  });
});

describe('the strict reader', () => {
  it('reads our own archives identically whatever the chunk boundaries', () => {
    dir = tempDir();
    expect(cli(['--root', dir, 'init']).code).toBe(0);
    const home = makeUser(path.join(dir, 'data/users'), 'alice');
    fs.mkdirSync(path.join(home, 'x'.repeat(90), 'y'.repeat(90)), { recursive: true });
    fs.writeFileSync(path.join(home, 'x'.repeat(90), 'y'.repeat(90), 'ü'.repeat(60)), 'long names take a pax header');
    expect(cli(['--root', dir, 'backup', 'users']).code).toBe(0);
    const set = fs.readdirSync(path.join(dir, 'data/db/backups')).find((n) => n.startsWith('users_'))!;
    const tar = zlib.gunzipSync(fs.readFileSync(path.join(dir, 'data/db/backups', set, 'alice.tar.gz')));
    const read = (sizes: () => number) => {
      const out: string[] = [];
      const s = new StrictTarScanner((m) => (out.push(`${m.type} ${m.path} ${m.size} ${m.mode} ${m.uid}:${m.gid} ${m.linkpath ?? ''}`), null));
      for (let i = 0; i < tar.length; ) {
        const n = Math.max(1, sizes());
        expect(s.push(tar.subarray(i, i + n))).toBeNull();
        i += n;
      }
      expect(s.end()).toBeNull();
      return out;
    };
    const whole = read(() => tar.length);
    expect(whole.some((l) => l.includes('ü'.repeat(60)))).toBe(true);
    expect(read(() => 1)).toEqual(whole);
    let seed = 7;
    expect(read(() => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 1500)).toEqual(whole);
    // GNU tar lists the same names.
    const gnu = execFileSync('tar', ['-t', '-f', '-'], { input: tar }).toString().trim().split('\n').map((n) => n.replace(/\/$/, ''));
    expect(whole.map((l) => l.split(' ')[1]!.replace(/\/$/, ''))).toEqual(gnu);
  });
});
