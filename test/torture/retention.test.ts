import { describe, expect, it } from 'vitest';
import { FUTURE_TOLERANCE_MS, planRetention, type BackupEntry, type RetentionPolicy } from '../../src/index.js';
import { TRIALS, trials } from './report.js';

// Random backup directories (skewed clocks, partial, one-user and damaged sets, undated files) against the
// invariants retention promises. The oracle below is written from the promises, not from the code.
const NOW = new Date('2026-11-26T03:00:00Z').getTime();
const USERS = ['alice', 'bob', 'carol', 'dave'];

/** A small deterministic generator (mulberry32), so that a failing trial can be replayed from its number. */
function rng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: T[]) => xs[Math.floor(next() * xs.length)]! };
}

function scenario(seed: number): { entries: BackupEntry[]; policy: RetentionPolicy; justMade: string[] } {
  const r = rng(seed);
  const entries: BackupEntry[] = [];
  const n = 3 + r.int(40);
  for (let i = 0; i < n; i++) {
    // Mostly the last 90 days; some a little or a lot ahead of the clock; a few undated.
    const roll = r.next();
    const t = roll < 0.05 ? null : roll < 0.15 ? NOW + r.int(3 * 86_400_000) : roll < 0.2 ? NOW + r.int(2 * FUTURE_TOLERANCE_MS) - FUTURE_TOLERANCE_MS : NOW - r.int(90 * 86_400_000);
    const time = t === null ? null : new Date(Math.floor(t / 1000) * 1000);
    const name = `b${i}`;
    if (r.next() < 0.4) {
      entries.push({ kind: r.pick(['postgres', 'sqlite'] as const), series: r.pick(['prod', 'dev']), name, path: `/b/${name}`, time, timestamp: null, size: 1, checksum: true });
      continue;
    }
    const selection = r.next() < 0.35 ? [r.pick(USERS)] : null;
    const holds = selection ?? USERS.filter(() => r.next() < 0.85);
    const users = holds.map((u) => ({ username: u, clean: r.next() < 0.9 }));
    const problem = r.next() < 0.12 ? r.pick(['cannot read SHA256SUMS (ENOENT)', 'MANIFEST.json does not match SHA256SUMS', 'Cannot read MANIFEST.json: Unexpected end of JSON input']) : null;
    const partial = !problem && users.some((u) => !u.clean);
    entries.push({ kind: 'users', series: 'users', name, path: `/b/${name}`, time, timestamp: null, size: 1, checksum: true, partial, set: problem ? { problem, partial: false, selection: null, users: [], size: 0 } : { problem: null, partial, selection, users, size: 1 } });
  }
  const policy: RetentionPolicy = { daily: r.int(8), weekly: r.int(5), monthly: r.int(4) };
  if (!policy.daily && !policy.weekly && !policy.monthly) policy.daily = 1;
  const justMade = r.next() < 0.5 ? [r.pick(entries).path] : [];
  return { entries, policy, justMade };
}

/** Names that must be kept, each with the promise that demands it. */
function mustKeep(entries: BackupEntry[], justMade: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const placed = entries.filter((e) => e.time && e.time.getTime() <= NOW + FUTURE_TOLERANCE_MS);
  const newest = (xs: BackupEntry[]) => xs.reduce<BackupEntry | undefined>((a, b) => (!a || b.time!.getTime() > a.time!.getTime() || (b.time!.getTime() === a.time!.getTime() && b.name > a.name) ? b : a), undefined);
  for (const e of entries) {
    if (!e.time) out.set(e.name, 'undated');
    else if (e.time.getTime() > NOW + FUTURE_TOLERANCE_MS) out.set(e.name, 'dated in the future');
    if (justMade.includes(e.path)) out.set(e.name, 'just made');
  }
  const trusted = placed.filter((e) => e.kind !== 'users' || !e.set!.problem);
  const keyOf = (e: BackupEntry) => (e.kind !== 'users' ? `${e.kind}/${e.series}` : `users/${e.set!.selection?.join(',') ?? '*'}`);
  const groups = new Map<string, BackupEntry[]>();
  for (const e of trusted) groups.set(keyOf(e), [...(groups.get(keyOf(e)) ?? []), e]);
  for (const [k, xs] of groups) {
    const c = newest(xs.filter((e) => !e.partial));
    if (c) out.set(c.name, `newest complete of ${k}`);
  }
  for (const u of USERS) {
    const sets = trusted.filter((e) => e.kind === 'users' && e.set!.users.some((x) => x.username === u));
    const e = newest(sets.filter((s) => s.set!.users.find((x) => x.username === u)!.clean)) ?? newest(sets);
    if (e) out.set(e.name, `newest archive of ${u}`);
  }
  const full = newest(groups.get('users/*')?.filter((e) => !e.partial) ?? []);
  for (const e of placed) if (e.kind === 'users' && e.set!.problem && (!full || e.time! > full.time!)) out.set(e.name, 'damaged, no newer complete full set');
  return out;
}

describe('retention against random backup directories', () => {
  it('never deletes what a promise keeps; a damaged or future set never counts as the newest', async () => {
    const n = TRIALS * 100;
    await trials('retention vs. clock skew, partial, one-user and damaged sets (random directories)', n, 'never deleted: the newest complete backup of each database, of the full sets and of each --user selection; the newest archive of each user; anything undated, dated in the future or just made', (i) => {
      const { entries, policy, justMade } = scenario(i + 1);
      const decisions = planRetention(entries, policy, { now: new Date(NOW), justMade });
      const kept = new Set(decisions.filter((d) => d.keep).map((d) => d.entry.name));
      for (const [name, why] of mustKeep(entries, justMade)) expect([i, name, why, kept.has(name)]).toEqual([i, name, why, true]);
      for (const d of decisions) {
        if (d.keep) expect(d.reasons.length).toBeGreaterThan(0);
        // A damaged set or one dated ahead is never given a calendar or "newest" reason.
        const untrusted = (d.entry.time && d.entry.time.getTime() > NOW + FUTURE_TOLERANCE_MS) || (d.entry.kind === 'users' && d.entry.set?.problem);
        if (untrusted) expect([i, d.entry.name, d.reasons.filter((x) => /^(daily|weekly|monthly) |^newest$/.test(x))]).toEqual([i, d.entry.name, []]);
      }
    });
  });
});
