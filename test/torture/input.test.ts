import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cli, tempDir } from '../helpers/cli.js';
import { makeUser, snapshotTree } from '../helpers/tree.js';
import { trials } from './report.js';

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };
/** Exactly one error line (warnings may precede it) and no stack trace. */
const oneLine = (s: string) => s.split('\n').filter((l) => l.startsWith('error:')).length === 1 && !/\n\s+at /.test(s);

describe('bad input gets a one-line error and a documented exit code', () => {
  it('usernames that are not Django usernames or could escape data/users', async () => {
    root = tempDir();
    cli(['--root', root, 'init']);
    makeUser(path.join(root, 'data/users'), 'alice');
    const bad = ['..', '.', '../alice', '/etc', 'a/b', 'a\u0000b', 'x'.repeat(151), 'ﬁ', 'e\u0301', 'sp ace', '-', ''];
    await trials('bad usernames (backup and restore --user)', bad.length, 'refused with exit 2 before anything is read or written', (i) => {
      const u = bad[i]!;
      if (u.includes('\0')) return; // argv cannot carry NUL; covered by the layout API tests
      for (const cmd of [['backup', 'users', '--user', u], ['restore', 'users', '--user', u, '--yes']]) {
        const r = cli(['--root', root, ...cmd]);
        expect([u, cmd[0], r.code]).toEqual([u, cmd[0], 2]);
        expect(oneLine(r.stderr)).toBe(true);
      }
    });
  });

  it('a .env with garbage lines, a missing data/, a symlinked data/users', async () => {
    root = tempDir();
    await trials('bad configuration and trees', 4, 'garbage .env lines warn; missing data/ and symlinked data/users are refused (exit 2)', (i) => {
      if (i === 0) {
        fs.writeFileSync(path.join(root, '.env'), '\u0000\u0001binary\nexport =novalue\n===\nexport SCITEX_CLOUD_DB_NAME_DEV=ok\n');
        const r = cli(['--root', root, '--json', 'config']);
        expect(r.code).toBe(0);
        const doc = JSON.parse(r.stdout);
        expect(doc.config.database.name.value).toBe('ok');
        expect(doc.warnings.length).toBeGreaterThanOrEqual(2);
      } else if (i === 1) {
        const r = cli(['--root', root, 'backup'], { env });
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/data does not exist.*init/);
        expect(oneLine(r.stderr)).toBe(true);
      } else if (i === 2) {
        cli(['--root', root, 'init']);
        const elsewhere = tempDir('scitex-elsewhere-');
        fs.rmSync(path.join(root, 'data/users'), { recursive: true });
        fs.symlinkSync(elsewhere, path.join(root, 'data/users'));
        const r = cli(['--root', root, 'restore', 'users', '--yes']);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/is a symlink/);
        expect(fs.readdirSync(elsewhere)).toEqual([]);
        fs.rmSync(elsewhere, { recursive: true });
      } else {
        const r = cli(['--root', path.join(root, 'nope'), 'verify']);
        expect(r.code).toBe(3);
        expect(r.stdout).toMatch(/FAIL/);
      }
    });
  });
});

describe('secrets', () => {
  it('the password never reaches argv, output, --json, --debug or errors; backups are private under umask 000', async () => {
    root = tempDir();
    cli(['--root', root, 'init']);
    makeUser(path.join(root, 'data/users'), 'alice');
    execFileSync('sqlite3', [path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), 'CREATE TABLE t(x); INSERT INTO t VALUES (1);']);
    const PW = 'KnownPassw0rd-7c1e';
    const token = 'ghp_SECRETTOKEN1';
    const runs: string[][] = [
      ['config'], ['--json', 'config'], ['--debug', 'config'],
      ['backup', 'db'], ['--debug', 'backup', 'db'], ['--json', 'backup', 'db'],
      ['backup', 'users'], ['--json', '--debug', 'backup', 'users'], ['list'], ['verify'], ['--debug', 'verify', '--backups'],
      ['restore', 'users', '--dry-run'], ['restore', 'db', '--dry-run'],
    ];
    // PostgreSQL configured with the known password but down (the error paths must not leak it either);
    // commands that touch the database run on SQLite. Every run happens under umask 000.
    const pgDown = { SCITEX_CLOUD_DB_PASSWORD_DEV: PW, SCITEX_CLOUD_DB_PORT_DEV: '1', SCITEX_CLOUD_DB_HOST_DEV: '127.0.0.1' };
    await trials('secrets (every command, human/--json/--debug, PostgreSQL down, umask 000)', runs.length * 2, "the password and tokens inside users' .git/config never appear in any output or error; backups stay 0600/0700", (i) => {
      const args = runs[i % runs.length]!;
      const r = spawnSync('sh', ['-c', 'umask 000; exec "$@"', 'sh', process.execPath, BIN, '--root', root, ...args], {
        env: cleanEnv({ ...pgDown, ...(i >= runs.length ? env : {}) }),
        encoding: 'utf8',
      });
      expect(r.stdout + r.stderr).not.toContain(PW);
      expect(r.stdout + r.stderr).not.toContain(token);
    });
    const files = snapshotTree(path.join(root, 'data/db/backups'));
    for (const [rel, v] of Object.entries(files)) {
      if (rel === '' || rel === '.gitkeep') continue;
      expect([rel, v.split(' ').slice(0, 2).join(' ')]).toEqual([rel, v.startsWith('dir') ? 'dir 700' : 'file 600']);
    }
  });
});
