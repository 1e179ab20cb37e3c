import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appTree, okOn, runOn, sha256, stamp } from '../helpers/apptree.js';
import { tempDir } from '../helpers/cli.js';

// Retention an operator can predict: --keep-last, --keep-within, pins, and the forget table.
const work: string[] = [];
let template = '';
const bdir = (root: string) => path.join(root, 'data/db/backups');
const dumps = (root: string) => fs.readdirSync(bdir(root)).filter((n) => n.endsWith('.db')).sort();
const ts = stamp;
const sha = sha256;
const run = runOn;
const ok = okOn;

/** A tree with five database backups dated 1, 2, 3, 10 and 40 days ago (oldest first). */
function withFive(): { root: string; names: string[] } {
  const root = tempDir('scitex-keep-');
  work.push(root);
  execFileSync('cp', ['-a', `${template}/.`, root]);
  for (let i = 0; i < 5; i++) ok(root, 'backup', 'db');
  const now = Date.now();
  const days = [40, 10, 3, 2, 1];
  const names = dumps(root).map((n, i) => {
    const to = n.replace(/\d{8}_\d{6}/, ts(new Date(now - days[i]! * 86_400_000)));
    fs.renameSync(path.join(bdir(root), n), path.join(bdir(root), to));
    fs.rmSync(path.join(bdir(root), n + '.sha256'));
    fs.writeFileSync(path.join(bdir(root), to + '.sha256'), `${sha(path.join(bdir(root), to))}  ${to}\n`, { mode: 0o600 });
    return to;
  });
  return { root, names: names.sort() };
}

beforeAll(() => {
  template = appTree(['alice'], { prefix: 'scitex-keep-tpl-', workspaces: false });
}, 60_000);
afterAll(() => {
  for (const d of [template, ...work]) fs.rmSync(d, { recursive: true, force: true });
});

describe('retention: keep-last, keep-within, pins', () => {
  it('--keep-last 2 keeps the two newest and prints the forget table, also under --quiet', () => {
    const { root, names } = withFive();
    const r = ok(root, '--quiet', 'prune', '--keep-last', '2', '--yes');
    expect(dumps(root)).toEqual(names.slice(3));
    // The table names every backup of the series with its fate and the reasons it was kept.
    expect(r.stdout).toMatch(/sqlite scitex_cloud_dev: keep 2, delete 3/);
    for (const n of names.slice(0, 3)) expect(r.stdout).toMatch(new RegExp(`deleted .* ${n}`));
    expect(r.stdout).toMatch(new RegExp(`keep .* ${names[4]}\\s+last 1/2; newest`));
    expect(r.stdout).toContain('2 kept, 3 deleted');
    // Nothing deleted: --quiet prints nothing.
    expect(ok(root, '--quiet', 'prune', '--keep-last', '2', '--yes').stdout).toBe('');
  });

  it('--keep-within 5d keeps the backups of the last five days only', () => {
    const { root, names } = withFive();
    const doc = JSON.parse(ok(root, '--json', 'prune', '--keep-within', '5d', '--yes').stdout);
    expect(dumps(root)).toEqual(names.slice(2));
    expect(doc.decisions.find((d: { name: string }) => d.name === names[2]).reasons).toContain('within 5d');
    expect(run(root, 'prune', '--keep-within', '5x').code).toBe(2);
  });

  it('a pinned backup is never pruned until it is unpinned', () => {
    const { root, names } = withFive();
    const oldest = names[0]!;
    expect(ok(root, 'pin', oldest, '--note', 'before the risky deploy').stdout).toContain(`pinned ${oldest}`);
    expect(fs.existsSync(path.join(bdir(root), oldest + '.pinned'))).toBe(true);
    // The pin is a decision about the backup, not part of it: list and verify still see one backup with its checksum.
    expect(JSON.parse(ok(root, '--json', 'list').stdout).backups).toHaveLength(5);
    const doc = JSON.parse(ok(root, '--json', 'prune', '--keep-last', '1', '--yes').stdout);
    expect(dumps(root)).toEqual([oldest, names[4]]);
    expect(doc.decisions.find((d: { name: string }) => d.name === oldest).reasons).toEqual(['pinned: before the risky deploy']);
    // Also through backup's own retention.
    ok(root, 'backup', 'db', '--keep-last', '1');
    expect(dumps(root)).toContain(oldest);
    expect(run(root, 'pin', 'nope_20200101_000000.db').code).toBe(2);
    ok(root, 'unpin', oldest);
    ok(root, 'prune', '--keep-last', '1', '--yes');
    expect(dumps(root)).not.toContain(oldest);
    expect(dumps(root)).toHaveLength(1);
    // A pin whose backup was removed by hand is an orphan: the next backup removes it.
    fs.writeFileSync(path.join(bdir(root), 'scitex_cloud_dev_20200101_000000.db.pinned'), '{}');
    ok(root, 'backup', 'db');
    expect(fs.existsSync(path.join(bdir(root), 'scitex_cloud_dev_20200101_000000.db.pinned'))).toBe(false);
  });

  it('an empty policy is refused, naming every rule', () => {
    const { root } = withFive();
    const r = run(root, 'prune', '--yes');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--keep-last, --keep-within');
  });
});
