#!/usr/bin/env node
// The README's first command: builds a small old-layout scitex-cloud tree in a temp directory and runs
// the whole life cycle on the embedded default (SQLite, no PostgreSQL): migrate, backup, verify,
// damage, restore, verify. Every step is the real CLI, printed as it runs.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.join(here, '..', 'bin', 'scitex-data');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-demo-'));
const env = { ...process.env, SCITEX_CLOUD_USE_SQLITE_DEV: '1', SCITEX_CLOUD_DB_PORT_DEV: '1', SCITEX_CLOUD_DB_HOST_DEV: '127.0.0.1' };

function step(title, args, { expect = 0 } = {}) {
  console.log(`\n\x1b[1m$ scitex-data ${args.join(' ')}\x1b[0m   # ${title}`);
  const r = spawnSync(process.execPath, [bin, '--root', root, ...args], { env, stdio: 'inherit' });
  if (r.status !== expect) {
    console.error(`demo: expected exit ${expect}, got ${r.status}`);
    process.exit(1);
  }
}

// An old tree: the dev database at data/, users directly under data/, a backups/ folder.
const data = path.join(root, 'data');
fs.mkdirSync(path.join(data, 'backups'), { recursive: true });
const db = new Database(path.join(data, 'scitex_cloud_dev.db'));
db.pragma('journal_mode = WAL');
db.exec("CREATE TABLE auth_user(id INTEGER PRIMARY KEY, username TEXT UNIQUE); CREATE TABLE project(id INTEGER PRIMARY KEY, owner TEXT, name TEXT)");
for (const u of ['alice', 'bob.smith', 'carol@lab.org']) {
  db.prepare('INSERT INTO auth_user(username) VALUES (?)').run(u);
  db.prepare('INSERT INTO project(owner, name) VALUES (?, ?)').run(u, 'neuro-analysis');
  const proj = path.join(data, u, 'proj', 'neuro-analysis');
  fs.mkdirSync(path.join(proj, '.git'), { recursive: true });
  fs.writeFileSync(path.join(proj, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  fs.writeFileSync(path.join(proj, 'analysis.py'), 'import numpy as np\n'.repeat(200));
  fs.writeFileSync(path.join(proj, 'weights.npy'), Buffer.alloc(200_000, 7));
  fs.symlinkSync('analysis.py', path.join(proj, 'latest.py'));
  fs.writeFileSync(path.join(data, u, 'workspace_info.json'), JSON.stringify({ username: u, user_id: 1, version: 1 }));
}
db.close();
fs.writeFileSync(path.join(data, 'backups', 'scitex_cloud_dev_backup_20251001_020000.db'), fs.readFileSync(path.join(data, 'scitex_cloud_dev.db')));
console.log(`demo tree (old layout) in ${root}`);

step('what would move, changing nothing', ['migrate', '--dry-run']);
step('move into the new layout (journaled)', ['migrate', '--yes']);
step('the nightly job: database snapshot + one archive per user', ['backup']);
step('a second night: unchanged users cost nothing', ['backup']);
step('list the backups', ['list']);
step('prove layout and backups (with scratch restores)', ['verify', '--backups', '--deep']);
fs.rmSync(path.join(data, 'users', 'bob.smith'), { recursive: true });
fs.writeFileSync(path.join(data, 'users', 'alice', 'proj', 'neuro-analysis', 'analysis.py'), 'oops');
console.log('\n(demo: deleted user bob.smith and damaged alice\'s analysis.py)');
step('what a restore would change', ['restore', 'users', '--dry-run']);
step('restore every user from the newest set', ['restore', 'users', '--yes']);
step('restore the database, keeping a safety copy', ['restore', 'db', '--yes']);
step('all green again', ['verify']);
const restored = fs.readFileSync(path.join(data, 'users', 'alice', 'proj', 'neuro-analysis', 'analysis.py'), 'utf8');
if (!restored.startsWith('import numpy') || !fs.existsSync(path.join(data, 'users', 'bob.smith', 'workspace_info.json'))) {
  console.error('demo: the restore did not bring the files back');
  process.exit(1);
}
console.log(`\ndemo: done. Everything above ran on ${root} (remove it when you are finished).`);
