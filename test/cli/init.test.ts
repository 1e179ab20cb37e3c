import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
const mode = (p: string) => fs.statSync(path.join(root, p)).mode & 0o777;

describe('scitex-data init', () => {
  it('creates the layout in an empty directory, private where it must be, and is idempotent', () => {
    root = tempDir();
    const r = cli(['--root', root, 'init']);
    expect(r.code).toBe(0);
    for (const d of ['data/db/sqlite', 'data/db/backups', 'data/db/migrations_archive', 'data/users']) {
      expect(fs.existsSync(path.join(root, d, '.gitkeep'))).toBe(true);
    }
    expect(mode('data/db/backups')).toBe(0o700);
    expect(mode('data/db/sqlite')).toBe(0o755); // the app's directory: 755 as in the design, never private
    const gi = fs.readFileSync(path.join(root, '.gitignore'), 'utf8');
    const snapshot = execFileSync('find', [root, '-printf', '%p %m %s\n']).toString();
    const again = cli(['--root', root, 'init']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/Nothing to do/);
    expect(fs.readFileSync(path.join(root, '.gitignore'), 'utf8')).toBe(gi);
    expect(execFileSync('find', [root, '-printf', '%p %m %s\n']).toString()).toBe(snapshot);
  });

  it('inside a git repository: git check-ignore agrees with the intent, existing lines kept', () => {
    root = tempDir();
    execFileSync('git', ['init', '-q'], { cwd: root });
    fs.writeFileSync(path.join(root, '.gitignore'), 'node_modules/\ndata/**/\n');
    expect(cli(['init'], { cwd: root }).code).toBe(0);
    expect(fs.readFileSync(path.join(root, '.gitignore'), 'utf8').startsWith('node_modules/\ndata/**/\n')).toBe(true);
    fs.writeFileSync(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), 'x');
    fs.writeFileSync(path.join(root, 'data/db/backups/a.dump'), 'x');
    fs.mkdirSync(path.join(root, 'data/users/alice'));
    fs.writeFileSync(path.join(root, 'data/users/alice/f'), 'x');
    fs.mkdirSync(path.join(root, 'data/ssh_keys'));
    fs.writeFileSync(path.join(root, 'data/ssh_keys/id'), 'x');
    execFileSync('git', ['add', '-A'], { cwd: root });
    const tracked = execFileSync('git', ['ls-files'], { cwd: root }).toString().trim().split('\n').sort();
    expect(tracked).toEqual(['.gitignore', 'data/db/backups/.gitkeep', 'data/db/migrations_archive/.gitkeep', 'data/db/sqlite/.gitkeep', 'data/users/.gitkeep']);
  });

  it('never overwrites an existing .gitkeep and --dry-run changes nothing', () => {
    root = tempDir();
    fs.mkdirSync(path.join(root, 'data/users'), { recursive: true });
    fs.writeFileSync(path.join(root, 'data/users/.gitkeep'), 'keep me');
    const dry = cli(['--root', root, '--json', 'init', '--dry-run']);
    expect(dry.code).toBe(0);
    const doc = JSON.parse(dry.stdout);
    expect(doc.dryRun).toBe(true);
    expect(doc.created).toContain('data/db/sqlite/');
    expect(fs.existsSync(path.join(root, 'data/db'))).toBe(false);
    expect(fs.existsSync(path.join(root, '.gitignore'))).toBe(false);
    expect(cli(['--root', root, 'init']).code).toBe(0);
    expect(fs.readFileSync(path.join(root, 'data/users/.gitkeep'), 'utf8')).toBe('keep me');
  });

  it('refuses an old layout and points to migrate (exit 2), creating nothing', () => {
    root = tempDir();
    fs.mkdirSync(path.join(root, 'data/alice'), { recursive: true });
    fs.writeFileSync(path.join(root, 'data/scitex_cloud_dev.db'), '');
    const r = cli(['--root', root, 'init']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/old layout.*scitex-data migrate/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(path.join(root, 'data/db'))).toBe(false);
  });
});
