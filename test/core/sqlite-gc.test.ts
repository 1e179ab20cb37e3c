import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';

// better-sqlite3 12 built against Node >= 24.19 headers aborts the process (SIGABRT, "Assertion failed: (env) !=
// nullptr" in node::RemoveEnvironmentCleanupHook) when the garbage collector finalizes one of its objects. These
// runs drive the built adapters in a separate node, so that the collector has dropped statements and databases
// to finalize (as in a long backup or verify): it must end normally. On older Node they pass either way.
const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/adapters');
const T = tempDir('scitex-sqlite-gc-');
afterAll(() => fs.rmSync(T, { recursive: true, force: true }));

function runNode(script: string): { status: number | null; signal: string | null; out: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: path.resolve(dist, '../..'), encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, signal: r.signal, out: (r.stdout + r.stderr).slice(0, 2000) };
}

describe('better-sqlite3 objects and the garbage collector', () => {
  it('checks, counts, user lists and snapshots in a loop while the heap churns end normally', () => {
    const db = path.join(T, 'app.db');
    const script = `
      import Database from 'better-sqlite3';
      import { checkDatabase, tableCounts, authUsernames, snapshot } from ${JSON.stringify(path.join(dist, 'sqlite.js'))};
      const db = new Database(${JSON.stringify(db)});
      db.pragma('journal_mode = wal');
      db.exec("CREATE TABLE auth_user(id INTEGER PRIMARY KEY, username TEXT); INSERT INTO auth_user(username) VALUES ('alice'), ('bob')");
      db.close();
      let junk = [];
      for (let i = 0; i < 300; i++) {
        if (checkDatabase(${JSON.stringify(db)}).length) throw new Error('check failed');
        if (tableCounts(${JSON.stringify(db)}).auth_user !== 2) throw new Error('count');
        if (authUsernames(${JSON.stringify(db)}).length !== 2) throw new Error('users');
        if (i % 50 === 0) await snapshot(${JSON.stringify(db)}, ${JSON.stringify(path.join(T, 'snap'))} + i + '.db');
        for (let j = 0; j < 3000; j++) junk.push({ j, s: 'x'.repeat(64) });
        if (junk.length > 60000) junk = [];
      }
      console.log('done');
    `;
    const r = runNode(script);
    expect(r, r.out).toMatchObject({ status: 0, signal: null });
    expect(r.out).toContain('done');
  });

  it('statements dropped by any caller (prepare, pragma, iterate) are never finalized mid-run', () => {
    const script = `
      import ${JSON.stringify(path.join(dist, 'sqlitekeep.js'))};
      import Database from 'better-sqlite3';
      for (let i = 0; i < 40; i++) {
        const db = new Database(':memory:');
        db.exec('CREATE TABLE t(x)');
        for (let j = 0; j < 1000; j++) db.prepare('INSERT INTO t VALUES (?)').run(j);
        db.pragma('quick_check');
        for (const row of db.prepare('SELECT x FROM t LIMIT 3').iterate()) void row;
        db.close();
        let junk = [];
        for (let j = 0; j < 50000; j++) junk.push({ j, s: 'y'.repeat(64) });
      }
      console.log('done');
    `;
    const r = runNode(script);
    expect(r, r.out).toMatchObject({ status: 0, signal: null });
    expect(r.out).toContain('done');
  });
});
