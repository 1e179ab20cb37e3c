import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { snapshotTree } from '../helpers/tree.js';

// The archive writer encodes ustar headers itself (prefix split, pax records) and streams file bytes in
// blocks compressed in parallel: every edge of that must still restore exactly with plain GNU tar and
// pass scitex-data's own strict reader.
let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function edgeTree(home: string): void {
  const long = path.join(home, 'a'.repeat(60), 'b'.repeat(60), 'c'.repeat(60));
  fs.mkdirSync(long, { recursive: true });
  fs.writeFileSync(path.join(long, 'split-into-prefix.txt'), 'prefix and name'); // > 100 bytes, splittable
  fs.writeFileSync(path.join(long, 'n'.repeat(120) + '.txt'), 'needs a pax path'); // last part > 100 bytes
  fs.symlinkSync('t'.repeat(150), path.join(home, 'long-target')); // pax linkpath
  fs.writeFileSync(path.join(home, 'データ.txt'), 'utf-8 name');
  fs.writeFileSync(path.join(home, 'empty'), '');
  fs.writeFileSync(path.join(home, 'exact-block'), Buffer.alloc(512, 7));
  fs.writeFileSync(path.join(home, 'random.bin'), crypto.randomBytes(3 * (1 << 20) + 123)); // stored blocks
  fs.writeFileSync(path.join(home, 'text.csv'), Array.from({ length: 120000 }, (_, i) => `${i},${i % 97}\n`).join('')); // deflated, > 1 block
  fs.writeFileSync(path.join(home, 'hard-a'), 'linked');
  fs.linkSync(path.join(home, 'hard-a'), path.join(home, 'hard-b'));
  const big = path.join(home, 'big-owner');
  fs.writeFileSync(big, 'owned by a uid beyond ustar (pax uid)');
  fs.chownSync(big, 3_000_000, 3_000_001);
  fs.chmodSync(big, 0o640);
  fs.utimesSync(big, 1_000_000_000, 1_000_000_000);
}

describe('archive format edges', () => {
  for (const compression of ['gzip', 'zstd', 'none'] as const) {
    it(`${compression}: long names, pax records, big owners, links and multi-block files restore exactly`, () => {
      root = tempDir();
      expect(cli(['--root', root, 'init']).code).toBe(0);
      const home = path.join(root, 'data/users/alice');
      fs.mkdirSync(home);
      edgeTree(home);
      const before = snapshotTree(home);
      const r = cli(['--root', root, '--json', 'backup', 'users', '--compression', compression]);
      expect(r.code, r.stderr).toBe(0);
      const archive = (JSON.parse(r.stdout) as { artifacts: { path: string }[] }).artifacts[0]!.path;
      const plain = path.join(root, 'plain');
      fs.mkdirSync(plain);
      const flag = { gzip: '-xzf', zstd: '--zstd', none: '-xf' }[compression];
      execFileSync('tar', compression === 'zstd' ? ['--zstd', '-xf', archive, '-C', plain, '--numeric-owner'] : [flag, archive, '-C', plain, '--numeric-owner']);
      expect(snapshotTree(path.join(plain, 'data/users/alice'))).toEqual(before);
      const to = path.join(root, 'to');
      const rr = cli(['--root', root, 'restore', 'users', '--user', 'alice', '--to', to]);
      expect(rr.code, rr.stderr).toBe(0);
      expect(snapshotTree(path.join(to, 'data/users/alice'))).toEqual(before);
    });
  }
});
