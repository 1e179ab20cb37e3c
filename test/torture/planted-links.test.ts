import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, cliAsync, tempDir } from '../helpers/cli.js';
import { trials, TRIALS } from './report.js';

// The app's user can write data/ and swap any directory there for a symlink at any instant; a root
// backup must never be steered out of the user's tree by that (it would put another file's contents,
// e.g. /etc/shadow, into an archive the user can restore and read).
const SECRET = 'TOPSECRET-not-alices';
let root = '';
let flipper: ReturnType<typeof spawn> | null = null;
afterEach(() => {
  flipper?.kill('SIGKILL');
  flipper = null;
  fs.rmSync(root, { recursive: true, force: true });
});

/** Swaps alice/proj for a symlink to `outside` and back, as fast as it can, until killed. */
function startFlipper(users: string, outside: string): ReturnType<typeof spawn> {
  const code = `
    const fs = require('fs'); const [proj, real, outside] = process.argv.slice(1);
    const hold = () => { const end = Date.now() + Math.random() * 3; while (Date.now() < end); };
    for (;;) { try { fs.renameSync(proj, real); fs.symlinkSync(outside, proj); hold(); fs.unlinkSync(proj); fs.renameSync(real, proj); hold(); } catch {} }`;
  return spawn(process.execPath, ['-e', code, path.join(users, 'alice/proj'), path.join(users, 'alice/proj.real'), outside], { stdio: 'ignore' });
}

/** Every member's contents of every archive in every set, concatenated. */
function archivedText(backups: string): string {
  let text = '';
  for (const set of fs.readdirSync(backups).filter((n) => n.startsWith('users_'))) {
    for (const a of fs.readdirSync(path.join(backups, set)).filter((n) => n.endsWith('.tar.gz'))) {
      text += execFileSync('tar', ['-xzOf', path.join(backups, set, a)], { maxBuffer: 1 << 28 }).toString('latin1');
    }
  }
  return text;
}

describe('planted links', () => {
  it('a directory swapped for a symlink during the walk never brings outside files into an archive', async () => {
    root = tempDir();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    const users = path.join(root, 'data/users');
    const outside = path.join(root, 'outside');
    fs.mkdirSync(outside);
    fs.mkdirSync(path.join(users, 'alice/proj'), { recursive: true });
    // Same names inside and outside, so a followed link looks exactly like the real directory.
    for (let i = 0; i < 200; i++) {
      fs.writeFileSync(path.join(outside, `f${i}`), SECRET);
      fs.writeFileSync(path.join(users, `alice/proj/f${i}`), 'harmless-and-alices!'); // same size as SECRET
    }
    flipper = startFlipper(users, outside);
    await trials('directory swapped for a symlink mid-backup', Math.max(4, TRIALS), 'the walk and the reads stay inside the user\'s tree: no outside byte in any archive', async () => {
      const r = await cliAsync(['--root', root, '--json', 'backup', 'users']).done;
      expect([0, 3], r.stdout.slice(0, 600)).toContain(r.code); // 3: the tree kept changing, the set is marked partial
      expect(archivedText(path.join(root, 'data/db/backups'))).not.toContain(SECRET);
    });
  });

  it('links planted at the files a root run writes are never followed', async () => {
    root = tempDir();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    const victim = path.join(root, 'victim');
    const plants: [string, () => void, number][] = [
      ['.info symlink', () => fs.symlinkSync(victim, path.join(root, 'data/.scitex-data.lock.info')), 0],
      ['lock symlink', () => fs.symlinkSync(victim, path.join(root, 'data/.scitex-data.lock')), 1],
      ['lock hard link', () => fs.linkSync(victim, path.join(root, 'data/.scitex-data.lock')), 1],
      ['backup dir symlink', () => {
        fs.rmSync(path.join(root, 'data/db/backups'), { recursive: true, force: true });
        fs.symlinkSync(path.dirname(victim), path.join(root, 'data/db/backups'));
      }, 1],
    ];
    await trials('links planted at the lock, its .info and the backup directory', plants.length, 'never written, chmodded or followed: replaced, or refused with exit 1', (i) => {
      for (const p of ['data/.scitex-data.lock', 'data/.scitex-data.lock.info', 'data/db/backups']) fs.rmSync(path.join(root, p), { recursive: true, force: true });
      fs.mkdirSync(path.join(root, 'data/db/backups'), { mode: 0o700 });
      fs.writeFileSync(victim, 'precious\n', { mode: 0o644 });
      const [, plant, code] = plants[i]!;
      plant();
      const before = fs.readdirSync(root).sort();
      const r = cli(['--root', root, 'backup', 'users']);
      expect(r.code).toBe(code);
      expect(fs.readFileSync(victim, 'utf8')).toBe('precious\n');
      expect(fs.statSync(victim).mode & 0o777).toBe(0o644);
      expect(fs.readdirSync(root).sort()).toEqual(before);
    });
  });
});
