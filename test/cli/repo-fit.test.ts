import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { countRows, env, makeAuthDb } from '../helpers/migtree.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const work: string[] = [];
afterAll(() => {
  for (const d of work) fs.rmSync(d, { recursive: true, force: true });
});

const git = (root: string, ...args: string[]) => execFileSync('git', ['-C', root, '-c', 'user.email=t@example.org', '-c', 'user.name=t', ...args], { encoding: 'utf8' });
const status = (root: string) => git(root, 'status', '--porcelain', '--untracked-files=all').split('\n').filter(Boolean).sort();

// The ways Django settings name a SQLite path: Black-split and parenthesised, os.path.join over several
// lines, str(...) with single quotes, and one already in the new place.
const SETTINGS: Record<string, string> = {
  'settings_dev.py': `from .settings_base import *  # noqa

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": (
            BASE_DIR
            / "scitex_cloud_dev.db"
        ),
    }
}
DEBUG = True
ALLOWED_HOSTS = ["*"]
INTERNAL_IPS = ["127.0.0.1"]
`,
  'settings_prod.py': `import os

from .settings_base import *  # noqa

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(
            BASE_DIR,
            "data",
            "scitex_cloud_prod.db",
        ),
    }
}
DEBUG = False
`,
  'settings_base.py': `import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SHARED_DB = str(BASE_DIR / 'data' / 'scitex_cloud.db')
CACHE_DB = os.path.join(BASE_DIR, 'data', 'db', 'sqlite', 'cache.db')
SCRATCH_DB = BASE_DIR / "db.sqlite3"  # Django's default name: not the old app's, migrate leaves it alone
`,
};

// The real repository's .gitignore trap (data/**/ next to .gitkeep negations), .env ignored.
const GITIGNORE = `__pycache__/
.venv/
.env
*.db
*.db-*
data/**/
!data/db/sqlite/.gitkeep
`;

/** A committed app repository with an old data/ tree: the same dev database at the root and in data/. */
function repoTree(): string {
  const root = tempDir('scitex-fit-');
  work.push(root);
  fs.mkdirSync(path.join(root, 'config/settings'), { recursive: true });
  for (const [n, t] of Object.entries(SETTINGS)) fs.writeFileSync(path.join(root, 'config/settings', n), t);
  fs.writeFileSync(path.join(root, 'config/settings/__init__.py'), '');
  fs.writeFileSync(path.join(root, '.gitignore'), GITIGNORE);
  fs.writeFileSync(path.join(root, '.env'), 'export SCITEX_CLOUD_ENV=development\nexport SECRET_KEY=abc#def\n');
  fs.writeFileSync(path.join(root, 'manage.py'), '#!/usr/bin/env python\n');
  const data = path.join(root, 'data');
  fs.mkdirSync(data);
  makeAuthDb(path.join(root, 'scitex_cloud_dev.db'), ['alice']);
  // The data/ copy has committed rows only in its -wal (its writer died).
  const code = `
    const db = new (require('better-sqlite3'))(process.argv[1]);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 0');
    db.exec('CREATE TABLE auth_user(id INTEGER PRIMARY KEY, username TEXT UNIQUE); CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)');
    db.prepare('INSERT INTO auth_user(username) VALUES (?)').run('bob');
    for (let i = 0; i < 7; i++) db.prepare('INSERT INTO t(v) VALUES (?)').run('old ' + i);
    process.kill(process.pid, 'SIGKILL');`;
  spawnSync(process.execPath, ['-e', code, path.join(data, 'scitex_cloud_dev.db')], { cwd: path.join(HERE, '../..') });
  makeAuthDb(path.join(data, 'scitex_cloud_prod.db'), []);
  for (const u of ['alice', 'bob']) {
    fs.mkdirSync(path.join(data, u, 'proj', 'paper'), { recursive: true });
    fs.writeFileSync(path.join(data, u, 'proj', 'paper', 'main.tex'), u);
  }
  git(root, 'init', '-q');
  git(root, 'add', '-A');
  git(root, 'commit', '-q', '-m', 'app');
  expect(status(root)).toEqual([]);
  return root;
}

describe('migrate fits into the app repository', () => {
  it('verify flags every old SQLite path style; the dry run shows a short unified diff and writes nothing', () => {
    const root = repoTree();
    const v = cli(['--root', root, '--json', 'verify', '--skip-db'], { env });
    const check = JSON.parse(v.stdout).checks.find((c: { name: string }) => c.name === 'settings.sqlite-paths');
    expect(check.status).toBe('fail');
    for (const f of ['settings_base.py:5', 'settings_dev.py:7', 'settings_prod.py:8']) expect(check.found).toContain(f);
    // alice and bob are known only from auth_user: verify agrees with migrate that they are users.
    const checks = JSON.parse(v.stdout).checks as { name: string; status: string; found: string }[];
    const unknown = checks.find((c) => c.name === 'layout.unknown-entries')!;
    expect(unknown.found).not.toMatch(/alice|bob/);
    expect(unknown.status).toBe('pass');
    const dry = cli(['--root', root, 'migrate', '--dry-run'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    const out = dry.stdout;
    expect(out).toContain('--- config/settings/settings_dev.py');
    expect(out).toContain('--- config/settings/settings_dev.py\n  +++ config/settings/settings_dev.py\n  @@ -5,6 +5,9 @@\n');
    expect(out).toContain('+            / "data"\n  +            / "db"\n  +            / "sqlite"\n               / "scitex_cloud_dev.db"');
    expect(out).toContain(`+            "db",`);
    expect(out).toContain(`-SHARED_DB = str(BASE_DIR / 'data' / 'scitex_cloud.db')\n  +SHARED_DB = str(BASE_DIR / 'data' / 'db' / 'sqlite' / 'scitex_cloud.db')`);
    // Context, not a dump: the unchanged tail of settings_dev.py is not printed.
    expect(out).not.toContain('INTERNAL_IPS');
    expect(out).not.toContain('DEBUG = True');
    expect(out).not.toContain('+SCRATCH_DB');
    // Both dev databases: the settings name the root one; the data/ one is kept as a backup.
    expect(out).toMatch(/data\/scitex_cloud_dev\.db -> data\/db\/backups\/scitex_cloud_dev_from-data_\d{8}_\d{6}\.db/);
    expect(out).toMatch(/data\/scitex_cloud_dev\.db-wal -> data\/db\/backups\/scitex_cloud_dev_from-data_\d{8}_\d{6}\.db-wal/);
    expect(dry.stderr).toMatch(/scitex_cloud_dev\.db stays the live database \(the settings name it\)/);
    expect(dry.stdout).toMatch(/user +data\/alice -> data\/users\/alice/);
    expect(status(root)).toEqual([]);
  });

  it('leaves git status showing only the edited files and the layout .gitkeep files; rollback gives everything back', () => {
    const root = repoTree();
    const r = cli(['--root', root, 'migrate', '--yes'], { env });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(status(root)).toEqual([
      ' M .gitignore',
      ' M config/settings/settings_base.py',
      ' M config/settings/settings_dev.py',
      ' M config/settings/settings_prod.py',
      '?? data/db/backups/.gitkeep',
      '?? data/db/migrations_archive/.gitkeep',
      '?? data/db/sqlite/.gitkeep',
      '?? data/users/.gitkeep',
    ]);
    expect(fs.readFileSync(path.join(root, 'config/settings/settings_prod.py'), 'utf8')).toContain('"data",\n            "db",\n            "sqlite",\n            "scitex_cloud_prod.db",');
    // The live dev database is the root one (alice); the data/ one (bob, only in its -wal) is kept whole.
    expect(countRows(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), 'auth_user')).toBe(1);
    const backups = fs.readdirSync(path.join(root, 'data/db/backups'));
    const kept = backups.find((n) => /^scitex_cloud_dev_from-data_\d{8}_\d{6}\.db$/.test(n))!;
    expect(kept).toBeDefined();
    expect(backups).toContain(`${kept}-wal`);
    expect(countRows(path.join(root, 'data/db/backups', kept), 't')).toBe(7);
    expect(fs.statSync(path.join(root, 'data/db/backups', kept)).mode & 0o777).toBe(0o600);
    // The originals of the edited files are kept out of git's sight, privately.
    const copies = backups.filter((n) => n.startsWith('pre-migrate_'));
    expect(copies).toHaveLength(1);
    expect(fs.readFileSync(path.join(root, 'data/db/backups', copies[0]!, 'config/settings/settings_dev.py'), 'utf8')).toBe(SETTINGS['settings_dev.py']);
    expect(fs.readFileSync(path.join(root, 'data/db/backups', copies[0]!, '.gitignore'), 'utf8')).toBe(GITIGNORE);
    expect(fs.statSync(path.join(root, 'data/db/backups', copies[0]!, '.gitignore')).mode & 0o777).toBe(0o600);
    const v = cli(['--root', root, '--json', 'verify', '--skip-db'], { env });
    const checks = JSON.parse(v.stdout).checks as { name: string; status: string }[];
    expect(checks.find((c) => c.name === 'settings.sqlite-paths')!.status).toBe('pass');
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);

    const back = cli(['--root', root, 'migrate', '--rollback', '--yes'], { env });
    expect(back.code, back.stderr).toBe(0);
    // Only the lock file and the rolled-back journal (kept as a record) remain, both named as ours.
    expect(status(root).filter((l) => !l.startsWith('?? data/.scitex-data'))).toEqual([]);
    expect(fs.statSync(path.join(root, '.gitignore')).mode & 0o777).toBe(0o644);
    expect(countRows(path.join(root, 'scitex_cloud_dev.db'), 'auth_user')).toBe(1);
    expect(countRows(path.join(root, 'data/scitex_cloud_dev.db'), 't')).toBe(7);
    expect(fs.statSync(path.join(root, 'data/scitex_cloud_dev.db')).mode & 0o777).toBe(0o644);
    expect(fs.existsSync(path.join(root, 'data/db'))).toBe(false);
  });

  it('keeps the database the settings name live when it is the data/ one', () => {
    const root = repoTree();
    const dev = path.join(root, 'config/settings/settings_dev.py');
    fs.writeFileSync(dev, fs.readFileSync(dev, 'utf8').replace('/ "scitex_cloud_dev.db"', '/ "data"\n            / "scitex_cloud_dev.db"'));
    git(root, 'commit', '-q', '-am', 'dev in data');
    const r = cli(['--root', root, 'migrate', '--yes'], { env });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect(countRows(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), 't')).toBe(7);
    const kept = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => /^scitex_cloud_dev_from-root_\d{8}_\d{6}\.db$/.test(n));
    expect(kept).toBeDefined();
    expect(countRows(path.join(root, 'data/db/backups', kept!), 'auth_user')).toBe(1);
  });
});
