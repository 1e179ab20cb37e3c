import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBackups } from '../../src/index.js';
import { cli, tempDir } from '../helpers/cli.js';
import { makeUser, snapshotTree } from '../helpers/tree.js';
import { trials } from './report.js';

// A really full disk: a small tmpfs, where the machine allows mounting one (root in a VM or CI);
// elsewhere these tests are skipped, and say so.
let mnt = '';
let root = '';
let canMount = false;
beforeAll(() => {
  mnt = tempDir('scitex-tmpfs-');
  canMount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mnt]).status === 0;
  root = tempDir();
  expect(cli(['--root', root, 'init']).code).toBe(0);
  for (let i = 0; i < 3; i++) {
    const home = makeUser(path.join(root, 'data/users'), `user${i}`, i);
    fs.writeFileSync(path.join(home, 'data.bin'), Buffer.from(Array.from({ length: 2 << 20 }, (_, k) => (k * 2654435761) >>> 24)));
  }
});
afterAll(() => {
  if (canMount) spawnSync('umount', [mnt]);
  fs.rmSync(mnt, { recursive: true, force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

describe('a full disk', () => {
  it('backup users onto a full volume: one-line error, nothing published, earlier backups untouched', async (ctx) => {
    if (!canMount) ctx.skip();
    await trials('full disk during backup users', 2, 'one-line ENOSPC error, exit 1; no partial set left; earlier backups untouched', async () => {
      // An earlier backup on the volume, then a run that cannot fit.
      fs.writeFileSync(path.join(mnt, 'scitex_cloud_dev_20250101_000000.dump'), 'PGDMP-older-backup');
      // The backup directory itself is made private (0700) by design; its contents must not change.
      const contents = () => Object.fromEntries(Object.entries(snapshotTree(mnt)).filter(([k]) => k !== '' && !k.startsWith('.scitex-data.lock') && k !== '.scitex-data-state.json'));
      const before = contents();
      const r = cli(['--root', root, 'backup', 'users', '--compression', 'none', '--backup-dir', mnt]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/ENOSPC.*disk is full/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(contents()).toEqual(before);
      expect(await listBackups(mnt)).toHaveLength(1);
      fs.rmSync(path.join(mnt, 'scitex_cloud_dev_20250101_000000.dump'));
    });
  });

  it('restore users onto a volume too small: refused before extraction, target untouched', async (ctx) => {
    if (!canMount) ctx.skip();
    const set = path.join(root, 'data/db/backups');
    expect(cli(['--root', root, 'backup', 'users']).code).toBe(0);
    await trials('full disk during restore users', 2, 'refused (free-space check or ENOSPC) with one line; nothing left in the target', async () => {
      const r = cli(['--root', root, 'restore', 'users', '--to', path.join(mnt, 'out')]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/only \d+ are free|ENOSPC/);
      expect(fs.readdirSync(path.join(mnt, 'out', 'data', 'users')).filter((n) => n !== '.~scitex-data')).toEqual([]);
      expect(fs.existsSync(path.join(mnt, 'out', 'data', 'users', '.~scitex-data'))).toBe(false);
    });
    expect(fs.existsSync(set)).toBe(true);
  });

  it('backup db (SQLite) onto a full volume fails cleanly', async (ctx) => {
    if (!canMount) ctx.skip();
    const file = path.join(root, 'data/db/sqlite/scitex_cloud_dev.db');
    execFileSync('sqlite3', [file, 'CREATE TABLE t(b BLOB); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000) INSERT INTO t SELECT randomblob(4000) FROM c;']);
    await trials('full disk during backup db (SQLite)', 2, 'one-line error, exit 1, no partial file left', async () => {
      const r = cli(['--root', root, 'backup', 'db', '--backup-dir', mnt], { env: { SCITEX_CLOUD_USE_SQLITE_DEV: '1' } });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(fs.readdirSync(mnt).filter((n) => n.includes('scitex_cloud_dev'))).toEqual([]);
    });
  });
});

describe('migrate across filesystems (data/users is another volume)', () => {
  it('copies, verifies and only then removes each user; refuses when the volume is too small', async (ctx) => {
    const { makeOldTree, newPathOf } = await import('../helpers/oldtree.js');
    const old = tempDir('scitex-xdev-');
    const vol = path.join(old, 'data', 'users');
    fs.mkdirSync(vol, { recursive: true });
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', vol]).status !== 0) {
      fs.rmSync(old, { recursive: true, force: true });
      ctx.skip();
    }
    try {
      makeOldTree(old);
      const before = snapshotTree(old);
      const env = { SCITEX_CLOUD_DB_PORT_DEV: '1', SCITEX_CLOUD_DB_HOST_DEV: '127.0.0.1' };
      const dry = cli(['--root', old, 'migrate', '--dry-run'], { env });
      expect(dry.stdout).toMatch(/data\/alice\.smith -> data\/users\/alice\.smith .*\[copy \+ verify across filesystems\]/);
      await trials('migrate across filesystems', 1, 'each user copied, compared byte for byte, then its source removed; content, modes and links intact', () => {
        const r = cli(['--root', old, 'migrate', '--yes'], { env });
        expect(r.code, r.stderr).toBe(0);
        const after = snapshotTree(old);
        for (const [rel, v] of Object.entries(before)) {
          if (!rel.startsWith('data/') || v.startsWith('dir') || rel.endsWith('-shm') || !newPathOf(rel).startsWith('data/users/')) continue;
          expect([rel, after[newPathOf(rel)]]).toEqual([rel, v]);
          expect(fs.existsSync(path.join(old, rel))).toBe(false);
        }
        expect(fs.readdirSync(vol).filter((n) => n.includes('.partial-'))).toEqual([]);
      });
    } finally {
      spawnSync('umount', [vol]);
      fs.rmSync(old, { recursive: true, force: true });
    }
  });
});
