import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';

const WRITER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../helpers/sqlite-writer.cjs');
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };
let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function counts(file: string): { a: number; b: number; ok: string } {
  const db = new Database(file, { readonly: true });
  try {
    const a = (db.prepare('SELECT count(*) n FROM a').get() as { n: number }).n;
    const b = (db.prepare('SELECT count(*) n FROM b').get() as { n: number }).n;
    const ok = (db.pragma('integrity_check') as { integrity_check: string }[])[0]!.integrity_check;
    return { a, b, ok };
  } finally {
    db.close();
  }
}

function setup(): string {
  root = tempDir();
  expect(cli(['--root', root, 'init']).code).toBe(0);
  return path.join(root, 'data/db/sqlite/scitex_cloud_dev.db');
}

describe('SQLite backup and restore', () => {
  it('takes consistent snapshots while the app keeps committing', async () => {
    const dbFile = setup();
    spawnSync(process.execPath, [WRITER, dbFile, 'checkpoint', '200']);
    const writer = spawn(process.execPath, [WRITER, dbFile, 'checkpoint'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const seen: number[] = [];
      for (let i = 0; i < 3; i++) {
        const r = cli(['--root', root, '--json', 'backup', 'db'], { env });
        expect(r.code, r.stderr).toBe(0);
        const file = JSON.parse(r.stdout).artifacts[0].path as string;
        expect(path.basename(file)).toMatch(/^scitex_cloud_dev_\d{8}_\d{6}\.db$/);
        const c = counts(file);
        expect(c.ok).toBe('ok');
        expect(c.a).toBe(c.b); // a state that really existed: both rows of every transaction or neither
        expect(c.a).toBeGreaterThanOrEqual(200);
        seen.push(c.a);
      }
      expect(seen[2]!).toBeGreaterThan(seen[0]!); // the writer really was writing during the backups
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('includes rows that exist only in the -wal file', () => {
    const dbFile = setup();
    spawnSync(process.execPath, [WRITER, dbFile, 'nocheckpoint', '300']);
    expect(fs.statSync(dbFile + '-wal').size).toBeGreaterThan(0);
    const r = cli(['--root', root, '--json', 'backup', 'db'], { env });
    expect(r.code).toBe(0);
    expect(counts(JSON.parse(r.stdout).artifacts[0].path).a).toBe(300);
  });

  it('restores with a safety copy, removes stale -wal/-shm, and refuses a damaged file', () => {
    const dbFile = setup();
    spawnSync(process.execPath, [WRITER, dbFile, 'checkpoint', '100']);
    const b = cli(['--root', root, '--json', 'backup', 'db'], { env });
    const backup = JSON.parse(b.stdout).artifacts[0].path as string;
    spawnSync(process.execPath, [WRITER, dbFile, 'nocheckpoint', '50']); // 50 more rows, only in the -wal
    expect(counts(dbFile).a).toBe(150);
    const liveMode = fs.statSync(dbFile).mode & 0o777;
    const dry = cli(['--root', root, '--json', 'restore', 'db', '--dry-run'], { env });
    expect(JSON.parse(dry.stdout).dryRun).toBe(true);
    expect(counts(dbFile).a).toBe(150);
    const r = cli(['--root', root, '--json', 'restore', 'db', '--yes'], { env });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(fs.existsSync(dbFile + '-wal')).toBe(false);
    expect(fs.existsSync(dbFile + '-shm')).toBe(false);
    expect(counts(dbFile)).toEqual({ a: 100, b: 100, ok: 'ok' });
    expect(counts(doc.safetyCopy).a).toBe(150); // the safety copy kept the -wal rows
    expect(fs.statSync(dbFile).mode & 0o777).toBe(liveMode); // the app's file keeps its mode
    // A flipped byte: refused before anything changes.
    const bytes = fs.readFileSync(backup);
    bytes[bytes.length - 100] ^= 0x55;
    fs.writeFileSync(backup, bytes);
    const bad = cli(['--root', root, 'restore', 'db', '--yes'], { env });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/does not match its recorded SHA-256/);
    expect(counts(dbFile).a).toBe(100);
  });

  it('refuses to run non-interactively without --yes (exit 2)', () => {
    const dbFile = setup();
    spawnSync(process.execPath, [WRITER, dbFile, 'checkpoint', '10']);
    expect(cli(['--root', root, 'backup', 'db'], { env }).code).toBe(0);
    const r = cli(['--root', root, 'restore', 'db'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--yes/);
  });

  it('a missing database is a one-line error and leaves nothing behind', () => {
    setup();
    const r = cli(['--root', root, 'backup', 'db'], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not exist/);
    expect(fs.readdirSync(path.join(root, 'data/db/backups')).filter((n) => !n.startsWith('.scitex-data.lock') && n !== '.scitex-data-state.json')).toEqual(['.gitkeep']); // the directory's lock file stays, like data/'s, and the failed run is recorded for status
  });
});
