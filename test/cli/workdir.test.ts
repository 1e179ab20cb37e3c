import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { makeUser } from '../helpers/tree.js';

// scitex-data's working folder (staging, safety copies) lives inside data/users so that swaps are renames,
// but the app and its scripts must never see it, and the app's user must not be able to redirect it.
let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function treeWithBackup(): void {
  root = tempDir();
  fs.chmodSync(root, 0o755);
  expect(cli(['--root', root, 'init']).code).toBe(0);
  makeUser(path.join(root, 'data/users'), 'alice');
  expect(cli(['--root', root, 'backup', 'users']).code).toBe(0);
  fs.writeFileSync(path.join(root, 'data/users/alice/changed.txt'), 'after the backup');
}

describe('the working folder', () => {
  it('stays out of the app\'s data/users/*/ loops (scripts/backup_workspaces.sh)', () => {
    treeWithBackup();
    expect(cli(['--root', root, 'restore', 'users', '--user', 'alice', '--yes']).code).toBe(0);
    // The safety copy exists, inside the working folder...
    expect(fs.readdirSync(path.join(root, 'data/users/.~scitex-data/safety'))).toHaveLength(1);
    // ...and the repository's loop sees only the users.
    const seen = execFileSync('bash', ['-c', 'cd "$1" && for d in data/users/*/; do echo "$d"; done', '_', root]).toString().trim().split('\n');
    expect(seen).toEqual(['data/users/alice/']);
  });

  it('a symlink planted at the working folder is refused: nothing chmodded, filled or moved through it', () => {
    treeWithBackup();
    const elsewhere = path.join(root, 'elsewhere');
    fs.mkdirSync(elsewhere, { mode: 0o755 });
    fs.symlinkSync(elsewhere, path.join(root, 'data/users/.~scitex-data'));
    const r = cli(['--root', root, 'restore', 'users', '--user', 'alice', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refusing to follow it/);
    expect(fs.readdirSync(elsewhere)).toEqual([]);
    expect(fs.statSync(elsewhere).mode & 0o777).toBe(0o755);
    expect(fs.readFileSync(path.join(root, 'data/users/alice/changed.txt'), 'utf8')).toBe('after the backup');
  });

  it('a working folder planted as a real directory by another user is refused too', () => {
    treeWithBackup();
    fs.mkdirSync(path.join(root, 'data/users/.~scitex-data'), { mode: 0o777 });
    fs.chmodSync(path.join(root, 'data/users/.~scitex-data'), 0o777);
    fs.chownSync(path.join(root, 'data/users/.~scitex-data'), 65534, 65534);
    const r = cli(['--root', root, 'restore', 'users', '--user', 'alice', '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/belongs to uid 65534/);
    expect(fs.statSync(path.join(root, 'data/users/.~scitex-data')).mode & 0o777).toBe(0o777);
  });
});

describe('the safety copy a restore announces', () => {
  it('is the one it makes (one plan, computed once)', () => {
    treeWithBackup();
    const r = cli(['--root', root, 'restore', 'users', '--user', 'alice', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    const announced = /current copy kept as (\S+)/.exec(r.stdout)?.[1];
    expect(announced).toBeTruthy();
    expect(fs.readFileSync(path.join(announced!, 'changed.txt'), 'utf8')).toBe('after the backup');
  });
});
