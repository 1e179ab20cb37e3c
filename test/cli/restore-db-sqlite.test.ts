import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cli, tempDir } from '../helpers/cli.js';

// restore db for SQLite in the incidents it exists for: a corrupt or missing live file, side files left
// by a crashed app, an app that runs as its own user, and names an attacker could plant.
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const WRITER = path.join(HERE, '../helpers/sqlite-writer.cjs');
const CRASH = path.join(HERE, '../helpers/sqlite-crash.cjs');
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };
const APP = 65534; // nobody: stands in for the app's own user
let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** count(a), count(b) and integrity_check of a database, opened the way the app opens it (side files replayed). */
function state(file: string): { a: number; b: number; ok: string } {
  const db = new Database(file);
  try {
    const a = (db.prepare('SELECT count(*) n FROM a').get() as { n: number }).n;
    const b = (db.prepare('SELECT count(*) n FROM b').get() as { n: number }).n;
    return { a, b, ok: String(db.pragma('integrity_check', { simple: true })) };
  } finally {
    db.close();
  }
}

/** A root with a 100-row database and its backup; returns the live path. */
function setup(): string {
  root = tempDir();
  fs.chmodSync(root, 0o755); // the app user must reach data/
  expect(cli(['--root', root, 'init']).code).toBe(0);
  for (const d of ['data', 'data/db', 'data/db/sqlite']) fs.chmodSync(path.join(root, d), 0o755); // as the design document has them
  const file = path.join(root, 'data/db/sqlite/scitex_cloud_dev.db');
  spawnSync(process.execPath, [WRITER, file, 'checkpoint', '100']);
  const b = cli(['--root', root, 'backup', 'db'], { env });
  expect(b.code, b.stderr).toBe(0);
  return file;
}

/** Leaves a hot rollback journal: a DELETE-mode writer killed mid-transaction after spilling pages. */
function crashMidTransaction(file: string): void {
  spawnSync(process.execPath, [CRASH, file]);
  expect(fs.statSync(file + '-journal').size).toBeGreaterThan(0);
}

const restore = (extra: string[] = []) => cli(['--root', root, '--json', 'restore', 'db', '--yes', ...extra], { env });
const asApp = (file: string, sql: string) =>
  spawnSync('setpriv', [`--reuid=${APP}`, `--regid=${APP}`, '--clear-groups', process.execPath, '-e', `const D=require('better-sqlite3');const db=new D(process.argv[1]);db.exec(process.argv[2]);db.close()`, file, sql], { cwd: REPO, encoding: 'utf8' });

describe('restore db (SQLite) in an incident', () => {
  it('a corrupt live file (not a database) is kept byte for byte as the safety copy and the backup restored', () => {
    const file = setup();
    const junk = Buffer.from('this is not a database at all '.repeat(500));
    fs.writeFileSync(file, junk);
    const r = restore();
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(state(file)).toEqual({ a: 100, b: 100, ok: 'ok' });
    expect(fs.readFileSync(doc.safetyCopy).equals(junk)).toBe(true);
  });

  it('a missing live file with a stale -wal: the backup is restored, the -wal moved aside, not replayed', () => {
    const file = setup();
    spawnSync(process.execPath, [WRITER, file, 'nocheckpoint', '50']); // crash: 50 more rows only in the -wal
    const wal = fs.readFileSync(file + '-wal');
    fs.rmSync(file);
    const r = restore();
    expect(r.code, r.stderr).toBe(0);
    expect(state(file)).toEqual({ a: 100, b: 100, ok: 'ok' });
    const doc = JSON.parse(r.stdout);
    const kept = (doc.safetyFiles as string[]).find((f) => f.endsWith('-wal'))!;
    expect(fs.readFileSync(kept).equals(wal)).toBe(true);
    expect(fs.existsSync(file + '-wal')).toBe(false);
  });

  it('a corrupt live file with a -wal: both kept together as the safety copy', () => {
    const file = setup();
    spawnSync(process.execPath, [WRITER, file, 'nocheckpoint', '50']);
    fs.writeFileSync(file, Buffer.alloc(8192, 0x42));
    const r = restore();
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(state(file)).toEqual({ a: 100, b: 100, ok: 'ok' });
    expect(doc.safetyFiles).toEqual([doc.safetyCopy, doc.safetyCopy + '-wal', doc.safetyCopy + '-shm']);
  });

  it('a hot -journal left by a crashed app goes with the old database, never into the restored one', () => {
    const file = setup();
    spawnSync(process.execPath, [WRITER, file, 'checkpoint', '20']); // live now holds 120 rows
    crashMidTransaction(file);
    const r = restore();
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(fs.existsSync(file + '-journal')).toBe(false);
    expect(state(file)).toEqual({ a: 100, b: 100, ok: 'ok' });
    // The safety copy with its journal is the old database as it was committed: SQLite rolls the journal back.
    expect(fs.existsSync(doc.safetyCopy + '-journal')).toBe(true);
    expect(state(doc.safetyCopy)).toEqual({ a: 120, b: 120, ok: 'ok' });
  });

  it('keeps the owner, group and mode of the file it replaces: the app user can still write', () => {
    const file = setup();
    const dir = path.dirname(file);
    fs.chownSync(dir, APP, APP);
    fs.chownSync(file, APP, APP);
    fs.chmodSync(file, 0o660);
    const r = restore();
    expect(r.code, r.stderr).toBe(0);
    const st = fs.statSync(file);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([APP, APP, 0o660]);
    const w = asApp(file, "INSERT INTO a(v) VALUES ('by the app')");
    expect(w.status, w.stderr).toBe(0);
    expect(state(file).a).toBe(101);
  });

  it('with no live file: owner and group of the directory, mode 0640 (0660 in a group-writable directory)', () => {
    const file = setup();
    const dir = path.dirname(file);
    fs.chownSync(dir, APP, APP);
    fs.rmSync(file);
    expect(restore().code).toBe(0);
    let st = fs.statSync(file);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([APP, APP, 0o640]);
    expect(asApp(file, "INSERT INTO a(v) VALUES ('x')").status).toBe(0);
    fs.chmodSync(dir, 0o2775);
    fs.rmSync(file);
    expect(restore().code).toBe(0);
    st = fs.statSync(file);
    expect(st.mode & 0o7777).toBe(0o660);
  });

  it('never writes through a symlink planted at the live path, a side file or a safety-copy name', () => {
    const file = setup();
    const dir = path.dirname(file);
    const victim = path.join(root, 'victim');
    fs.writeFileSync(victim, 'precious');
    const live = fs.readFileSync(file);
    // The live path itself is a link: refused, nothing changed.
    fs.renameSync(file, file + '.real');
    fs.symlinkSync(victim, file);
    let r = restore();
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/symbolic link/);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    fs.rmSync(file);
    fs.renameSync(file + '.real', file);
    // A link at a side-file name of the live database: refused too.
    fs.symlinkSync(victim, file + '-journal');
    r = restore();
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/symbolic link/);
    fs.rmSync(file + '-journal');
    // Links at every safety-copy name of the next minute (main file and side files): none is written through.
    const now = Date.now();
    for (let s = 0; s < 60; s++) {
      const d = new Date(now + s * 1000);
      const p = (n: number) => String(n).padStart(2, '0');
      const ts = `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}_${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
      for (const suffix of ['.db', '.db-wal', '.db-journal', '.db-shm']) fs.symlinkSync(victim, path.join(dir, `scitex_cloud_dev_pre_restore_${ts}${suffix}`));
    }
    r = restore();
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(victim, 'utf8')).toBe('precious');
    const doc = JSON.parse(r.stdout);
    expect(fs.lstatSync(doc.safetyCopy).isFile()).toBe(true);
    expect(fs.readFileSync(doc.safetyCopy).equals(live)).toBe(true);
    expect(state(file)).toEqual({ a: 100, b: 100, ok: 'ok' });
  });

  it('the prompt names the safety copy that is really created, however long the operator takes', async () => {
    const file = setup();
    // A terminal (script(1)) so that restore asks; the answer comes more than a second after the question.
    const child = spawn('script', ['-qec', `${process.execPath} ${BIN} --root ${root} restore db`, '/dev/null'], { env: cleanEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const done = new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('[y/N]')) resolve();
      }),
    );
    await new Promise((r) => setTimeout(r, 2100));
    child.stdin.write('y\n');
    expect(await done).toBe(0);
    const planned = /keeping the current database as (\S+)/.exec(out)![1]!;
    const reported = /; kept the current database as (\S+)/.exec(out)![1]!;
    expect(reported, out).toBe(planned);
    expect(fs.existsSync(planned)).toBe(true);
    // One safety copy (its side files, if any, carry the same name).
    const kept = fs.readdirSync(path.dirname(file)).filter((n) => n.includes('_pre_restore_'));
    expect(kept.filter((n) => !n.startsWith(path.basename(planned))), out).toEqual([]);
  });
});
