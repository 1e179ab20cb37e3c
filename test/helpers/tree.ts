import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Every entry of a tree: type, mode, owner, size, mtime (s), content hash, link target; for exact comparisons. */
export function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (rel: string) => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs);
    const mode = (st.mode & 0o7777).toString(8);
    const own = `${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(abs)} ${own}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${mode} ${own}`;
      for (const n of fs.readdirSync(abs).sort()) visit(rel ? `${rel}/${n}` : n);
    } else if (st.isFile()) {
      const h = crypto.createHash('sha256').update(fs.readFileSync(abs)).digest('hex').slice(0, 16);
      out[rel] = `file ${mode} ${own} ${st.size} ${Math.floor(st.mtimeMs / 1000)} ${h} nlink=${st.nlink}`;
    } else out[rel] = 'other';
  };
  visit('');
  return out;
}

/** Builds a realistic user tree: git project, symlinks, hard links, empty dirs, odd modes and owners. */
export function makeUser(usersDir: string, name: string, seed = 1): string {
  const home = path.join(usersDir, name);
  const p = path.join(home, 'proj', 'neuro-analysis');
  fs.mkdirSync(path.join(p, '.git', 'refs', 'heads'), { recursive: true });
  fs.writeFileSync(path.join(p, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  fs.writeFileSync(path.join(p, '.git', 'config'), `[remote "origin"]\n\turl = https://oauth2:ghp_SECRETTOKEN${seed}@example.org/x.git\n`);
  fs.mkdirSync(path.join(p, 'scripts'), { recursive: true });
  for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(p, 'scripts', `analysis_${i}.py`), `import numpy as np\n# seed ${seed} file ${i}\n`.repeat(50 + i));
  fs.mkdirSync(path.join(p, 'data'), { recursive: true });
  fs.writeFileSync(path.join(p, 'data', 'weights.npy'), crypto.randomBytes(300_000));
  fs.writeFileSync(path.join(p, 'data', 'recording.csv'), Array.from({ length: 2000 }, (_, i) => `${i},${Math.sin(i + seed)}`).join('\n'));
  fs.linkSync(path.join(p, 'data', 'recording.csv'), path.join(p, 'data', 'recording-hardlink.csv'));
  fs.symlinkSync('../../shared/refs.bib', path.join(p, 'refs.bib'));
  fs.mkdirSync(path.join(home, 'shared'), { recursive: true });
  fs.writeFileSync(path.join(home, 'shared', 'refs.bib'), '@article{x, title={y}}\n');
  fs.mkdirSync(path.join(home, 'temp', 'empty-dir'), { recursive: true });
  fs.mkdirSync(path.join(home, 'projects'), { recursive: true });
  fs.writeFileSync(path.join(home, 'private.key'), 'secret', { mode: 0o600 });
  fs.chmodSync(path.join(home, 'private.key'), 0o600);
  fs.writeFileSync(path.join(home, 'run.sh'), '#!/bin/sh\necho hi\n');
  fs.chmodSync(path.join(home, 'run.sh'), 0o755);
  fs.writeFileSync(path.join(home, 'workspace_info.json'), JSON.stringify({ user_id: seed, username: name, created_at: '2025-06-01T00:00:00Z', version: 1, structure_version: 2 }));
  if (process.getuid?.() === 0) {
    fs.writeFileSync(path.join(home, 'owned-by-1000.txt'), 'uid 1000\n');
    fs.chownSync(path.join(home, 'owned-by-1000.txt'), 1000, 1000);
  }
  // Old mtimes, as real trees have, so that restore's mtime preservation is visible.
  const old = new Date('2025-03-04T05:06:07Z');
  execFileSync('find', [home, '-exec', 'touch', '-h', '-d', old.toISOString(), '{}', '+']);
  return home;
}
