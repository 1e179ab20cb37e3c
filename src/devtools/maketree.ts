/** Developer tools (benchmarks): deterministic synthetic scitex-cloud trees, like shared/bench/make-tree.py. */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import '../adapters/sqlitekeep.js';

/** Shape of a synthetic tree. */
export interface TreeOptions {
  users: number;
  /** Approximate bytes per user (text, CSV, incompressible arrays); 0 for structure only. */
  mbPerUser: number;
  seed?: number;
  /** Old layout (data/<user>, data/*.db) or the new one. */
  layout: 'old' | 'new';
  /** Extra small files per user (for file-count stress). */
  smallFilesPerUser?: number;
  /** One big incompressible file in the first user, in MiB. */
  bigFileMb?: number;
}

const WORDS = 'signal neuron spike phase amplitude coupling theta gamma epoch trial subject session channel filter hilbert wavelet band power mean std'.split(' ');

/** A small deterministic PRNG (mulberry32): the same seed builds the same tree. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Builds the tree under `root` and returns the data directory. */
export function makeTree(root: string, o: TreeOptions): string {
  const r = rng(o.seed ?? 1);
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const text = (n: number) => {
    let s = '';
    while (s.length < n) s += Array.from({ length: int(4, 14) }, () => WORDS[int(0, WORDS.length - 1)]).join(' ') + '\n';
    return s.slice(0, n);
  };
  const csv = (n: number) => {
    const rows = ['t,ch0,ch1,ch2,ch3'];
    let len = 0;
    for (let i = 0; len < n; i++) {
      const row = `${i},${(r() * 4 - 2).toFixed(4)},${(r() * 4 - 2).toFixed(4)},${(r() * 4 - 2).toFixed(4)},${(r() * 4 - 2).toFixed(4)}`;
      rows.push(row);
      len += row.length + 1;
    }
    return rows.join('\n').slice(0, n);
  };
  const random = (n: number) => {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE((r() * 4294967296) >>> 0, i);
    return b;
  };
  const w = (p: string, data: string | Buffer) => {
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, data);
  };
  const data = path.join(root, 'data');
  const dbDir = o.layout === 'new' ? path.join(data, 'db', 'sqlite') : data;
  const usersDir = o.layout === 'new' ? path.join(data, 'users') : data;
  fs.mkdirSync(dbDir, { recursive: true });
  const db = new Database(path.join(dbDir, 'scitex_cloud_prod.db'));
  db.exec('CREATE TABLE auth_user(id INTEGER PRIMARY KEY, username TEXT UNIQUE)');
  const ins = db.prepare('INSERT INTO auth_user(username) VALUES (?)');
  db.transaction(() => {
    for (let u = 0; u < o.users; u++) ins.run(userName(u));
  })();
  db.close();
  const perUser = Math.floor(o.mbPerUser * 1024 * 1024);
  for (let u = 0; u < o.users; u++) {
    const home = path.join(usersDir, userName(u));
    w(path.join(home, 'workspace_info.json'), JSON.stringify({ user_id: u + 1, username: userName(u), created_at: '2025-06-01T00:00:00Z', version: 1, structure_version: 2 }));
    fs.mkdirSync(path.join(home, 'temp'), { recursive: true });
    if (perUser > 0) {
      const nproj = int(1, 3);
      let budget = perUser;
      for (let p = 0; p < nproj; p++) {
        const pd = path.join(home, 'proj', `project-${p}`);
        const share = Math.floor(budget / (nproj - p));
        budget -= share;
        w(path.join(pd, 'README.md'), text(2000));
        for (let k = int(5, 30); k > 0; k--) w(path.join(pd, 'scripts', `analysis_${String(k).padStart(2, '0')}.py`), text(int(500, 8000)));
        w(path.join(pd, '.git', 'HEAD'), 'ref: refs/heads/main\n');
        w(path.join(pd, '.git', 'config'), '[core]\n\trepositoryformatversion = 0\n');
        const rest = Math.max(0, share - 100_000);
        w(path.join(pd, 'data', 'recording.csv'), csv(Math.floor(rest / 2)));
        w(path.join(pd, 'data', 'weights.npy'), random(rest - Math.floor(rest / 2)));
      }
      w(path.join(home, 'shared', 'notes.txt'), text(1000));
    } else fs.mkdirSync(path.join(home, 'proj'), { recursive: true });
    for (let k = 0; k < (o.smallFilesPerUser ?? 0); k++) w(path.join(home, 'many', String(k % 100), `f${k}.txt`), text(int(50, 400)));
  }
  if (o.bigFileMb && o.users > 0) {
    const big = path.join(usersDir, userName(0), 'images', 'container.sif');
    fs.mkdirSync(path.dirname(big), { recursive: true });
    const fd = fs.openSync(big, 'w');
    const chunk = random(8 << 20);
    for (let i = 0; i < o.bigFileMb / 8; i++) fs.writeSync(fd, chunk); // incompressible, like a container image
    fs.closeSync(fd);
  }
  return data;
}

/** The n-th synthetic username (every 7th has a dot, like make-tree.py). */
export const userName = (u: number): string => (u % 7 ? `user${String(u).padStart(3, '0')}` : `researcher.${u}`);
