// Tree shapes for `npm run bench`: every user-backup row runs on each, so no shape flatters the engine.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** The shapes, by name: what each one stresses. */
export const SHAPES = {
  small: 'many small files: make-tree.py, 40 users x 4 MiB (text, csv, arrays, .git)',
  large: 'a few large files: 2 users x (64 MiB csv + 64 MiB random)',
  many: 'one user with 100,000 files of 50-4,000 bytes in 1,000 directories',
};

const MAKE_TREE = '/work/shared/bench/make-tree.py';

/** Builds shape `name` under `root` (root/data/users/...); `scale` shrinks it for --quick. */
export function makeShape(name, root, scale = 1) {
  const users = path.join(root, 'data/users');
  fs.mkdirSync(users, { recursive: true });
  if (name === 'small') {
    execFileSync('python3', [MAKE_TREE, '--users', String(Math.max(2, Math.round(40 * scale))), '--mb-per-user', '4', '--new', root], { stdio: 'ignore' });
    return;
  }
  let seed = 1;
  const rnd = (n) => crypto.createHash('sha256').update(String(seed++)).digest().readUInt32LE(0) % n;
  if (name === 'large') {
    const mb = Math.max(4, Math.round(64 * scale));
    for (const u of ['alice', 'bob']) {
      const d = path.join(users, u, 'data');
      fs.mkdirSync(d, { recursive: true });
      const fd = fs.openSync(path.join(d, 'recording.csv'), 'w');
      let line = 0;
      for (let written = 0; written < mb << 20; ) {
        const rows = [];
        for (let i = 0; i < 20000; i++, line++) rows.push(`${line},${(Math.sin(line) * 1000).toFixed(4)},${(Math.cos(line / 7) * 10).toFixed(4)},${line % 97},${(line * 31) % 1009}\n`);
        const b = Buffer.from(rows.join(''));
        fs.writeSync(fd, b);
        written += b.length;
      }
      fs.closeSync(fd);
      const r = fs.openSync(path.join(d, 'weights.npy'), 'w');
      for (let i = 0; i < mb; i++) fs.writeSync(r, crypto.randomBytes(1 << 20));
      fs.closeSync(r);
    }
    return;
  }
  if (name === 'many') {
    const n = Math.max(1000, Math.round(100000 * scale));
    // Like make-tree.py's text: lines of 4 to 14 words drawn at random from a small vocabulary.
    const words = 'signal neuron spike phase amplitude coupling theta gamma epoch trial subject session channel filter hilbert wavelet band power mean std'.split(' ');
    let x = 88172645463325252n;
    const next = () => { x ^= (x << 13n) & 0xffffffffffffffffn; x ^= x >> 7n; x ^= (x << 17n) & 0xffffffffffffffffn; return Number(x & 0xffffffn); };
    const pool = [];
    for (let len = 0; len < 8 << 20; ) {
      const line = Array.from({ length: 4 + (next() % 11) }, () => words[next() % words.length]).join(' ') + '\n';
      pool.push(line);
      len += line.length;
    }
    const text = Buffer.from(pool.join(''));
    for (let k = 0; k < n; k++) {
      const d = path.join(users, 'alice', 'many', String(Math.floor(k / 100)).padStart(4, '0'));
      if (k % 100 === 0) fs.mkdirSync(d, { recursive: true });
      const len = 50 + rnd(3950);
      const at = rnd(text.length - len);
      fs.writeFileSync(path.join(d, `f${k}.txt`), text.subarray(at, at + len));
    }
    return;
  }
  throw new Error(`unknown shape ${name}`);
}
