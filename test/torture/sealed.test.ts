import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliAsync, tempDir } from '../helpers/cli.js';
import { appTree, SQLITE_ENV } from '../helpers/apptree.js';
import { ageKey } from '../helpers/offsite.js';
import { snapshotTree } from '../helpers/tree.js';
import { trials, TRIALS } from './report.js';

// Sealed backups (`--encrypt-local`) killed at random instants: the promise is that the backup directory never
// holds plaintext once a run has finished, nothing half-made looks published, and a re-run completes.
let keys = '';
let key = '';
let pub = '';
let root = '';
beforeAll(() => {
  keys = tempDir('scitex-keys-');
  ({ key, pub } = ageKey(keys));
  root = appTree(['alice', 'bob', 'carol']);
  // Incompressible bulk: age and the archive writer take long enough for a kill to land inside them.
  for (const u of ['alice', 'bob', 'carol']) fs.writeFileSync(path.join(root, 'data/users', u, 'bulk.bin'), crypto.randomBytes(6 << 20));
});
afterAll(() => {
  fs.rmSync(keys, { recursive: true, force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

const dir = () => path.join(root, 'data/db/backups');
const sealedRun = () => ['--root', root, 'backup', '--encrypt-local', '--encrypt-to', pub];

/** Files in the backup directory that start like a format we write in plaintext (tar, gzip, SQLite, pg_dump). */
function plaintext(): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir(), { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || e.name.startsWith('.scitex-data')) continue; // our lock is an (empty) SQLite file
    const head = fs.readFileSync(path.join(e.parentPath, e.name)).subarray(0, 512);
    if ((head[0] === 0x1f && head[1] === 0x8b) || head.toString('latin1').startsWith('SQLite format 3') || head.toString('latin1').startsWith('PGDMP') || head.subarray(257, 262).toString('latin1') === 'ustar') out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

describe('sealed backups under SIGKILL', () => {
  it('killed at any instant: no plaintext once a re-run finished, nothing half-made published, every set restores', async () => {
    const first = cli(sealedRun(), { env: SQLITE_ENV });
    expect(first.code, first.stderr).toBe(0);
    const started = Date.now();
    cli(sealedRun(), { env: SQLITE_ENV });
    const span = Math.max(200, Date.now() - started);
    await trials('SIGKILL during a sealed backup (--encrypt-local)', TRIALS, 'after the re-run: no plaintext and no partial file in the backup directory, every published backup passes its checksum, the newest set restores with --identity to the live tree', async () => {
      const run = cliAsync(sealedRun(), { env: SQLITE_ENV });
      await new Promise((r) => setTimeout(r, crypto.randomInt(span)));
      run.child.kill('SIGKILL');
      await run.done;
      const again = cli(sealedRun(), { env: SQLITE_ENV });
      expect(again.code, again.stderr).toBe(0);
      expect(plaintext()).toEqual([]);
      expect(fs.readdirSync(dir()).filter((n) => n.includes('.partial-'))).toEqual([]);
      const v = cli(['--root', root, 'verify', '--backups', '--identity', key], { env: SQLITE_ENV });
      expect(v.stdout).toMatch(/PASS\s+backups\.checksums/);
      expect(v.stdout).toMatch(/PASS\s+backups\.readable/);
      const to = tempDir('scitex-restored-');
      try {
        const r = cli(['--root', root, 'restore', 'users', '--to', to, '--yes', '--identity', key], { env: SQLITE_ENV });
        expect(r.code, r.stderr).toBe(0);
        for (const u of ['alice', 'bob', 'carol']) expect(snapshotTree(path.join(to, 'data/users', u))).toEqual(snapshotTree(path.join(root, 'data/users', u)));
      } finally {
        fs.rmSync(to, { recursive: true, force: true });
      }
      // Keep the history short: only the newest set and database backup stay for the next trial.
      const sets = fs.readdirSync(dir()).filter((n) => n.startsWith('users_')).sort();
      for (const s of sets.slice(0, -1)) fs.rmSync(path.join(dir(), s), { recursive: true });
      execFileSync('sh', ['-c', 'ls -1 *.db.age | sort | head -n -1 | while read f; do rm -f "$f" "$f.sha256" "$f.origin.json"; done'], { cwd: dir() });
    });
  }, 600_000);
});
