import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { TRIALS, trials } from './report.js';

// restore db (SQLite) against what a crashed or hostile app leaves at the live path.
const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../..');
const WRITER = path.join(HERE, '../helpers/sqlite-writer.cjs');
const CRASH = path.join(HERE, '../helpers/sqlite-crash.cjs');
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };
const REL = 'data/db/sqlite/scitex_cloud_dev.db';
const APP = 65534;
let template = '';

beforeAll(() => {
  template = tempDir('scitex-torture-');
  expect(cli(['--root', template, 'init']).code).toBe(0);
  for (const d of ['data', 'data/db', 'data/db/sqlite']) fs.chmodSync(path.join(template, d), 0o755);
  spawnSync(process.execPath, [WRITER, path.join(template, REL), 'checkpoint', '300']);
  expect(cli(['--root', template, 'backup', 'db'], { env }).code).toBe(0);
  // The live database moves on after the backup: 300 rows backed up, 340 live.
  spawnSync(process.execPath, [WRITER, path.join(template, REL), 'checkpoint', '40']);
});
afterAll(() => fs.rmSync(template, { recursive: true, force: true }));

function copy(): string {
  const d = tempDir('scitex-trial-');
  execFileSync('cp', ['-a', `${template}/.`, d]);
  fs.chmodSync(d, 0o755);
  return d;
}

/** Rows of a and b and integrity_check, opened as the app would (side files replayed or rolled back). */
function state(file: string): { a: number; b: number; ok: string } {
  const db = new Database(file);
  try {
    const n = (t: string) => (db.prepare(`SELECT count(*) n FROM ${t}`).get() as { n: number }).n;
    return { a: n('a'), b: n('b'), ok: String(db.pragma('integrity_check', { simple: true })) };
  } finally {
    db.close();
  }
}

function restore(root: string): { code: number; doc: { safetyCopy: string | null; safetyFiles: string[] }; stderr: string } {
  // Each trial is a copy of the template's tree, i.e. another root: its backup is named with --from,
  // as restore requires for a backup made by another root.
  const backups = path.join(root, 'data/db/backups');
  const from = path.join(backups, fs.readdirSync(backups).find((n) => n.endsWith('.db'))!);
  const r = cli(['--root', root, '--json', 'restore', 'db', '--yes', '--from', from], { env });
  return { code: r.code, doc: r.code === 0 ? JSON.parse(r.stdout) : null, stderr: r.stderr };
}

describe('restore db (SQLite) over what a crash left behind', () => {
  it('stale side files (-wal, hot -journal), with the live file present or missing', async () => {
    const kinds = ['wal', 'journal', 'wal, file missing', 'journal, file missing'] as const;
    await trials('stale SQLite side files at restore', Math.max(TRIALS, kinds.length), 'restored file holds exactly the backup (integrity ok); side files kept with the old file, never replayed into the new one', async (i) => {
      const root = copy();
      try {
        const file = path.join(root, REL);
        const kind = kinds[i % kinds.length]!;
        if (kind.startsWith('wal')) spawnSync(process.execPath, [WRITER, file, 'nocheckpoint', String(10 + i)]);
        else spawnSync(process.execPath, [CRASH, file]);
        const side = file + (kind.startsWith('wal') ? '-wal' : '-journal');
        expect(fs.statSync(side).size).toBeGreaterThan(0);
        const sideBytes = fs.readFileSync(side);
        if (kind.endsWith('missing')) fs.rmSync(file);
        const r = restore(root);
        expect(r.code, r.stderr).toBe(0);
        expect(state(file)).toEqual({ a: 300, b: 300, ok: 'ok' });
        const kept = r.doc.safetyFiles.find((f) => f.endsWith(side.slice(file.length)))!;
        expect(fs.readFileSync(kept).equals(sideBytes)).toBe(true);
        // With its file, the kept copy is the old database as committed (the journal rolls back, the -wal replays).
        if (!kind.endsWith('missing')) expect(state(r.doc.safetyCopy!)).toEqual(kind === 'wal' ? { a: 350 + i, b: 350 + i, ok: 'ok' } : { a: 340, b: 340, ok: 'ok' });
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });

  it('a corrupt live file: random bytes, truncated, empty, damaged header', async () => {
    const damage: ((b: Buffer) => Buffer)[] = [
      (b) => crypto.randomBytes(b.length),
      (b) => b.subarray(0, 1000 + crypto.randomInt(b.length / 2)),
      () => Buffer.alloc(0),
      (b) => Buffer.concat([Buffer.from('SQLite format 2\0'), b.subarray(16)]),
    ];
    await trials('corrupt live SQLite file at restore', Math.max(TRIALS, damage.length), 'restore exits 0 with the backup in place; the corrupt file is kept byte for byte as the safety copy', async (i) => {
      const root = copy();
      try {
        const file = path.join(root, REL);
        const bad = damage[i % damage.length]!(fs.readFileSync(file));
        fs.writeFileSync(file, bad);
        const r = restore(root);
        expect(r.code, r.stderr).toBe(0);
        expect(state(file)).toEqual({ a: 300, b: 300, ok: 'ok' });
        expect(fs.readFileSync(r.doc.safetyCopy!).equals(bad)).toBe(true);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });

  it("a root restore keeps the app user's owner, group and mode, and the app can write", async () => {
    const modes = [0o600, 0o640, 0o660, 0o644];
    await trials('app-user ownership kept by restore db (SQLite, as root)', Math.max(TRIALS, modes.length), 'restored file has the replaced file\'s uid, gid and mode; the app user (uid 65534) commits to it', async (i) => {
      const root = copy();
      try {
        const file = path.join(root, REL);
        const mode = modes[i % modes.length]!;
        fs.chownSync(path.dirname(file), APP, APP);
        fs.chownSync(file, APP, APP);
        fs.chmodSync(file, mode);
        const r = restore(root);
        expect(r.code, r.stderr).toBe(0);
        const st = fs.statSync(file);
        expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([APP, APP, mode]);
        const w = spawnSync('setpriv', [`--reuid=${APP}`, `--regid=${APP}`, '--clear-groups', process.execPath, '-e', "const D=require('better-sqlite3');const db=new D(process.argv[1]);db.exec(\"INSERT INTO a(v) VALUES ('app')\");db.close()", file], { cwd: REPO, encoding: 'utf8' });
        expect(w.status, w.stderr).toBe(0);
        expect(state(file).a).toBe(301);
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });
});
