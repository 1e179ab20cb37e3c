import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { makeUser } from './tree.js';

const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sqlite-writer.cjs');

/** Users of the realistic old tree, and where each old entry must end up. */
export const OLD_USERS = ['alice.smith', 'bob@lab.org', 'c+d', '渡辺', 'visitor'];

/**
 * A realistic pre-restructure tree: WAL databases with rows only in -wal, a root-level dev database,
 * backups, timestamped migration archives, ssh_keys (0700/0600), anonymous sessions, users with odd
 * names (one evidenced only by auth_user, one named like a system folder), and an unknown entry.
 */
export function makeOldTree(root: string, extraUsers = 0): { rowsOnlyInWal: number } {
  const data = path.join(root, 'data');
  fs.mkdirSync(data, { recursive: true });
  // Root-level dev DB (old dev location) in WAL mode with 120 rows only in its -wal file.
  spawnSync(process.execPath, [WRITER, path.join(root, 'scitex_cloud_dev.db'), 'nocheckpoint', '120']);
  // Prod DB with auth_user naming the users, also WAL with rows in the -wal.
  const prod = path.join(data, 'scitex_cloud_prod.db');
  const db = new Database(prod);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE auth_user(id INTEGER PRIMARY KEY, username TEXT UNIQUE)');
  const ins = db.prepare('INSERT INTO auth_user(username) VALUES (?)');
  for (const u of [...OLD_USERS, ...Array.from({ length: extraUsers }, (_, i) => `user${i}`)]) ins.run(u);
  db.close();
  spawnSync(process.execPath, [WRITER, prod, 'nocheckpoint', '80']);
  fs.writeFileSync(path.join(data, 'scitex_cloud.db'), '');
  fs.mkdirSync(path.join(data, 'backups'));
  fs.writeFileSync(path.join(data, 'backups', '.gitkeep'), '');
  fs.writeFileSync(path.join(data, 'backups', 'scitex_cloud_dev_backup_20251001_020000.db'), 'SQLite format 3\0old');
  fs.writeFileSync(path.join(data, 'backups', 'scitex_cloud_prod_20251002_020000.sql'), '-- PostgreSQL database dump\n');
  fs.writeFileSync(path.join(data, 'backups', 'scitex_cloud_prod_20251003_020000.sql.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
  fs.mkdirSync(path.join(data, 'migrations_backup', 'old_migrations'), { recursive: true });
  fs.writeFileSync(path.join(data, 'migrations_backup', 'old_migrations', '0001_initial.py'), 'from django.db import migrations\n');
  fs.mkdirSync(path.join(data, 'migrations_archive_20251016_011323', 'accounts'), { recursive: true });
  fs.writeFileSync(path.join(data, 'migrations_archive_20251016_011323', 'accounts', '0002_profile.py'), 'from django.db import migrations\n');
  fs.mkdirSync(path.join(data, 'ssh_keys', 'user_1'), { recursive: true, mode: 0o700 });
  fs.chmodSync(path.join(data, 'ssh_keys'), 0o700);
  fs.chmodSync(path.join(data, 'ssh_keys', 'user_1'), 0o700);
  fs.writeFileSync(path.join(data, 'ssh_keys', 'user_1', 'id_ed25519'), 'PRIVATE KEY', { mode: 0o600 });
  fs.mkdirSync(path.join(data, 'anonymous', 'sess-abc123'), { recursive: true });
  fs.writeFileSync(path.join(data, 'anonymous', 'sess-abc123', 'draft.tex'), '\\documentclass{article}');
  OLD_USERS.forEach((u, i) => makeUser(data, u, i + 1));
  fs.rmSync(path.join(data, 'bob@lab.org', 'workspace_info.json')); // evidenced only by auth_user
  fs.renameSync(path.join(data, '渡辺', 'workspace_info.json'), path.join(data, '渡辺', 'proj', 'workspace_info.json'));
  fs.rmSync(path.join(data, 'visitor', 'workspace_info.json')); // named like a system folder, evidenced by the database
  for (let i = 0; i < extraUsers; i++) {
    fs.mkdirSync(path.join(data, `user${i}`, 'proj', 'p'), { recursive: true });
    fs.writeFileSync(path.join(data, `user${i}`, 'workspace_info.json'), JSON.stringify({ username: `user${i}` }));
  }
  fs.mkdirSync(path.join(data, 'mystery'));
  fs.writeFileSync(path.join(data, 'mystery', 'notes.txt'), 'who knows');
  fs.mkdirSync(path.join(root, 'config', 'settings'), { recursive: true });
  fs.writeFileSync(path.join(root, 'config/settings/settings_dev.py'), 'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "scitex_cloud_dev.db"}}\n');
  fs.writeFileSync(path.join(root, 'config/settings/settings_prod.py'), "DATABASES = {'default': {'NAME': BASE_DIR / 'data' / 'scitex_cloud_prod.db'}}\n");
  fs.writeFileSync(path.join(root, 'config/settings/settings_shared.py'), 'SQLITE = BASE_DIR / "data" / "scitex_cloud.db"\nOTHER = 1\n');
  fs.writeFileSync(path.join(root, '.gitignore'), 'node_modules/\n*.pyc\n');
  return { rowsOnlyInWal: 120 };
}

/** Where an old path ends up after migration (relative to the root), or itself when it stays. */
export function newPathOf(rel: string): string {
  const m = /^data\/([^/]+)(\/.*)?$/.exec(rel);
  if (/^scitex_cloud_dev\.db(-wal|-shm|-journal)?$/.test(rel)) return `data/db/sqlite/${rel}`;
  if (!m) return rel;
  const [, top, rest = ''] = m;
  if (/\.db(-wal|-shm|-journal)?$/.test(top!)) return `data/db/sqlite/${top}`;
  if (top === 'backups') return `data/db/backups${rest}`;
  if (top === 'migrations_backup' || top!.startsWith('migrations_archive_')) return `data/db/migrations_archive/${top}${rest}`;
  if (['ssh_keys', 'anonymous', 'mystery'].includes(top!)) return rel;
  return `data/users/${top}${rest}`;
}
