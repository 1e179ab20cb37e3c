import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { planRetention, type BackupEntry } from '../../src/index.js';
import { cli, tempDir } from '../helpers/cli.js';

const entry = (name: string, time: string | null, extra: Partial<BackupEntry> = {}): BackupEntry => ({
  kind: 'postgres', series: 'scitex_cloud_prod', name, path: `/b/${name}`, time: time ? new Date(time) : null, timestamp: null, size: 1, checksum: true, ...extra,
});
const kept = (d: ReturnType<typeof planRetention>) => d.filter((x) => x.keep).map((x) => x.entry.name).sort();

describe('retention (restic forget-like, per series)', () => {
  // Two backups a day for 40 days, newest first.
  const days = Array.from({ length: 40 }, (_, i) => new Date(Date.UTC(2026, 10, 25) - i * 86400000));
  const entries = days.flatMap((d) => ['02:00', '14:00'].map((h) => entry(`p_${d.toISOString().slice(0, 10)}_${h}`, `${d.toISOString().slice(0, 10)}T${h}:00Z`)));

  it('keeps the newest backup of each of the last N days', () => {
    const k = kept(planRetention(entries, { daily: 3 }));
    expect(k).toEqual(['p_2026-11-23_14:00', 'p_2026-11-24_14:00', 'p_2026-11-25_14:00']);
  });
  it('combines daily, weekly and monthly buckets', () => {
    const k = kept(planRetention(entries, { daily: 2, weekly: 3, monthly: 2 }));
    // 2026-11-25 is a Wednesday: days 25, 24; ISO weeks ending Sun 29, 22, 15 (newest of each: 25, 22, 15);
    // months November (25) and October (31).
    expect(k).toEqual(['p_2026-10-31_14:00', 'p_2026-11-15_14:00', 'p_2026-11-22_14:00', 'p_2026-11-24_14:00', 'p_2026-11-25_14:00']);
  });
  it('never deletes an undated backup or the newest, and refuses an empty policy', () => {
    const d = planRetention([...entries, entry('legacy.sql', null)], { monthly: 1 });
    expect(kept(d)).toContain('legacy.sql');
    expect(kept(d)).toContain('p_2026-11-25_14:00');
    expect(() => planRetention(entries, {})).toThrow(/No retention rule/);
  });
  it('judges each series on its own, and keeps a partial user set until a newer complete one exists', () => {
    const mixed = [entry('a_new', '2026-11-25T00:00:00Z'), entry('a_old', '2026-11-20T00:00:00Z'), entry('b_only', '2026-01-01T00:00:00Z', { series: 'other' }),
      entry('users_new', '2026-11-25T00:00:00Z', { kind: 'users', series: 'users', partial: true, set: { problem: null, partial: true, selection: null, users: [{ username: 'alice', clean: false }], size: 1 } }),
      entry('users_old', '2026-11-24T00:00:00Z', { kind: 'users', series: 'users', set: { problem: null, partial: false, selection: null, users: [{ username: 'alice', clean: true }], size: 1 } }),
      entry('users_older', '2026-11-23T00:00:00Z', { kind: 'users', series: 'users', set: { problem: null, partial: false, selection: null, users: [{ username: 'alice', clean: true }], size: 1 } })];
    const k = kept(planRetention(mixed, { daily: 1 }));
    expect(k).toEqual(['a_new', 'b_only', 'users_new', 'users_old']);
    expect(planRetention(mixed, { daily: 1 }).find((d) => d.entry.name === 'users_new')!.reasons).toEqual(['partial, no newer complete set']);
  });
});

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('scitex-data prune', () => {
  it('--dry-run lists, without --yes it refuses off a terminal, with --yes it deletes backup and checksum', () => {
    root = tempDir();
    cli(['--root', root, 'init']);
    const dir = path.join(root, 'data/db/backups');
    for (const d of ['20261101', '20261110', '20261120', '20261125']) {
      fs.writeFileSync(path.join(dir, `scitex_cloud_dev_${d}_020000.dump`), 'PGDMP');
      fs.writeFileSync(path.join(dir, `scitex_cloud_dev_${d}_020000.dump.sha256`), 'x');
    }
    const dry = JSON.parse(cli(['--root', root, '--json', 'prune', '--keep-daily', '2', '--dry-run']).stdout);
    expect(dry.decisions.filter((d: { keep: boolean }) => !d.keep)).toHaveLength(2);
    expect(fs.readdirSync(dir)).toHaveLength(9);
    expect(cli(['--root', root, 'prune', '--keep-daily', '2']).code).toBe(2);
    expect(cli(['--root', root, 'prune']).code).toBe(2);
    const r = cli(['--root', root, 'prune', '--keep-daily', '2', '--yes']);
    expect(r.code, r.stderr).toBe(0);
    // The hidden .scitex-data-* state files (the recorded policy, the last runs) are not backups.
    expect(fs.readdirSync(dir).filter((n) => !n.startsWith('.scitex-data')).sort()).toEqual(['.gitkeep', 'scitex_cloud_dev_20261120_020000.dump', 'scitex_cloud_dev_20261120_020000.dump.sha256', 'scitex_cloud_dev_20261125_020000.dump', 'scitex_cloud_dev_20261125_020000.dump.sha256']);
  });
});
