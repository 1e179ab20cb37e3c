import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { swapPaths, validateRestorePaths } from '../../src/core/restore/paths.js';
import { cli, tempDir } from '../helpers/cli.js';
import { makeUser, snapshotTree } from '../helpers/tree.js';

// `restore users --user alice --path proj/paper-1`: single paths, the same checks, hostile paths refused.
const work: string[] = [];
let template = '';
const run = (root: string, ...args: string[]) => cli(['--root', root, ...args]);
const ok = (root: string, ...args: string[]) => {
  const r = run(root, ...args);
  expect(r.code, r.stderr).toBe(0);
  return r;
};
const P = 'proj/neuro-analysis';

function copy(): { root: string; alice: string; users: string } {
  const root = tempDir('scitex-path-');
  work.push(root);
  execFileSync('cp', ['-a', `${template}/.`, root]);
  expect(cli(['--root', root, 'backup', 'users']).code).toBe(0); // this root's own set (a copied one names another root)
  return { root, users: path.join(root, 'data/users'), alice: path.join(root, 'data/users/alice') };
}

beforeAll(() => {
  template = tempDir('scitex-path-tpl-');
  expect(cli(['--root', template, 'init']).code).toBe(0);
  makeUser(path.join(template, 'data/users'), 'alice', 1);
  makeUser(path.join(template, 'data/users'), 'bob', 2);
}, 60_000);
afterAll(() => {
  for (const d of [template, ...work]) fs.rmSync(d, { recursive: true, force: true });
});

describe('restore users --path', () => {
  it('restores a file and a directory exactly, leaves the rest alone and keeps just the replaced paths', () => {
    const { root, alice } = copy();
    const before = snapshotTree(alice);
    fs.writeFileSync(path.join(alice, `${P}/scripts/analysis_1.py`), 'oops');
    fs.rmSync(path.join(alice, `${P}/data`), { recursive: true });
    fs.writeFileSync(path.join(alice, 'run.sh'), 'changed today, not restored');
    fs.writeFileSync(path.join(alice, `${P}/scripts/new-today.py`), 'new');
    const r = ok(root, '--json', 'restore', 'users', '--user', 'alice', '--path', `${P}/scripts/analysis_1.py`, '--path', `${P}/data/`, '--yes');
    const doc = JSON.parse(r.stdout);
    const after = snapshotTree(alice);
    for (const k of Object.keys(before).filter((k) => k.startsWith(`${P}/data`) || k === `${P}/scripts/analysis_1.py`)) expect(after[k]).toBe(before[k]);
    expect(fs.readFileSync(path.join(alice, 'run.sh'), 'utf8')).toBe('changed today, not restored');
    expect(fs.readFileSync(path.join(alice, `${P}/scripts/new-today.py`), 'utf8')).toBe('new');
    const safety = doc.users[0].safetyCopy as string;
    // Only the replaced path that existed live is in the safety copy.
    expect(snapshotTree(safety)).toEqual({ '': expect.any(String), proj: expect.any(String), [P]: expect.any(String), [`${P}/scripts`]: expect.any(String), [`${P}/scripts/analysis_1.py`]: expect.any(String) });
    expect(fs.readFileSync(path.join(safety, `${P}/scripts/analysis_1.py`), 'utf8')).toBe('oops');
    expect(doc.users[0].paths).toEqual([{ path: `${P}/data`, live: false }, { path: `${P}/scripts/analysis_1.py`, live: true }]);
  });

  it('a link in place of the restored path is moved aside, never followed', () => {
    const { root, alice } = copy();
    const outside = tempDir('scitex-outside-');
    work.push(outside);
    fs.writeFileSync(path.join(outside, 'keep.txt'), 'outside');
    fs.rmSync(path.join(alice, `${P}/data`), { recursive: true });
    fs.symlinkSync(outside, path.join(alice, `${P}/data`));
    ok(root, 'restore', 'users', '--user', 'alice', '--path', `${P}/data`, '--yes');
    expect(fs.lstatSync(path.join(alice, `${P}/data`)).isDirectory()).toBe(true);
    expect(fs.readdirSync(outside)).toEqual(['keep.txt']);
  });

  it('refuses hostile paths with exit 2 and changes nothing', () => {
    const { root, alice, users } = copy();
    const outside = tempDir('scitex-outside-');
    work.push(outside);
    fs.mkdirSync(path.join(outside, 'scripts'));
    fs.writeFileSync(path.join(outside, 'scripts/analysis_1.py'), 'outside');
    // The app's user replaced proj/neuro-analysis by a link to elsewhere.
    fs.renameSync(path.join(alice, P), path.join(alice, 'moved'));
    fs.symlinkSync(outside, path.join(alice, P));
    const snap = snapshotTree(users);
    const outsideSnap = snapshotTree(outside);
    for (const bad of ['/etc/passwd', '../bob', `${P}/../../bob`, 'a/./b', '', 'x\u0001y', `${P}/scripts/analysis_1.py`]) {
      const r = run(root, 'restore', 'users', '--user', 'alice', '--path', bad, '--yes');
      expect(r.code, `${JSON.stringify(bad)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/Refusing --path/);
    }
    expect(run(root, 'restore', 'users', '--user', 'alice', '--path', 'not/in/backup', '--yes').code).toBe(2);
    expect(run(root, 'restore', 'users', '--path', 'run.sh', '--yes').code).toBe(2); // --path needs --user
    expect(snapshotTree(users)).toEqual(snap);
    expect(snapshotTree(outside)).toEqual(outsideSnap);
    expect(fs.existsSync(path.join(users, '.~scitex-data', 'safety'))).toBe(false);
  });

  it('works with --to: only the named path is written there', () => {
    const { root, alice } = copy();
    const to = path.join(tempDir('scitex-to-'), 'out');
    work.push(path.dirname(to));
    const before = snapshotTree(path.join(alice, `${P}/scripts`));
    ok(root, 'restore', 'users', '--user', 'alice', '--path', `${P}/scripts`, '--to', to);
    const got = path.join(to, 'data/users/alice');
    expect(fs.readdirSync(got)).toEqual(['proj']);
    expect(snapshotTree(path.join(got, `${P}/scripts`))).toEqual(before);
  });

  it('the swap opens every component without following links (a link planted after the plan is refused)', () => {
    const { users } = copy();
    const staged = tempDir('scitex-staged-');
    const outside = tempDir('scitex-outside-');
    work.push(staged, outside);
    fs.mkdirSync(path.join(staged, 'proj/x'), { recursive: true });
    fs.writeFileSync(path.join(staged, 'proj/x/f'), 'restored');
    fs.rmSync(path.join(users, 'alice/proj'), { recursive: true });
    fs.symlinkSync(outside, path.join(users, 'alice/proj'));
    expect(() => swapPaths(staged, users, 'alice', ['proj/x'], null)).toThrow(/not a real directory/);
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(() => validateRestorePaths(['a\0b'])).toThrow(/NUL/);
    expect(validateRestorePaths(['a/b', 'a', 'c/'])).toEqual(['a', 'c']);
  });
});

describe('restore users: safety copies only for users that change', () => {
  it('an unchanged user is left as it is (same inode, no safety copy), a changed one is restored with one', () => {
    const { root, users } = copy();
    const bobIno = fs.statSync(path.join(users, 'bob')).ino;
    fs.writeFileSync(path.join(users, 'alice/run.sh'), 'changed');
    const r = ok(root, '--json', 'restore', 'users', '--yes');
    const doc = JSON.parse(r.stdout);
    const byName = Object.fromEntries(doc.users.map((u: { username: string }) => [u.username, u]));
    expect(byName.bob).toMatchObject({ unchanged: true, safetyCopy: null });
    expect(byName.alice.unchanged).toBeUndefined();
    expect(fs.readdirSync(path.join(users, '.~scitex-data/safety'))).toEqual([path.basename(byName.alice.safetyCopy)]);
    expect(fs.statSync(path.join(users, 'bob')).ino).toBe(bobIno);
    // The dry run says so up front.
    const dry = JSON.parse(ok(root, '--json', 'restore', 'users', '--dry-run').stdout);
    expect(dry.users.every((u: { unchanged?: boolean }) => u.unchanged)).toBe(true);
    expect(ok(root, 'restore', 'users', '--yes').stdout).toMatch(/alice: unchanged, left as it is \(no safety copy\)/);
  });
});
