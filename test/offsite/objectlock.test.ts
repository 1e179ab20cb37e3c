import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  type ListObjectVersionsCommandOutput,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectStore, parseDestination, REMOTE_MANIFEST_SUFFIX, sha256sumLine, type RemoteManifest } from '../../src/index.js';
import { startRadosgw, type TestRadosgw } from '../../src/devtools/radosgw.js';
import { cli } from '../helpers/cli.js';
import { download, offsiteProject, sha } from '../helpers/offsite.js';

let gw: TestRadosgw;
const dirs: string[] = [];
/** A project (SQLite, users) for this file's tests. */
const project = (users: string[], big = 0): string => offsiteProject(dirs, users, big);
const stores: ObjectStore[] = [];
const DAY = 86_400_000;

beforeAll(async () => {
  gw = await startRadosgw();
}, 240_000);
afterAll(async () => {
  for (const s of stores) s.close();
  await gw?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
}, 60_000);

const url = (bucket: string, query = '') => `s3://${bucket}/nightly?endpoint=${gw.endpoint}${query}`;

/** A bucket of its own for each test (with Object Lock, or only versioned), and a store to look at it directly. */
async function bucket(name: string, how: 'lock' | 'versioned' | 'plain'): Promise<ObjectStore> {
  process.env.AWS_ACCESS_KEY_ID = gw.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = gw.secretAccessKey;
  const s = await ObjectStore.open(parseDestination(url(name)));
  stores.push(s);
  await s.client.send(new CreateBucketCommand({ Bucket: name, ObjectLockEnabledForBucket: how === 'lock' ? true : undefined }));
  if (how === 'versioned') await s.client.send(new PutBucketVersioningCommand({ Bucket: name, VersioningConfiguration: { Status: 'Enabled' } }));
  return s;
}

/** Every version and delete marker in the bucket. */
async function versions(s: ObjectStore): Promise<{ key: string; versionId: string; marker: boolean }[]> {
  const out: { key: string; versionId: string; marker: boolean }[] = [];
  let r: ListObjectVersionsCommandOutput | undefined;
  do {
    r = await s.client.send(new ListObjectVersionsCommand({ Bucket: s.dest.bucket, KeyMarker: r?.NextKeyMarker, VersionIdMarker: r?.NextVersionIdMarker }));
    for (const v of r.Versions ?? []) out.push({ key: v.Key!.slice(s.dest.prefix.length), versionId: v.VersionId!, marker: false });
    for (const v of r.DeleteMarkers ?? []) out.push({ key: v.Key!.slice(s.dest.prefix.length), versionId: v.VersionId!, marker: true });
  } while (r.IsTruncated);
  return out;
}




/** A users set published by `backup users`, plus copies of it under older names (for the calendar rules). */
function setsWithHistory(root: string, env: Record<string, string>, old: string[]): string {
  const b = cli(['--root', root, '--json', 'backup', 'users', '--no-copy'], { env });
  expect(b.code, b.stderr).toBe(0);
  const set = JSON.parse(b.stdout).set as string;
  for (const n of old) execFileSync('cp', ['-a', set, path.join(path.dirname(set), n)]);
  return path.basename(set);
}

describe('lock settings in the destination URL', () => {
  it('parses lock_days and lock_mode; refuses nonsense', () => {
    expect(parseDestination('s3://bkt/p?lock_days=30').lock).toEqual({ days: 30, mode: 'GOVERNANCE' });
    expect(parseDestination('s3://bkt/p?lock_days=7&lock_mode=compliance').lock).toEqual({ days: 7, mode: 'COMPLIANCE' });
    expect(parseDestination('s3://bkt/p').lock).toBeUndefined();
    expect(() => parseDestination('s3://bkt/p?lock_days=0')).toThrow(/lock_days/);
    expect(() => parseDestination('s3://bkt/p?lock_days=1.5')).toThrow(/lock_days/);
    expect(() => parseDestination('s3://bkt/p?lock_days=30&lock_mode=forever')).toThrow(/lock_mode/);
    expect(() => parseDestination('s3://bkt/p?lock_mode=compliance')).toThrow(/lock_days/);
  });
});

describe('Object Lock retention at a real radosgw', () => {
  it('lock_days=1: every object a copy writes is retained about a day, the bytes are exact, the nightly credentials cannot delete it', async () => {
    const s = await bucket('locked-copies', 'lock');
    const root = project(['alice'], 7 * 1024 * 1024);
    // Parts of 5 MiB: alice's archive goes up in several (the multipart path), the rest in one PUT each.
    const env = { ...gw.env(), SCITEX_CLOUD_USE_SQLITE_DEV: '1', SCITEX_DATA_REMOTE_PART_MIB: '5', SCITEX_DATA_REMOTE: url('locked-copies', '&lock_days=1') };
    const before = Date.now();
    const r = cli(['--root', root, '--json', 'backup'], { env });
    const after = Date.now();
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.copies[0].error).toBeNull();
    const names = doc.copies[0].sent as string[];
    expect(names).toHaveLength(2);
    const expected: string[] = [];
    for (const name of names) {
      const m = JSON.parse((await s.getText(name + REMOTE_MANIFEST_SUFFIX))!) as RemoteManifest;
      expected.push(name + REMOTE_MANIFEST_SUFFIX);
      for (const o of m.objects) {
        expected.push(o.key, o.key + '.sha256');
        const local = fs.readFileSync(path.join(root, 'data/db/backups', o.key));
        expect(sha(await download(s, o.key))).toBe(sha(local));
        expect(o.sha256).toBe(sha(local));
      }
    }
    expect(fs.statSync(path.join(root, 'data/db/backups', names.find((n) => n.startsWith('users_'))!, 'alice.tar.gz')).size).toBeGreaterThan(5 * 1024 * 1024);
    const all = await versions(s);
    expect(all.map((v) => v.key).sort()).toEqual(expected.sort());
    for (const v of all) {
      const h = await s.client.send(new HeadObjectCommand({ Bucket: s.dest.bucket, Key: s.dest.prefix + v.key, VersionId: v.versionId }));
      expect(h.ObjectLockMode, v.key).toBe('GOVERNANCE');
      expect(h.ObjectLockRetainUntilDate!.getTime(), v.key).toBeGreaterThanOrEqual(before + DAY - 2000);
      expect(h.ObjectLockRetainUntilDate!.getTime(), v.key).toBeLessThanOrEqual(after + DAY + 2000);
    }
    // A compromised host with the nightly credentials: deleting a version is refused by the server...
    const v0 = all.find((v) => v.key.endsWith('alice.tar.gz'))!;
    await expect(s.client.send(new DeleteObjectCommand({ Bucket: s.dest.bucket, Key: s.dest.prefix + v0.key, VersionId: v0.versionId }))).rejects.toMatchObject({ name: 'AccessDenied' });
    const bulk = await s.client.send(new DeleteObjectsCommand({ Bucket: s.dest.bucket, Delete: { Objects: all.map((v) => ({ Key: s.dest.prefix + v.key, VersionId: v.versionId })) } }));
    expect(bulk.Errors?.length).toBe(all.length);
    expect(bulk.Errors!.every((e) => e.Code === 'AccessDenied')).toBe(true);
    // ...and a delete without a version only hides the object behind a delete marker: the locked version stays.
    await s.client.send(new DeleteObjectCommand({ Bucket: s.dest.bucket, Key: s.dest.prefix + v0.key }));
    expect((await versions(s)).filter((v) => !v.marker).length).toBe(all.length);
    const l = cli(['--root', root, '--json', 'list', '--remote'], { env });
    expect(l.code, l.stderr).toBe(0);
    for (const b of JSON.parse(l.stdout).backups) expect(new Date(b.lockedUntil).getTime()).toBeGreaterThanOrEqual(before + DAY - 2000);
  });

  it('locked writes carry a SHA-256 header (servers demand one with a lock) and no aws-chunked framing; unlocked writes carry no checksum', async () => {
    await bucket('header-check', 'lock');
    const seen: { locked: boolean; command: string; headers: Record<string, string> }[] = [];
    const big = crypto.randomBytes(6 * 1024 * 1024);
    for (const locked of [true, false]) {
      const s = await ObjectStore.open(parseDestination(url('header-check', locked ? '&lock_days=1' : '')), { partSize: 5 * 1024 * 1024 });
      stores.push(s);
      s.client.middlewareStack.add((next, ctx) => async (args) => {
        seen.push({ locked, command: (ctx as { commandName: string }).commandName, headers: { ...(args.request as { headers: Record<string, string> }).headers } });
        return next(args);
      }, { step: 'finalizeRequest', name: 'peekHeaders', priority: 'low' });
      const tag = locked ? 'locked' : 'open';
      await s.putSmall(`${tag}.txt`, 'hello\n');
      await s.upload(`${tag}.bin`, Readable.from([big]));
      expect((await download(s, `${tag}.txt`)).toString()).toBe('hello\n');
      expect(sha(await download(s, `${tag}.bin`))).toBe(sha(big));
    }
    const writes = seen.filter((x) => x.command === 'PutObjectCommand' || x.command === 'UploadPartCommand');
    expect(writes.filter((x) => x.locked).map((x) => x.command).sort()).toEqual(['PutObjectCommand', 'UploadPartCommand', 'UploadPartCommand']);
    for (const w of writes) {
      const h = Object.fromEntries(Object.entries(w.headers).map(([k, v]) => [k.toLowerCase(), v]));
      expect(h['content-encoding'] ?? '', w.command).not.toMatch(/aws-chunked/);
      expect(h['x-amz-trailer'], w.command).toBeUndefined();
      if (w.locked) expect(h['x-amz-checksum-sha256'], w.command).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      else expect(Object.keys(h).filter((k) => k.startsWith('x-amz-checksum') || k === 'content-md5'), w.command).toEqual([]);
    }
  });

  it('an object left unlocked by an interrupted run (killed between its upload and its retention) is locked when the copy resumes', async () => {
    const s = await bucket('resumed-locked', 'lock');
    const root = project([]);
    const env = { ...gw.env(), SCITEX_CLOUD_USE_SQLITE_DEV: '1', SCITEX_DATA_REMOTE: url('resumed-locked', '&lock_days=1') };
    const b = cli(['--root', root, '--json', 'backup', 'db', '--no-copy'], { env });
    expect(b.code, b.stderr).toBe(0);
    const file = JSON.parse(b.stdout).artifacts[0].path as string;
    const name = path.basename(file);
    const digest = sha(fs.readFileSync(file));
    // What the interrupted run left: the object and its checksum beside it, as sent, without retention.
    await s.upload(name, fs.createReadStream(file), { metadata: { 'scitex-source': digest, sha256: digest } });
    await s.putSmall(name + '.sha256', sha256sumLine(digest, name));
    expect((await s.head(name))!.lockUntil).toBeUndefined();
    const c = cli(['--root', root, '--json', 'copy'], { env });
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(c.stdout).copies[0].resumed).toEqual([name]);
    for (const key of [name, name + '.sha256', name + REMOTE_MANIFEST_SUFFIX]) expect((await s.head(key))!.lockUntil!.getTime(), key).toBeGreaterThan(Date.now() + DAY - 3_600_000);
  });

  it('lock_mode=compliance: not even the bucket owner bypassing governance can delete early', async () => {
    const s = await bucket('compliance-copies', 'lock');
    const root = project([]);
    const env = { ...gw.env(), SCITEX_CLOUD_USE_SQLITE_DEV: '1', SCITEX_DATA_REMOTE: url('compliance-copies', '&lock_days=1&lock_mode=compliance') };
    const r = cli(['--root', root, '--json', 'backup', 'db'], { env });
    expect(r.code, r.stderr).toBe(0);
    const all = await versions(s);
    expect(all.length).toBe(3);
    for (const v of all) {
      const h = await s.client.send(new HeadObjectCommand({ Bucket: s.dest.bucket, Key: s.dest.prefix + v.key, VersionId: v.versionId }));
      expect(h.ObjectLockMode).toBe('COMPLIANCE');
      await expect(s.client.send(new DeleteObjectCommand({ Bucket: s.dest.bucket, Key: s.dest.prefix + v.key, VersionId: v.versionId, BypassGovernanceRetention: true }))).rejects.toMatchObject({ name: 'AccessDenied' });
    }
  });

  it('lock_days on a bucket without Object Lock: that destination fails with one clear line, nothing is sent there', async () => {
    const s = await bucket('unlockable', 'plain');
    const ok = await bucket('second-destination', 'plain');
    const root = project([]);
    const env = { ...gw.env(), SCITEX_CLOUD_USE_SQLITE_DEV: '1', SCITEX_DATA_REMOTE: url('unlockable', '&lock_days=30'), SCITEX_DATA_REMOTE_1: url('second-destination') };
    const r = cli(['--root', root, '--json', 'backup', 'db'], { env });
    expect(r.code).toBe(1);
    const copies = JSON.parse(r.stdout).copies;
    expect(copies[0].error).toMatch(/Object Lock is not enabled on bucket unlockable.*lock_days=30.*create the bucket with Object Lock.*or remove lock_days/);
    expect(copies[0].sent).toEqual([]);
    expect(copies[1].error).toBeNull();
    // Without --json: one line on stderr that says what and what to do, no stack.
    const t = cli(['--root', root, 'copy'], { env });
    expect(t.code).toBe(1);
    expect(t.stderr.trim().split('\n')).toEqual([expect.stringMatching(/copy to s3:\/\/unlockable\/nightly .* FAILED: Object Lock is not enabled on bucket unlockable.*or remove lock_days/)]);
    expect(await versions(s)).toEqual([]);
    expect((await ok.list()).length).toBe(3);
  });

  it('prune --remote keeps a backup still under retention, says why, and deletes nothing of it (no delete marker either)', async () => {
    const s = await bucket('locked-prune', 'lock');
    const root = project(['alice']);
    const old = ['users_20260101_000000', 'users_20260102_000000'];
    const env = { ...gw.env(), SCITEX_DATA_REMOTE: url('locked-prune', '&lock_days=1') };
    setsWithHistory(root, env, old);
    expect(cli(['--root', root, 'copy'], { env }).code).toBe(0);
    const before = await versions(s);
    const dry = cli(['--root', root, '--json', 'prune', '--remote', '--keep-monthly', '1', '--dry-run'], { env });
    expect(dry.code, dry.stderr).toBe(0);
    const p = cli(['--root', root, '--json', 'prune', '--remote', '--keep-monthly', '1', '--yes'], { env });
    expect(p.code, p.stderr).toBe(0);
    for (const out of [dry, p]) {
      const ds = JSON.parse(out.stdout).decisions as { name: string; keep: boolean; reasons: string[] }[];
      for (const n of old) {
        const d = ds.find((x) => x.name === n)!;
        expect(d.keep).toBe(true);
        expect(d.reasons.join()).toMatch(/locked until 20\d\d-\d\d-\d\dT/);
      }
    }
    expect(cli(['--root', root, 'prune', '--remote', '--keep-monthly', '1', '--yes'], { env }).stdout).toMatch(/keep +users_20260101_000000 +\(locked until /);
    const now = await versions(s);
    expect(now.filter((v) => v.marker)).toEqual([]);
    expect(now.map((v) => v.versionId).sort()).toEqual(before.map((v) => v.versionId).sort());
  });

  it('prune --remote in a versioned bucket frees the space: no version or delete marker of a pruned backup is left', async () => {
    const s = await bucket('versioned-prune', 'versioned');
    const root = project(['alice']);
    const old = ['users_20260101_000000', 'users_20260102_000000', 'users_20260201_000000'];
    const env = { ...gw.env(), SCITEX_DATA_REMOTE: url('versioned-prune') };
    const current = setsWithHistory(root, env, old);
    expect(cli(['--root', root, 'copy'], { env }).code).toBe(0);
    const p = cli(['--root', root, '--json', 'prune', '--remote', '--keep-monthly', '2', '--yes'], { env });
    expect(p.code, p.stderr).toBe(0);
    expect((JSON.parse(p.stdout).decisions as { name: string; keep: boolean }[]).filter((d) => !d.keep).map((d) => d.name).sort()).toEqual(old.slice(0, 2));
    const left = await versions(s);
    expect(left.filter((v) => v.key.startsWith(old[0]!) || v.key.startsWith(old[1]!))).toEqual([]);
    expect(left.filter((v) => v.marker)).toEqual([]);
    expect(left.map((v) => v.key)).toContain(old[2] + REMOTE_MANIFEST_SUFFIX);
    expect(left.map((v) => v.key)).toContain(current + REMOTE_MANIFEST_SUFFIX);
    expect(cli(['--root', root, 'remote', 'verify', '--deep'], { env }).code).toBe(0);
  });
});
