import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { makeUser } from '../helpers/tree.js';
import { trials, TRIALS } from './report.js';

// Bit rot in an old archive: unchanged users' archives are hard-linked from set to set, so a damaged one
// must never be claimed by a new set (once older sets are pruned, no good copy would be left).
let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const sets = () => fs.readdirSync(path.join(root, 'data/db/backups')).filter((n) => n.startsWith('users_')).sort().map((n) => path.join(root, 'data/db/backups', n));

describe('bit rot', () => {
  it('a flipped bit anywhere in an old archive never reaches the next set, and verify names it', async () => {
    root = tempDir();
    expect(cli(['--root', root, 'init']).code).toBe(0);
    for (const [i, u] of ['alice', 'bob', 'carol'].entries()) makeUser(path.join(root, 'data/users'), u, i + 1);
    expect(cli(['--root', root, 'backup', 'users']).code).toBe(0);
    await trials('bit rot in a linked archive', Math.max(4, TRIALS), 'the next set writes a fresh archive (sha256sum -c passes, tar reads it), the run warns DAMAGED naming the file, verify --backups exits 3', (i) => {
      const last = sets().at(-1)!;
      const archives = fs.readdirSync(last).filter((n) => n.endsWith('.tar.gz'));
      const victim = path.join(last, archives[crypto.randomInt(archives.length)]!);
      const bytes = fs.readFileSync(victim);
      const at = crypto.randomInt(bytes.length);
      bytes[at]! ^= 1 << crypto.randomInt(8);
      fs.writeFileSync(victim, bytes); // in place: every set sharing the inode is damaged at once
      const r = cli(['--root', root, '--json', 'backup', 'users']);
      expect(r.code, `trial ${i}: ${r.stderr}`).toBe(0);
      const warnings = (JSON.parse(r.stdout) as { warnings: string[] }).warnings.join('\n');
      expect(warnings).toMatch(/DAMAGED BACKUP/);
      expect(warnings).toContain(path.basename(victim));
      const fresh = sets().at(-1)!;
      expect(fresh).not.toBe(last);
      execFileSync('sha256sum', ['-c', '--strict', '--quiet', 'SHA256SUMS'], { cwd: fresh });
      for (const a of fs.readdirSync(fresh).filter((n) => n.endsWith('.tar.gz'))) execFileSync('tar', ['-tzf', path.join(fresh, a)], { stdio: 'ignore' });
      const v = cli(['--root', root, 'verify', '--backups']);
      expect(v.code).toBe(3);
      expect(v.stdout).toContain(path.basename(victim));
      // Heal the history for the next trial: drop every set but the fresh one.
      for (const s of sets()) if (s !== fresh) fs.rmSync(s, { recursive: true });
    });
  });
});
