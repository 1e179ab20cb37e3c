import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appTree, okOn } from '../helpers/apptree.js';
import { tempDir } from '../helpers/cli.js';
import { snapshotTree } from '../helpers/tree.js';

// Workspaces hold symlinks that point outside them (a venv's bin/python -> /usr/bin/python3, a shared dataset).
// A restore refuses such links in an archive (issue 5: a hostile archive must not plant them), so a backup that
// stored them made the whole user unrestorable and failed `verify --backups`. They are left out with a note.
describe('symlinks that point outside the workspace', () => {
  it('are left out of the archive with a note; the set verifies and restores; restore names what it lacks', () => {
    const root = appTree(['alice', 'bob']);
    const alice = path.join(root, 'data/users/alice');
    fs.mkdirSync(path.join(alice, 'venv/bin'), { recursive: true });
    fs.symlinkSync('/usr/bin/python3', path.join(alice, 'venv/bin/python'));
    fs.symlinkSync('../../bob', path.join(alice, 'venv/bob'));
    fs.symlinkSync('venv/bin', path.join(alice, 'tools')); // inside: kept
    fs.symlinkSync('tools/../../../etc', path.join(alice, 'chain')); // through an inside link, then out
    fs.writeFileSync(path.join(alice, 'notes.txt'), 'mine');
    fs.symlinkSync('notes.txt', path.join(alice, 'notes-link')); // inside: kept
    const b = okOn(root, 'backup');
    expect(b.stdout + b.stderr).toMatch(/skipped symlink to \/usr\/bin\/python3, outside the workspace data\/users\/alice\/venv\/bin\/python/);
    const v = okOn(root, 'verify', '--backups');
    expect(v.stdout).toMatch(/PASS\s+backups\.readable/);
    const set = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => n.startsWith('users_'))!;
    const m = JSON.parse(fs.readFileSync(path.join(root, 'data/db/backups', set, 'MANIFEST.json'), 'utf8'));
    expect(m.skipped.filter((s: { user: string }) => s.user === 'alice').map((s: { path: string }) => s.path).sort()).toEqual(['chain', 'venv/bin/python', 'venv/bob']);
    const out = tempDir();
    const r = okOn(root, 'restore', 'users', '--user', 'alice', '--to', out, '--yes');
    expect(r.stderr).toMatch(/left out 3 symlink\(s\) of alice that point outside the workspace.*venv\/bin\/python -> \/usr\/bin\/python3/);
    const want = snapshotTree(alice);
    for (const k of ['venv/bin/python', 'venv/bob', 'chain']) delete want[k];
    expect(snapshotTree(path.join(out, 'data/users/alice'))).toEqual(want);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('an archive from before links were left out (its manifest lists none) is not reused for an unchanged user', () => {
    const root = appTree(['alice']);
    fs.symlinkSync('/etc/hostname', path.join(root, 'data/users/alice/host'));
    okOn(root, 'backup', 'users');
    const dir = path.join(root, 'data/db/backups');
    const set = fs.readdirSync(dir).find((n) => n.startsWith('users_'))!;
    const file = path.join(dir, set, 'MANIFEST.json');
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    m.skipped = [];
    fs.writeFileSync(file, JSON.stringify(m));
    const again = JSON.parse(okOn(root, '--json', 'backup', 'users').stdout);
    expect(again.artifacts).toHaveLength(1);
    const m2 = JSON.parse(fs.readFileSync(path.join(again.set as string, 'MANIFEST.json'), 'utf8'));
    expect(m2.users[0].reused).toBe(false);
    // With matching records, the next run reuses it.
    const third = JSON.parse(okOn(root, '--json', 'backup', 'users').stdout);
    expect(JSON.parse(fs.readFileSync(path.join(third.set as string, 'MANIFEST.json'), 'utf8')).users[0].reused).toBe(true);
  });
});
