import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aliceAndBob } from '../helpers/apptree.js';
import { cli } from '../helpers/cli.js';
import { BOB, CORPUS, plantMultiSet } from '../helpers/hostile-writers.js';
import { snapshotTree } from '../helpers/tree.js';
import { TRIALS, trials } from './report.js';

let root = '';
let outside = '';
let good = Buffer.alloc(0);
let others: Record<string, string>;
beforeAll(() => {
  ({ root, outside } = aliceAndBob());
  expect(cli(['--root', root, 'backup', 'users']).code).toBe(0);
  const set = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => n.startsWith('users_'))!;
  good = zlib.gunzipSync(fs.readFileSync(path.join(root, 'data/db/backups', set, 'alice.tar.gz')));
  others = snapshotTree(path.join(root, 'data/users/bob'));
});
afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

/** Offsets of every header block (pax headers included) of an uncompressed tar. */
function headerOffsets(tar: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off + 512 <= tar.length; ) {
    if (tar.subarray(off, off + 512).every((b) => b === 0)) break;
    out.push(off);
    const size = parseInt(tar.toString('latin1', off + 124, off + 136).replace(/[\0 ]+$/, ''), 8) || 0;
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** A deterministic generator, so a failing trial can be replayed from its number. */
function rng(seed: number): () => number {
  let s = seed * 2654435761 + 1;
  return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

const HOSTILE = Math.max(TRIALS, 6);
const FUZZ = Math.max(TRIALS * 2, 12);
/** Each trial is one CLI run (about a second, more on a loaded machine). */
const budget = (n: number) => 60_000 + n * 6_000;

const INTERESTING = [0, 0x2f, 0x2e, 0x30, 0x31, 0x32, 0x35, 0x37, 0x53, 0x4c, 0x4b, 0x67, 0x78, 0x56, 0x4d, 0x34, 0x36, 0x20, 0x80, 0xff];

/** After any run: bob, the rest of data/ and the outside world are as they were. */
function othersUntouched(): void {
  expect(snapshotTree(path.join(root, 'data/users/bob'))).toEqual(others);
  expect(fs.readdirSync(path.join(root, 'data/users')).sort()).toEqual(expect.arrayContaining(['alice', 'bob']));
  expect(fs.readdirSync(path.join(root, 'data/users')).filter((n) => !['alice', 'bob', '.~scitex-data', '.gitkeep'].includes(n))).toEqual([]);
  expect(fs.readdirSync(outside)).toEqual([]);
  expect(fs.existsSync('/tmp/scitex-pwned')).toBe(false);
}

describe('hostile writers and mutated headers', () => {
  it('archives from GNU tar and Python tarfile that two readers read differently are refused', async () => {
    await trials('hostile archives from other writers (GNU tar, Python tarfile, raw pax/GNU headers)', HOSTILE, 'refused with one line, exit 1; no other user, no live file and nothing outside staging touched', (i) => {
      const [name, build] = CORPUS[(i * 7) % CORPUS.length]!;
      const set = plantMultiSet(path.join(root, 'data/db/backups'), `20270101_${String(i).padStart(6, '0')}`, { alice: build(), bob: BOB() });
      const alice = snapshotTree(path.join(root, 'data/users/alice'));
      try {
        const r = cli(['--root', root, 'restore', 'users', '--from', set, '--user', 'alice', '--yes']);
        expect([name, r.code, r.stderr.trim().split('\n').length]).toEqual([name, 1, 1]);
        expect(snapshotTree(path.join(root, 'data/users/alice'))).toEqual(alice);
        othersUntouched();
      } finally {
        fs.rmSync(set, { recursive: true, force: true });
      }
    });
  }, budget(HOSTILE));

  it('random edits of a real archive header: refused with one line, or restored exactly as the headers say, never elsewhere', async () => {
    await trials('mutated headers of a real archive (name, type, mode, owner, size, magic, pax bytes)', FUZZ, 'either refused (exit 1, one line) or restored inside the user only, with no setuid/setgid file; nothing else touched', (i) => {
      const rand = rng(i + 1);
      const tar = Buffer.from(good);
      const heads = headerOffsets(tar);
      const h = heads[Math.floor(rand() * heads.length)]!;
      for (let k = 0, n = 1 + Math.floor(rand() * 3); k < n; k++) {
        // Header fields, or the first bytes of a pax body when the header is a pax header.
        const at = h + Math.floor(rand() * (tar[h + 156] === 0x78 ? 640 : 512));
        tar[at] = rand() < 0.6 ? INTERESTING[Math.floor(rand() * INTERESTING.length)]! : Math.floor(rand() * 256);
      }
      if (rand() < 0.85) {
        let sum = 8 * 0x20;
        for (let j = 0; j < 512; j++) if (j < 148 || j >= 156) sum += tar[h + j]!;
        tar.write(sum.toString(8).padStart(6, '0') + '\0 ', h + 148, 8, 'latin1');
      }
      const set = plantMultiSet(path.join(root, 'data/db/backups'), `20270201_${String(i).padStart(6, '0')}`, { alice: zlib.gzipSync(tar) }, { files: 100, bytes: 10_000_000 });
      try {
        const r = cli(['--root', root, 'restore', 'users', '--from', set, '--user', 'alice', '--yes']);
        expect([i, r.code]).toEqual([i, r.code === 0 ? 0 : 1]);
        if (r.code) expect(r.stderr.trim().split('\n')).toHaveLength(1);
        else {
          for (const [rel, v] of Object.entries(snapshotTree(path.join(root, 'data/users/alice')))) {
            expect([rel, v.startsWith('other')]).toEqual([rel, false]);
            const mode = /^(?:file|dir) ([0-7]+)/.exec(v)?.[1];
            if (mode) expect([rel, parseInt(mode, 8) & (v.startsWith('dir') ? 0o4000 : 0o6000)]).toEqual([rel, 0]);
          }
        }
        othersUntouched();
      } finally {
        fs.rmSync(set, { recursive: true, force: true });
      }
    });
  }, budget(FUZZ));
});
