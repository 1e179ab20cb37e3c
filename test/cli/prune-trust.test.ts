import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appTree } from '../helpers/apptree.js';
import { cli, tempDir } from '../helpers/cli.js';

// Retention and `verify --backups` must never trust a backup they cannot read or place in time.
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };
const work: string[] = [];
let template = '';

/** A fresh copy of a tree with a SQLite database and two users (and no backups yet). */
function copy(): string {
  const d = tempDir('scitex-prune-');
  work.push(d);
  execFileSync('cp', ['-a', `${template}/.`, d]);
  return d;
}
const bdir = (root: string) => path.join(root, 'data/db/backups');
const sets = (root: string) => fs.readdirSync(bdir(root)).filter((n) => n.startsWith('users_')).sort();
const dumps = (root: string) => fs.readdirSync(bdir(root)).filter((n) => n.endsWith('.db')).sort();
const run = (root: string, ...args: string[]) => {
  const r = cli(['--root', root, ...args], { env });
  expect(r.code, r.stderr).toBe(0);
  return r;
};
const ts = (d: Date) => d.toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** Renames a backup (a database file with its checksum, or a user set) to another time, as a skewed clock would have named it. */
function redate(root: string, name: string, when: Date): string {
  const to = name.replace(/\d{8}_\d{6}/, ts(when));
  fs.renameSync(path.join(bdir(root), name), path.join(bdir(root), to));
  if (fs.existsSync(path.join(bdir(root), name + '.sha256'))) {
    fs.writeFileSync(path.join(bdir(root), to + '.sha256'), `${sha(path.join(bdir(root), to))}  ${to}\n`, { mode: 0o600 });
    fs.rmSync(path.join(bdir(root), name + '.sha256'));
  }
  return to;
}

beforeAll(() => {
  template = appTree(['alice', 'bob'], { prefix: 'scitex-prune-tpl-' });
});
afterAll(() => {
  for (const d of [template, ...work]) fs.rmSync(d, { recursive: true, force: true });
});

describe('retention keeps the newest complete backup of every series', () => {
  it('a one-user set never counts as a full set: `backup users --user alice --keep-daily 7` keeps the only full set', () => {
    const root = copy();
    run(root, 'backup', 'users');
    const [full] = sets(root);
    const r = run(root, '--json', 'backup', 'users', '--user', 'alice', '--keep-daily', '7');
    const doc = JSON.parse(r.stdout);
    expect(sets(root)).toEqual([full, path.basename(doc.set)]);
    expect(doc.pruned).toEqual([]);
    const kept = Object.fromEntries(doc.retention.map((d: { name: string; keep: boolean; reasons: string[] }) => [d.name, d.keep]));
    expect(kept).toEqual({ [full!]: true, [path.basename(doc.set)]: true });
  });

  it('a user that appears only in one-user sets keeps its newest archive', () => {
    const root = copy();
    run(root, 'backup', 'users', '--user', 'bob');
    const [bobOnly] = sets(root);
    run(root, 'backup', 'users', '--user', 'alice');
    run(root, 'backup', 'users', '--user', 'alice', '--keep-daily', '1');
    const after = sets(root);
    expect(after).toHaveLength(2);
    expect(after[0]).toBe(bobOnly);
  });

  it('clock skew: a database backup dated tomorrow never makes a run delete the one it just made', () => {
    const root = copy();
    run(root, 'backup', 'db');
    const future = redate(root, dumps(root)[0]!, new Date(Date.now() + 86_400_000));
    const r = run(root, '--json', 'backup', 'db', '--keep-daily', '1');
    const made = path.basename(JSON.parse(r.stdout).artifacts[0].path);
    expect(dumps(root)).toEqual([made, future].sort());
    const why = JSON.parse(r.stdout).retention.find((d: { name: string }) => d.name === future);
    expect(why.keep).toBe(true);
    expect(why.reasons.join(' ')).toMatch(/future/);
  });

  it('clock skew: a user set dated tomorrow never makes a run delete the set it just made', () => {
    const root = copy();
    run(root, 'backup', 'users');
    const future = redate(root, sets(root)[0]!, new Date(Date.now() + 86_400_000));
    const r = run(root, '--json', 'backup', 'users', '--keep-daily', '1');
    expect(sets(root)).toEqual([path.basename(JSON.parse(r.stdout).set), future].sort());
  });

  it('prints every deletion, also under --quiet, and each kept backup with its reason', () => {
    const root = copy();
    run(root, 'backup', 'db');
    const old = redate(root, dumps(root)[0]!, new Date('2026-01-01T02:00:00Z'));
    const q = run(root, '-q', 'backup', 'db', '--keep-daily', '1');
    // The forget table (restic's model) is printed whole under --quiet when something was deleted.
    expect(q.stdout).toMatch(new RegExp(`^  deleted +\\S+ \\S+ +[\\d.]+ \\S+  ${old.replace(/\./g, '\\.')}\\s*$`, 'm'));
    expect(q.stdout).toContain('1 kept, 1 deleted');
    const [made] = dumps(root);
    run(root, 'backup', 'db');
    const newest = dumps(root)[1]!;
    const p = run(root, 'prune', '--keep-daily', '3', '--yes');
    const day = newest.replace(/^.*_(\d{4})(\d{2})(\d{2})_\d{6}\.db$/, '$1-$2-$3');
    expect(p.stdout).toMatch(new RegExp(`^  keep .* ${newest.replace(/\./g, '\\.')}  daily ${day}; newest$`, 'm'));
    expect(p.stdout).toMatch(new RegExp(`^  deleted .* ${made.replace(/\./g, '\\.')}\\s*$`, 'm'));
    expect(dumps(root)).toEqual([newest]);
  });
});

describe('a set whose manifest cannot be read is not complete', () => {
  let base = '';
  let older = '';
  let newer = '';
  beforeAll(() => {
    base = copy();
    run(base, 'backup', 'db');
    run(base, 'backup', 'users');
    run(base, 'backup', 'users');
    [older, newer] = sets(base) as [string, string];
    expect(run(base, 'verify', '--backups').code).toBe(0);
  });
  const manifest = (root: string) => path.join(bdir(root), newer, 'MANIFEST.json');
  const damages: [string, (root: string) => void, RegExp][] = [
    ['missing', (r) => fs.rmSync(manifest(r)), /MANIFEST\.json/],
    ['truncated', (r) => fs.truncateSync(manifest(r), Math.floor(fs.statSync(manifest(r)).size / 2)), /MANIFEST\.json/],
    ['not JSON', (r) => fs.writeFileSync(manifest(r), 'not json at all\n'), /MANIFEST\.json/],
    ['JSON but not a manifest', (r) => fs.writeFileSync(manifest(r), JSON.stringify({ format: 'scitex-data-users/1', users: [{ username: 'alice' }] })), /MANIFEST\.json/],
    ['changed after SHA256SUMS recorded it', (r) => {
      const sums = path.join(bdir(r), newer, 'SHA256SUMS');
      if (!/ MANIFEST\.json$/m.test(fs.readFileSync(sums, 'utf8'))) fs.appendFileSync(sums, `${sha(manifest(r))}  MANIFEST.json\n`);
      const m = JSON.parse(fs.readFileSync(manifest(r), 'utf8'));
      m.created = '2020-01-01T00:00:00.000Z';
      fs.writeFileSync(manifest(r), JSON.stringify(m, null, 2) + '\n');
    }, /MANIFEST\.json does not match SHA256SUMS/],
  ];
  it.each(damages)('manifest %s: prune keeps the older complete set, verify --backups fails naming the set', (_n, damage, why) => {
    const root = copy();
    execFileSync('cp', ['-a', `${base}/.`, root]);
    damage(root);
    const v = cli(['--root', root, '--json', 'verify', '--backups'], { env });
    expect(v.code).toBe(3);
    const failed = JSON.parse(v.stdout).checks.filter((c: { status: string }) => c.status === 'fail').map((c: { name: string; found: string }) => `${c.name}: ${c.found}`).join('\n');
    expect(failed).toMatch(new RegExp(`backups\\.checksums: .*${newer}.*`));
    expect(failed).toMatch(why);
    run(root, 'prune', '--keep-daily', '1', '--yes');
    expect(sets(root)).toEqual([older, newer]);
  });
});

describe('verify --backups and the clock', () => {
  it('fails (exit 3) on a backup dated in the future, and still passes one a minute ahead', () => {
    const root = copy();
    run(root, 'backup', 'db');
    run(root, 'backup', 'users');
    redate(root, dumps(root)[0]!, new Date(Date.now() + 60_000));
    const v0 = cli(["--root", root, "verify", "--backups"], { env });
    expect(v0.code, v0.stdout).toBe(0);
    run(root, 'backup', 'db');
    const future = redate(root, sets(root)[0]!, new Date(Date.now() + 3 * 3_600_000));
    run(root, 'backup', 'users');
    const v = cli(['--root', root, 'verify', '--backups'], { env });
    expect(v.code).toBe(3);
    expect(v.stdout).toMatch(new RegExp(`FAIL\\s+backups\\.dates\\s+.*${future}.*in the future`));
  });
});
