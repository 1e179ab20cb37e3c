import { describe, expect, it } from 'vitest';
import { planRetention, type BackupEntry, type SetSummary } from '../../src/index.js';

// Retention never leaves a user or a database without its newest complete backup (restic forget, per series).
const NOW = new Date('2026-11-26T03:00:00Z');
const db = (name: string, time: string): BackupEntry => ({ kind: 'postgres', series: 'scitex_cloud_prod', name, path: `/b/${name}`, time: new Date(time), timestamp: null, size: 1, checksum: true });
/** A user set; users ending in "~" had files change while read. */
const set = (name: string, time: string | null, users: string[], extra: Partial<SetSummary> = {}): BackupEntry => {
  const s: SetSummary = { problem: null, partial: users.some((u) => u.endsWith('~')), selection: null, users: users.map((u) => ({ username: u.replace(/~$/, ''), clean: !u.endsWith('~') })), size: 1, ...extra };
  return { kind: 'users', series: 'users', name, path: `/b/${name}`, time: time ? new Date(time) : null, timestamp: null, size: 1, checksum: true, partial: s.partial, set: s };
};
const plan = (entries: BackupEntry[], policy: Parameters<typeof planRetention>[1], justMade?: string[]) =>
  Object.fromEntries(planRetention(entries, policy, { now: NOW, justMade }).map((d) => [d.entry.name, d.keep ? d.reasons.join('; ') : 'DELETE']));

describe('retention: what counts as the newest complete backup', () => {
  it('a one-user set is its own series and never replaces the full set', () => {
    const d = plan([
      set('full', '2026-11-25T02:00:00Z', ['alice', 'bob']),
      set('alice1', '2026-11-25T10:00:00Z', ['alice'], { selection: ['alice'] }),
      set('alice2', '2026-11-25T14:00:00Z', ['alice'], { selection: ['alice'] }),
    ], { daily: 7 });
    expect(d).toEqual({ full: 'daily 2026-11-25; newest', alice1: 'DELETE', alice2: 'daily 2026-11-25; newest' });
  });

  it('each --user selection keeps its own calendar', () => {
    const d = plan([
      set('a3', '2026-11-25T14:00:00Z', ['alice'], { selection: ['alice'] }),
      set('a2', '2026-11-24T14:00:00Z', ['alice'], { selection: ['alice'] }),
      set('a1', '2026-11-23T14:00:00Z', ['alice'], { selection: ['alice'] }),
      set('b1', '2026-11-01T14:00:00Z', ['bob'], { selection: ['bob'] }),
    ], { daily: 2 });
    expect(d).toEqual({ a3: 'daily 2026-11-25; newest', a2: 'daily 2026-11-24', a1: 'DELETE', b1: 'daily 2026-11-01; newest' });
  });

  it('a set whose manifest cannot be read never counts: the older complete set stays, and it stays until a newer complete full set exists', () => {
    const bad = (name: string, time: string) => set(name, time, [], { problem: 'Cannot read MANIFEST.json: Unexpected end of JSON input' });
    expect(plan([bad('broken', '2026-11-25T14:00:00Z'), set('good', '2026-11-25T02:00:00Z', ['alice'])], { daily: 1 })).toEqual({
      broken: 'not complete (Cannot read MANIFEST.json: Unexpected end of JSON input), no newer complete full set',
      good: 'daily 2026-11-25; newest',
    });
    // Only unreadable sets: nothing is deleted.
    expect(plan([bad('b2', '2026-11-25T14:00:00Z'), bad('b1', '2026-11-20T14:00:00Z')], { daily: 1 })).toEqual({
      b2: expect.stringMatching(/^not complete/), b1: expect.stringMatching(/^not complete/),
    });
    // A newer complete full set supersedes it.
    expect(plan([set('good2', '2026-11-26T02:00:00Z', ['alice']), bad('broken', '2026-11-25T14:00:00Z'), set('good', '2026-11-25T02:00:00Z', ['alice'])], { daily: 1 })).toEqual({
      good2: 'daily 2026-11-26; newest', broken: 'DELETE', good: 'DELETE',
    });
  });

  it('a user whose newest clean archive is in a partial set keeps that set', () => {
    const d = plan([
      set('f2', '2026-11-25T02:00:00Z', ['alice', 'bob']),
      set('p', '2026-11-24T02:00:00Z', ['alice', 'bob~', 'carol']),
      set('f1', '2026-11-23T02:00:00Z', ['alice', 'bob']),
    ], { daily: 1 });
    expect(d).toEqual({ f2: 'daily 2026-11-25; newest', p: 'newest archive of carol', f1: 'DELETE' });
  });

  it('a user with only changed-while-read archives keeps the newest of them', () => {
    const d = plan([
      set('f2', '2026-11-25T02:00:00Z', ['alice']),
      set('p2', '2026-11-24T02:00:00Z', ['alice', 'dave~']),
      set('p1', '2026-11-23T02:00:00Z', ['alice', 'dave~']),
    ], { daily: 1 });
    expect(d).toEqual({ f2: 'daily 2026-11-25; newest', p2: 'newest archive of dave (partial)', p1: 'DELETE' });
  });

  it('clock skew: a backup dated ahead is kept aside and never counts as the newest', () => {
    const d = plan([db('ahead', '2026-11-27T02:00:00Z'), db('today', '2026-11-26T02:00:00Z'), db('yesterday', '2026-11-25T02:00:00Z')], { daily: 1 });
    expect(d).toEqual({ ahead: 'dated in the future (2026-11-27T02:00:00.000Z): clock skew?', today: 'daily 2026-11-26; newest', yesterday: 'DELETE' });
    const s = plan([set('ahead', '2026-12-01T00:00:00Z', ['alice']), set('now', '2026-11-26T02:59:00Z', ['alice'])], { daily: 1 });
    expect(s).toEqual({ ahead: expect.stringMatching(/^dated in the future/), now: 'daily 2026-11-26; newest' });
  });

  it('clock skew within the tolerance: the backup the run just made is kept', () => {
    const d = plan([db('soon', '2026-11-26T03:03:00Z'), db('made', '2026-11-26T03:00:00Z')], { daily: 1 }, ['/b/made']);
    expect(d).toEqual({ soon: 'daily 2026-11-26; newest', made: 'just made' });
    const s = plan([set('soon', '2026-11-26T03:03:00Z', ['alice']), set('made', '2026-11-26T03:00:00Z', ['alice'])], { daily: 1 }, ['/b/made/alice.tar.gz']);
    expect(s.made).toBe('just made');
  });

  it('an undated set is never deleted', () => {
    expect(plan([set('odd', null, ['alice']), set('f', '2026-11-25T02:00:00Z', ['alice'])], { daily: 1 })).toEqual({ odd: 'date not parseable', f: 'daily 2026-11-25; newest' });
  });
});
