import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { makeAuthDb } from '../helpers/migtree.js';
import { makeUser } from '../helpers/tree.js';

let root = '';
let set = '';
let to = '';
beforeAll(() => {
  root = tempDir('scitex-time-');
  to = tempDir('scitex-time-to-');
  expect(cli(['--root', root, 'init']).code).toBe(0);
  makeUser(path.join(root, 'data/users'), 'alice', 1);
  const r = cli(['--root', root, '--json', 'backup', 'users']);
  expect(r.code, r.stderr).toBe(0);
  set = path.basename((JSON.parse(r.stdout) as { set: string }).set);
  // Two more sets, named as backups taken at known UTC instants (a bare set is listed, marked damaged).
  for (const n of ['users_20251101_000000', 'users_20251103_120000']) fs.mkdirSync(path.join(root, 'data/db/backups', n), { mode: 0o700 });
}, 60_000);
afterAll(() => {
  for (const d of [root, to]) fs.rmSync(d, { recursive: true, force: true });
});

/** The instant of a set's name stamp (UTC) as `list` must show it in `tz`, computed independently with Intl. */
function shown(stamp: string, tz: string): string {
  const m = /(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(stamp)!;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'longOffset' })
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  const off = parts.timeZoneName === 'GMT' ? '+00:00' : parts.timeZoneName!.replace('GMT', '');
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${off}`;
}

const run = (tz: string, args: string[]) => cli(['--root', root, ...args], { env: { TZ: tz } });

describe('times: names stay UTC stamps, the operator sees and types local time', () => {
  for (const tz of ['Australia/Sydney', 'UTC']) {
    it(`list shows local time with its offset, and restore --at accepts it (TZ=${tz})`, () => {
      const l = run(tz, ['list', 'users']);
      expect(l.code, l.stderr).toBe(0);
      const line = l.stdout.split('\n').find((x) => x.includes(set))!;
      const when = shown(set, tz);
      expect(line.startsWith(when)).toBe(true);
      expect(l.stdout).toContain(`${shown('20251101_000000', tz)}  users`);
      if (tz === 'UTC') expect(when).toMatch(/ \+00:00$/);
      else expect(when).toMatch(/ \+1[01]:00$/);
      // What list shows (quoted as one argument), and the raw stamp of the name, both name the set.
      for (const at of [when, set.slice('users_'.length), when.replace(' ', 'T').replace(' ', '')]) {
        const r = run(tz, ['restore', 'users', '--at', at, '--to', to, '--dry-run']);
        expect(r.code, `${at}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toContain(`${set}/alice.tar.gz`);
      }
    });
  }

  it('the same local time means another instant in another zone: the stamp of the name means UTC everywhere', () => {
    const sydney = shown('20251103_120000', 'Australia/Sydney'); // 2025-11-03 23:00:00 +11:00
    expect(sydney).toBe('2025-11-03 23:00:00 +11:00');
    const local = sydney.slice(0, 19); // no offset: the operator's local time
    const ok = run('Australia/Sydney', ['restore', 'users', '--at', local, '--to', to, '--dry-run']);
    expect(ok.stderr).not.toMatch(/No user backup set taken at/);
    expect(ok.stderr).toContain('users_20251103_120000, the set this restore uses, is damaged');
    const miss = run('UTC', ['restore', 'users', '--at', local, '--to', to, '--dry-run']);
    expect(miss.code).toBe(2);
    expect(miss.stderr).toMatch(/No user backup set taken at 2025-11-03 23:00:00 \(2025-11-03 23:00:00 \+00:00\)/);
  });

  it('restore db --at takes the same forms and names the nearest database backups', () => {
    const sqlite = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };
    makeAuthDb(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), ['alice']);
    const b = cli(['--root', root, '--json', 'backup', 'db'], { env: sqlite });
    expect(b.code, b.stderr).toBe(0);
    const name = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => /^scitex_cloud_dev_\d{8}_\d{6}\.db$/.test(n))!;
    const stamp = /(\d{8}_\d{6})/.exec(name)![1]!;
    for (const tz of ['Australia/Sydney', 'UTC']) {
      const l = cli(['--root', root, 'list', 'db'], { env: { ...sqlite, TZ: tz } });
      expect(l.stdout).toContain(`${shown(stamp, tz)}  sqlite`);
      for (const at of [shown(stamp, tz), stamp]) {
        const r = cli(['--root', root, 'restore', 'db', '--at', at, '--dry-run'], { env: { ...sqlite, TZ: tz } });
        expect(r.code, `${tz} ${at}: ${r.stderr}`).toBe(0);
        expect(r.stdout).toContain(name);
      }
    }
    const miss = cli(['--root', root, 'restore', 'db', '--at', '2025-01-01 00:00:00 +11:00', '--dry-run'], { env: { ...sqlite, TZ: 'Australia/Sydney' } });
    expect(miss.code).toBe(2);
    expect(miss.stderr).toContain(`Nearest: before none; after ${shown(stamp, 'Australia/Sydney')} (${name}).`);
  });

  it('a time that matches nothing names the nearest backups before and after it (TZ=Australia/Sydney)', () => {
    const r = run('Australia/Sydney', ['restore', 'users', '--at', '2025-11-02 09:30:00 +11:00', '--to', to, '--dry-run']);
    expect(r.code).toBe(2);
    const line = r.stderr.split('\n').find((x) => x.includes('No user backup set'))!;
    expect(line).toContain('Nearest: before 2025-11-01 11:00:00 +11:00 (users_20251101_000000); after 2025-11-03 23:00:00 +11:00 (users_20251103_120000).');
    const early = run('UTC', ['restore', 'users', '--at', '20200101_000000', '--to', to, '--dry-run']);
    expect(early.stderr).toContain('Nearest: before none; after 2025-11-01 00:00:00 +00:00 (users_20251101_000000).');
    const bad = run('UTC', ['restore', 'users', '--at', 'yesterday', '--to', to, '--dry-run']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--at "yesterday" is not a time/);
  });
});
