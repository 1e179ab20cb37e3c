import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { env, exactSnapshot, makeAuthDb } from '../helpers/migtree.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const work: string[] = [];
afterAll(() => {
  for (const d of work) fs.rmSync(d, { recursive: true, force: true });
});

/**
 * An old tree whose users are evidenced only by auth_user: in a rollback-journal database, and in WAL ones: one closed cleanly (no -wal,
 * no -shm: opening it in place creates both), one whose app died (its auth_user row sits only in the -wal).
 */
function walTree(): string {
  const root = tempDir('scitex-dry-');
  work.push(root);
  const data = path.join(root, 'data');
  fs.mkdirSync(data);
  makeAuthDb(path.join(data, 'scitex_cloud.db'), ['bob'], 'wal');
  makeAuthDb(path.join(root, 'scitex_cloud_dev.db'), ['dave']); // rollback-journal mode: read in place
  const code = `
    const db = new (require('better-sqlite3'))(process.argv[1]);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE auth_user(id INTEGER PRIMARY KEY, username TEXT UNIQUE)');
    db.prepare('INSERT INTO auth_user(username) VALUES (?)').run('carol');
    process.kill(process.pid, 'SIGKILL');`;
  spawnSync(process.execPath, ['-e', code, path.join(data, 'scitex_cloud_prod.db')], { cwd: path.join(HERE, '../..') });
  expect(fs.statSync(path.join(data, 'scitex_cloud_prod.db-wal')).size).toBeGreaterThan(0);
  for (const u of ['bob', 'carol', 'dave']) {
    fs.mkdirSync(path.join(data, u, 'proj', 'paper'), { recursive: true });
    fs.writeFileSync(path.join(data, u, 'proj', 'paper', 'main.tex'), u);
  }
  fs.mkdirSync(path.join(root, 'config', 'settings'), { recursive: true });
  fs.writeFileSync(path.join(root, 'config/settings/settings_prod.py'), "DATABASES = {'default': {'NAME': BASE_DIR / 'data' / 'scitex_cloud_prod.db'}}\n");
  return root;
}

describe('migrate --dry-run writes nothing at all', () => {
  it('leaves every path, size, mtime and mode as it was (text and --json), and still reads auth_user from the -wal', () => {
    const root = walTree();
    const before = exactSnapshot(root);
    const text = cli(['--root', root, 'migrate', '--dry-run'], { env });
    expect(text.code, text.stderr).toBe(0);
    for (const u of ['bob', 'carol', 'dave']) expect(text.stdout).toContain(`data/${u} -> data/users/${u}`);
    expect(exactSnapshot(root)).toEqual(before);
    const json = cli(['--root', root, '--json', 'migrate', '--dry-run'], { env });
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).plan.users.sort()).toEqual(['bob', 'carol', 'dave']);
    expect(exactSnapshot(root)).toEqual(before);
  });

  it('leaves no side file behind a real run either, and --rollback --dry-run writes nothing', () => {
    const root = walTree();
    const r = cli(['--root', root, 'migrate', '--yes'], { env });
    expect(r.code, r.stderr).toBe(0);
    // Root-owned -wal/-shm created by reading a cleanly closed WAL database would lock the app out.
    expect(fs.readdirSync(path.join(root, 'data/db/sqlite')).sort()).toEqual(['.gitkeep', 'scitex_cloud.db', 'scitex_cloud_dev.db', 'scitex_cloud_prod.db', 'scitex_cloud_prod.db-shm', 'scitex_cloud_prod.db-wal']);
    const before = exactSnapshot(root);
    const dry = cli(['--root', root, 'migrate', '--rollback', '--dry-run'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    expect(exactSnapshot(root)).toEqual(before);
  });
});
