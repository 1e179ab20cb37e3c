import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectStore, parseDestination, REMOTE_MANIFEST_SUFFIX, type RemoteManifest } from '../../src/index.js';
import { startRadosgw, type TestRadosgw } from '../../src/devtools/radosgw.js';
import { cli, cliAsync, tempDir } from '../helpers/cli.js';
import { makeUser, snapshotTree } from '../helpers/tree.js';
import { download, offsiteProject, sha } from '../helpers/offsite.js';

let gw: TestRadosgw;
const dirs: string[] = [];
/** A project (SQLite, users) for this file's tests. */
const project = (users: string[], big = 0): string => offsiteProject(dirs, users, big);
const stores: ObjectStore[] = [];

beforeAll(async () => {
  gw = await startRadosgw();
}, 240_000);
afterAll(async () => {
  for (const s of stores) s.close();
  await gw?.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
}, 60_000);

const url = (bucket: string, prefix = 'nightly') => `s3://${bucket}/${prefix}?endpoint=${gw.endpoint}`;

/** A bucket of its own for each test, and a store (with the test's own SDK client) to look at it directly. */
async function bucket(name: string): Promise<ObjectStore> {
  process.env.AWS_ACCESS_KEY_ID = gw.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = gw.secretAccessKey;
  const s = await ObjectStore.open(parseDestination(url(name)));
  stores.push(s);
  await s.client.send(new CreateBucketCommand({ Bucket: name }));
  return s;
}




async function manifest(s: ObjectStore, name: string): Promise<RemoteManifest> {
  return JSON.parse((await s.getText(name + REMOTE_MANIFEST_SUFFIX))!) as RemoteManifest;
}

describe('off-site copies to a real radosgw', () => {
  let root: string;
  let env: Record<string, string>;
  let s: ObjectStore;
  let setName: string;

  it('backup copies what it published; every object downloads with the local checksum; remote verify --deep passes', async () => {
    s = await bucket('plain-copies');
    root = project(['alice', 'bob.smith']);
    env = { ...gw.env(), SCITEX_CLOUD_USE_SQLITE_DEV: '1', SCITEX_DATA_REMOTE: url('plain-copies') };
    const r = cli(['--root', root, '--json', 'backup'], { env });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // no SDK warning either
    const doc = JSON.parse(r.stdout);
    setName = path.basename(doc.set);
    const dbName = path.basename(doc.artifacts.find((a: { kind: string }) => a.kind === 'sqlite').path);
    expect(doc.copies).toHaveLength(1);
    expect(doc.copies[0].error).toBeNull();
    expect(doc.copies[0].sent.sort()).toEqual([dbName, setName].sort());
    for (const name of [dbName, setName]) {
      const m = await manifest(s, name);
      expect(m.encrypted).toBe(false);
      for (const o of m.objects) {
        const local = fs.readFileSync(path.join(root, 'data/db/backups', o.key));
        const remote = await download(s, o.key);
        expect(sha(remote)).toBe(sha(local));
        expect(o.sha256).toBe(sha(local));
        expect((await s.head(o.key))!.metadata.sha256).toBe(sha(local));
      }
    }
    expect(r.stdout + r.stderr).not.toContain(gw.secretAccessKey);
    const v = cli(['--root', root, 'verify', '--remote', '--deep'], { env });
    expect(v.code, v.stdout + v.stderr).toBe(0);
    expect(v.stdout).toMatch(/2 backups checked .*: 0 problems/);
    // A second copy sends nothing: both are complete there.
    const again = cli(['--root', root, '--json', 'copy'], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).copies[0]).toMatchObject({ sent: [], bytesSent: 0 });
  });

  it('fetches a set into staging, checked, and restores it with the normal restore path', async () => {
    const staging = tempDir('scitex-staging-');
    dirs.push(staging);
    fs.rmSync(staging, { recursive: true });
    const f = cli(['--root', root, 'remote', 'fetch', setName, '--to', staging], { env });
    expect(f.code, f.stderr).toBe(0);
    const scratch = tempDir('scitex-scratch-');
    dirs.push(scratch);
    const rr = cli(['--root', root, 'restore', 'users', '--from', path.join(staging, setName), '--to', scratch, '--user', 'alice', '--yes'], { env });
    expect(rr.code, rr.stderr).toBe(0);
    expect(snapshotTree(path.join(scratch, 'data/users/alice'))).toEqual(snapshotTree(path.join(root, 'data/users/alice')));
  });

  it('a tampered remote object is caught by remote verify --deep and refused by fetch', async () => {
    const m = await manifest(s, setName);
    const o = m.objects.find((x) => x.key.endsWith('alice.tar.gz'))!;
    const bytes = await download(s, o.key);
    bytes[bytes.length >> 1] ^= 0xff; // same size, same metadata: only the content says it changed
    const head = await s.head(o.key);
    await s.client.send(new PutObjectCommand({ Bucket: 'plain-copies', Key: 'nightly/' + o.key, Body: bytes, Metadata: head!.metadata }));
    expect(cli(['--root', root, 'remote', 'verify'], { env }).code).toBe(0);
    const v = cli(['--root', root, 'remote', 'verify', '--deep'], { env });
    expect(v.code).toBe(3);
    expect(v.stdout).toContain(`${o.key}: content does not match its recorded SHA-256`);
    const staging = tempDir('scitex-staging-');
    dirs.push(staging);
    const f = cli(['--root', root, 'remote', 'fetch', setName, '--to', staging], { env });
    expect(f.code).toBe(1);
    expect(f.stderr).toMatch(/does not match its recorded SHA-256/);
    expect(fs.readdirSync(staging)).toEqual([]);
    // restore --from-remote refuses it too, before anything is extracted.
    const scratch = tempDir('scitex-scratch-');
    dirs.push(scratch);
    const rr = cli(['--root', root, 'restore', 'users', '--from-remote', setName, '--to', scratch, '--yes'], { env });
    expect(rr.code).toBe(1);
    expect(rr.stderr).toMatch(/does not match its recorded SHA-256/);
    expect(fs.existsSync(path.join(scratch, 'data'))).toBe(false);
    expect(fs.readdirSync(path.join(root, 'data/db/backups')).filter((n) => n.startsWith('.remote-staging'))).toEqual([]);
  });

  it('encrypted: the objects are age ciphertext, verify needs no key, `age -d | tar -xz` and restore with --identity work', async () => {
    const es = await bucket('sealed-copies');
    const keyDir = tempDir('scitex-key-');
    dirs.push(keyDir);
    const key = path.join(keyDir, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const pub = execFileSync('age-keygen', ['-y', key]).toString().trim();
    const e2 = { ...env, SCITEX_DATA_REMOTE: url('sealed-copies') };
    const c = cli(['--root', root, '--json', 'copy', setName, '--encrypt-to', pub], { env: e2 });
    expect(c.code, c.stderr).toBe(0);
    const m = await manifest(es, setName);
    expect(m.encrypted).toBe(true);
    expect(m.recipients).toEqual([pub]);
    const o = m.objects.find((x) => x.key.endsWith('alice.tar.gz.age'))!;
    const cipher = await download(es, o.key);
    expect(cipher.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(sha(cipher)).toBe(o.sha256);
    expect(cipher.includes(Buffer.from('ghp_SECRETTOKEN'))).toBe(false);
    // Without scitex-data: the README's command line.
    const plainDir = tempDir('scitex-age-');
    dirs.push(plainDir);
    fs.writeFileSync(path.join(plainDir, 'alice.tar.gz.age'), cipher);
    const x = spawnSync('bash', ['-c', 'set -o pipefail; age -d -i "$1" alice.tar.gz.age | tar -xz', 'x', key], { cwd: plainDir, encoding: 'utf8' });
    expect(x.status, x.stderr).toBe(0);
    expect(fs.readFileSync(path.join(plainDir, 'data/users/alice/proj/neuro-analysis/.git/HEAD'), 'utf8')).toBe('ref: refs/heads/main\n');
    // The key is never needed to verify.
    const v = cli(['--root', root, 'remote', 'verify', '--deep'], { env: e2 });
    expect(v.code, v.stdout).toBe(0);
    const staging = path.join(tempDir('scitex-staging-'), 'in');
    dirs.push(path.dirname(staging));
    expect(cli(['--root', root, 'remote', 'fetch', setName, '--to', staging], { env: e2 }).code).toBe(2);
    const f = cli(['--root', root, 'remote', 'fetch', setName, '--to', staging, '--identity', key], { env: e2 });
    expect(f.code, f.stderr).toBe(0);
    const scratch = tempDir('scitex-scratch-');
    dirs.push(scratch);
    const rr = cli(['--root', root, 'restore', 'users', '--from', path.join(staging, setName), '--to', scratch, '--yes'], { env });
    expect(rr.code, rr.stderr).toBe(0);
    expect(snapshotTree(path.join(scratch, 'data/users/bob.smith'))).toEqual(snapshotTree(path.join(root, 'data/users/bob.smith')));
    // In one step: restore --from-remote fetches into staging, checks, decrypts, restores, and removes the staging.
    const scratch2 = tempDir('scitex-scratch-');
    dirs.push(scratch2);
    const one = cli(['--root', root, 'restore', 'users', '--from-remote', setName, '--identity', key, '--user', 'alice', '--to', scratch2, '--yes'], { env: e2 });
    expect(one.code, one.stderr).toBe(0);
    expect(snapshotTree(path.join(scratch2, 'data/users/alice'))).toEqual(snapshotTree(path.join(root, 'data/users/alice')));
    expect(fs.readdirSync(path.join(root, 'data/db/backups')).filter((n) => n.startsWith('.remote-staging'))).toEqual([]);
    // The database backup, encrypted, back through fetch and the normal `restore db`.
    const dbName = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => n.endsWith('.db'))!;
    expect(cli(['--root', root, 'copy', dbName, '--encrypt-to', pub], { env: e2 }).code).toBe(0);
    expect((await es.head(dbName + '.age'))).not.toBeNull();
    expect(cli(['--root', root, 'remote', 'fetch', dbName, '--to', staging, '--identity', key], { env: e2 }).code).toBe(0);
    const live = path.join(root, 'data/db/sqlite/scitex_cloud_dev.db');
    const w = new Database(live);
    w.exec("UPDATE t SET x = 'damaged'");
    w.close();
    const rd = cli(['--root', root, 'restore', 'db', '--from', path.join(staging, dbName), '--yes'], { env });
    expect(rd.code, rd.stderr).toBe(0);
    const after = new Database(live, { readonly: true });
    expect(after.prepare('SELECT x FROM t').get()).toEqual({ x: 'hello' });
    after.close();
    // A secret key given as a recipient is refused and not echoed.
    const secret = fs.readFileSync(key, 'utf8').split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
    const bad = cli(['--root', root, 'copy', '--encrypt-to', secret], { env: e2 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).not.toContain(secret);
  });

  it('a copy killed half-way leaves no complete-looking backup, and the re-run sends only what is missing', async () => {
    const rs = await bucket('resumed-copies');
    const r2 = project(['u1', 'u2', 'u3', 'u4'], 24 * 1024 * 1024);
    const e3 = { ...gw.env(), SCITEX_CLOUD_USE_SQLITE_DEV: '1', SCITEX_DATA_REMOTE: url('resumed-copies') };
    const b = cli(['--root', r2, '--json', 'backup', 'users', '--no-copy'], { env: e3 });
    expect(b.code, b.stderr).toBe(0);
    const name = path.basename(JSON.parse(b.stdout).set);
    const run = cliAsync(['--root', r2, 'copy', name], { env: e3 });
    // Killed as soon as the first archive is completely there (its checksum object is written right after it).
    const deadline = Date.now() + 120_000;
    while (!(await rs.list(name + '/')).some((o) => o.key.endsWith('.sha256')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    run.child.kill('SIGKILL');
    await run.done;
    expect(await rs.head(name + REMOTE_MANIFEST_SUFFIX)).toBeNull();
    const l = cli(['--root', r2, '--json', 'list', '--remote'], { env: e3 });
    expect(JSON.parse(l.stdout).backups).toEqual([expect.objectContaining({ name, complete: false })]);
    const again = cli(['--root', r2, '--json', 'copy', name], { env: e3 });
    expect(again.code, again.stderr).toBe(0);
    const res = JSON.parse(again.stdout).copies[0];
    expect(res.sent).toEqual([name]);
    expect(res.resumed.length).toBeGreaterThanOrEqual(1);
    const total = fs.readdirSync(path.join(r2, 'data/db/backups', name)).reduce((n, f) => n + fs.statSync(path.join(r2, 'data/db/backups', name, f)).size, 0);
    expect(res.bytesSent).toBeLessThan(total);
    expect(cli(['--root', r2, 'remote', 'verify', '--deep'], { env: e3 }).code).toBe(0);
  });

  it('remote prune applies the calendar rules to complete copies and deletes every object of what it drops', async () => {
    const ps = await bucket('pruned-copies');
    const r3 = project(['alice']);
    const e5 = { ...gw.env(), SCITEX_DATA_REMOTE: url('pruned-copies') };
    const b = cli(['--root', r3, '--json', 'backup', 'users', '--no-copy'], { env: e5 });
    expect(b.code, b.stderr).toBe(0);
    const set = JSON.parse(b.stdout).set as string;
    const old = ['users_20260101_000000', 'users_20260102_000000', 'users_20260201_000000'];
    for (const n of old) execFileSync('cp', ['-a', set, path.join(path.dirname(set), n)]);
    expect(cli(['--root', r3, 'copy'], { env: e5 }).code).toBe(0);
    const dry = cli(['--root', r3, '--json', 'remote', 'prune', '--keep-monthly', '2', '--dry-run'], { env: e5 });
    expect(dry.code, dry.stderr).toBe(0);
    expect(JSON.parse(dry.stdout).decisions.filter((d: { keep: boolean }) => !d.keep).map((d: { name: string }) => d.name).sort()).toEqual(old.slice(0, 2));
    expect((await ps.list()).some((o) => o.key.startsWith(old[0]!))).toBe(true);
    const p = cli(['--root', r3, 'prune', '--remote', '--keep-monthly', '2', '--yes'], { env: e5 });
    expect(p.code, p.stderr).toBe(0);
    const keys = (await ps.list()).map((o) => o.key);
    expect(keys.some((k) => k.startsWith(old[0]!) || k.startsWith(old[1]!))).toBe(false);
    expect(keys).toContain(old[2] + REMOTE_MANIFEST_SUFFIX);
    expect(keys).toContain(path.basename(set) + REMOTE_MANIFEST_SUFFIX);
    expect(cli(['--root', r3, 'remote', 'verify', '--deep'], { env: e5 }).code).toBe(0);
  });

  it('when the database backup fails, the user set that was published is still copied (exit 1 for the database)', async () => {
    const fs2 = await bucket('half-copies');
    const r4 = tempDir();
    dirs.push(r4);
    expect(cli(['--root', r4, 'init']).code).toBe(0);
    makeUser(path.join(r4, 'data/users'), 'alice', 1);
    const e6 = { ...gw.env(), SCITEX_CLOUD_USE_SQLITE_DEV: '1', SCITEX_DATA_REMOTE: url('half-copies') };
    const b = cli(['--root', r4, 'backup'], { env: e6 });
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/SQLite database .* does not exist/);
    const set = fs.readdirSync(path.join(r4, 'data/db/backups')).find((n) => n.startsWith('users_'))!;
    expect(await fs2.head(set + REMOTE_MANIFEST_SUFFIX)).not.toBeNull();
  });

  it('wrong credentials or a server that is down: exit 1, the local backup stays published, no secret printed', async () => {
    await bucket('failed-copies');
    const e4 = { ...env, SCITEX_DATA_REMOTE: url('failed-copies'), AWS_SECRET_ACCESS_KEY: 'wrong-secret-4711' };
    const w = cli(['--root', root, '--json', 'backup', 'users'], { env: e4 });
    expect(w.code).toBe(1);
    const doc = JSON.parse(w.stdout);
    expect(doc.copies[0].error).toMatch(/SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|403/);
    expect(doc.copies[0].error).toMatch(/check the credentials/);
    expect(fs.existsSync(path.join(doc.set, 'SHA256SUMS'))).toBe(true);
    expect(w.stdout + w.stderr).not.toContain('wrong-secret-4711');
    // A full bucket (quota): the server refuses the PUT.
    await bucket('full-copies');
    gw.admin(['quota', 'set', '--quota-scope=bucket', '--bucket=full-copies', '--max-size=4096']);
    gw.admin(['quota', 'enable', '--quota-scope=bucket', '--bucket=full-copies']);
    const q = cli(['--root', root, '--json', 'copy', path.basename(doc.set)], { env: { ...env, SCITEX_DATA_REMOTE: url('full-copies') } });
    expect(q.code).toBe(1);
    expect(JSON.parse(q.stdout).copies[0].error).toMatch(/QuotaExceeded/);
    await gw.stopGateway();
    try {
      const d = cli(['--root', root, 'backup', 'users'], { env: { ...env, SCITEX_DATA_REMOTE: url('failed-copies') } });
      expect(d.code).toBe(1);
      expect(d.stderr).toMatch(/copy to s3:\/\/failed-copies\/nightly .* FAILED/);
      // `status` says so too: the last backup failed because of its copy; then the same for `copy` itself.
      const st = JSON.parse(cli(['--root', root, '--json', 'status', '--skip-db'], { env }).stdout);
      expect(st.problems.join('\n')).toMatch(/the last backup failed \(exit 1\).*copy to s3:\/\/failed-copies\/nightly .* FAILED/);
      expect(cli(['--root', root, 'copy'], { env: { ...env, SCITEX_DATA_REMOTE: url('failed-copies') } }).code).toBe(1);
      const st2 = JSON.parse(cli(['--root', root, '--json', 'status', '--skip-db'], { env }).stdout);
      expect(st2.problems.join('\n')).toMatch(/the last copy failed \(exit 1\)/);
      const l = cli(['--root', root, '--json', 'list', 'users'], { env });
      expect(JSON.parse(l.stdout).backups.length).toBeGreaterThanOrEqual(3);
    } finally {
      await gw.startGateway();
    }
  }, 180_000);

  it('a local backup that changed since it was published is not copied (the copy is removed), exit 1', async () => {
    const ts = await bucket('tampered-local');
    const dbName = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => n.endsWith('.db'))!;
    const file = path.join(root, 'data/db/backups', dbName);
    const bytes = fs.readFileSync(file);
    bytes[100] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const c = cli(['--root', root, '--json', 'copy', dbName], { env: { ...env, SCITEX_DATA_REMOTE: url('tampered-local') } });
    expect(c.code).toBe(1);
    expect(JSON.parse(c.stdout).copies[0].error).toMatch(/no longer matches its recorded checksum/);
    expect(await ts.list()).toEqual([]);
    // Encrypted, age reads the file itself and Node hashes it beside: the same check, the same outcome.
    const es = await bucket('tampered-local-sealed');
    const pub = execFileSync('age-keygen').toString().match(/public key: (age1\S+)/)![1]!;
    const e = cli(['--root', root, '--json', 'copy', dbName, '--encrypt-to', pub], { env: { ...env, SCITEX_DATA_REMOTE: url('tampered-local-sealed') } });
    expect(e.code).toBe(1);
    expect(JSON.parse(e.stdout).copies[0].error).toMatch(/no longer matches its recorded checksum/);
    expect(await es.list()).toEqual([]);
  });

  it('sealed locally (--encrypt-local): the ciphertext leaves as it is, and a new machine restores it from the bucket with the key', async () => {
    const bs = await bucket('sealed-local');
    const keyDir = tempDir('scitex-key-');
    dirs.push(keyDir);
    const key = path.join(keyDir, 'key.txt');
    execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
    const pub = execFileSync('age-keygen', ['-y', key]).toString().trim();
    const sroot = project(['alice']);
    const e3 = { ...gw.env(), SCITEX_CLOUD_USE_SQLITE_DEV: '1', SCITEX_DATA_REMOTE: url('sealed-local'), SCITEX_DATA_ENCRYPT_TO: pub, SCITEX_DATA_ENCRYPT_LOCAL: '1' };
    const r = cli(['--root', sroot, '--json', 'backup'], { env: e3 });
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    const set = path.basename(doc.set);
    const dbName = path.basename(doc.artifacts.find((a: { kind: string }) => a.kind === 'sqlite').path);
    expect(dbName).toMatch(/\.db\.age$/);
    for (const name of [dbName, set]) {
      const m = await manifest(bs, name);
      expect(m).toMatchObject({ sealed: true, encrypted: true, recipients: [pub] });
      for (const o of m.objects) {
        // Exactly the local bytes (never encrypted a second time).
        expect(o.key.endsWith('.age.age')).toBe(false);
        expect(sha(await download(bs, o.key))).toBe(sha(fs.readFileSync(path.join(sroot, 'data/db/backups', o.key))));
      }
    }
    expect(cli(['--root', sroot, 'remote', 'verify', '--deep'], { env: e3 }).code).toBe(0);
    const rows = cli(['--root', sroot, '--json', 'remote', 'list'], { env: e3 });
    expect(JSON.parse(rows.stdout).backups.map((b: { name: string; complete: boolean }) => [b.name, b.complete]).sort()).toEqual([[dbName, true], [set, true]].sort());
    // A new machine: an empty root, the bucket and the key.
    const fresh = project([]);
    fs.rmSync(path.join(fresh, 'data/users'), { recursive: true, force: true });
    fs.mkdirSync(path.join(fresh, 'data/users'));
    const ru = cli(['--root', fresh, 'restore', 'users', '--from-remote', set, '--identity', key, '--yes'], { env: e3 });
    expect(ru.code, ru.stderr).toBe(0);
    expect(snapshotTree(path.join(fresh, 'data/users/alice'))).toEqual(snapshotTree(path.join(sroot, 'data/users/alice')));
    const rd = cli(['--root', fresh, 'restore', 'db', '--from-remote', dbName, '--identity', key, '--yes'], { env: e3 });
    expect(rd.code, rd.stderr).toBe(0);
    const db = new Database(path.join(fresh, 'data/db/sqlite/scitex_cloud_dev.db'), { readonly: true });
    expect(db.prepare('SELECT x FROM t').get()).toEqual({ x: 'hello' });
    db.close();
    // Without the key: refused (exit 2), and the fetched copy is removed with its staging directory.
    expect(cli(['--root', fresh, 'restore', 'db', '--from-remote', dbName, '--yes'], { env: e3 }).code).toBe(2);
  });
});
