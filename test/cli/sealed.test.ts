import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync, tempDir } from '../helpers/cli.js';
import { appTree, okOn, runOn, sha256, SQLITE_ENV } from '../helpers/apptree.js';
import { snapshotTree } from '../helpers/tree.js';
import { ageKey } from '../helpers/offsite.js';

// `backup --encrypt-local`: the backup directory holds only age ciphertext, verify works without the key,
// and every reader (restore, verify --deep, ls, diff) decrypts with --identity and checks before use.
let keys: string;
let key: string;
let pub: string;
let otherKey: string;
let otherPub: string;
beforeAll(() => {
  keys = tempDir('scitex-keys-');
  ({ key, pub } = ageKey(keys));
  ({ key: otherKey, pub: otherPub } = ageKey(keys, 'other.txt'));
});
afterAll(() => fs.rmSync(keys, { recursive: true, force: true }));

const backups = (root: string) => path.join(root, 'data/db/backups');
const setOf = (root: string) => fs.readdirSync(backups(root)).filter((n) => n.startsWith('users_')).sort().pop()!;
const dbOf = (root: string) => fs.readdirSync(backups(root)).find((n) => /\.db\.age$/.test(n))!;
/** Opens a SQLite file, runs `fn`, closes it (an open handle would stop a restore, as the app's would). */
function withDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}
const count = (file: string) => withDb(file, (db) => (db.prepare('SELECT count(*) AS n FROM auth_user').get() as { n: number }).n);
const rows = (root: string) => count(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'));

/** Every file below `dir` whose first bytes are a plaintext format we write (tar, gzip, zstd, SQLite, pg_dump). */
function plaintextFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile() || e.name.startsWith('.scitex-data')) continue; // our lock is an (empty) SQLite file
    const head = fs.readFileSync(path.join(e.parentPath, e.name)).subarray(0, 512);
    if (head.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b])) || head.subarray(0, 4).equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])) || head.toString('latin1').startsWith('SQLite format 3') || head.toString('latin1').startsWith('PGDMP') || head.subarray(257, 262).toString('latin1') === 'ustar') out.push(path.join(e.parentPath, e.name));
  }
  return out;
}

describe('backup --encrypt-local', () => {
  let root: string;
  beforeAll(() => {
    root = appTree(['alice', 'bob']);
    okOn(root, 'backup', '--encrypt-local', '--encrypt-to', pub);
  });

  it('publishes only age ciphertext, with checksums that sha256sum -c accepts without the key', () => {
    expect(plaintextFiles(backups(root))).toEqual([]);
    const set = path.join(backups(root), setOf(root));
    expect(fs.readdirSync(set).sort()).toEqual(['MANIFEST.json', 'SHA256SUMS', 'alice.tar.gz.age', 'bob.tar.gz.age']);
    expect(spawnSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: set }).status).toBe(0);
    const db = dbOf(root);
    expect(spawnSync('sha256sum', ['-c', `${db}.sha256`], { cwd: backups(root) }).status).toBe(0);
    const m = JSON.parse(fs.readFileSync(path.join(set, 'MANIFEST.json'), 'utf8'));
    expect(m.sealed).toEqual({ recipients: [pub] });
    for (const u of m.users) expect(u.plainSha256).toMatch(/^[0-9a-f]{64}$/);
    const origin = JSON.parse(fs.readFileSync(path.join(backups(root), `${db}.origin.json`), 'utf8'));
    expect(origin).toMatchObject({ recipients: [pub], plainSize: expect.any(Number) });
  });

  it('restores with the standard tools alone: age -d | tar -xz, and age -d > file.db', () => {
    const out = tempDir();
    const set = path.join(backups(root), setOf(root));
    execFileSync('sh', ['-c', `age -d -i "$1" "$2" | tar -xz -C "$3"`, 'sh', key, path.join(set, 'alice.tar.gz.age'), out]);
    expect(snapshotTree(path.join(out, 'data/users/alice'))).toEqual(snapshotTree(path.join(root, 'data/users/alice')));
    execFileSync('age', ['-d', '-i', key, '-o', path.join(out, 'x.db'), path.join(backups(root), dbOf(root))]);
    expect(count(path.join(out, 'x.db'))).toBe(2);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('verify --backups passes without the key and says what it could not read; --deep reads everything with --identity', () => {
    const v = okOn(root, 'verify', '--backups');
    expect(v.stdout).toMatch(/2 sealed backup\(s\) checked by their ciphertext checksum only \(give --identity/);
    const deep = runOn(root, 'verify', '--deep');
    expect(deep.stdout).toMatch(/WARN\s+deep\.database\s+.*sealed/);
    const full = okOn(root, 'verify', '--deep', '--identity', key);
    expect(full.stdout).toMatch(/PASS\s+deep\.database/);
    expect(full.stdout).toMatch(/PASS\s+deep\.users\s+users_\d+_\d+: 2 archive\(s\) extract/);
    expect(full.stdout).toMatch(/PASS\s+backups\.readable\s+\d+ backup\(s\) read cleanly$/m);
  });

  it('a second run links unchanged users; other recipients make fresh archives', () => {
    const again = okOn(root, '--json', 'backup', 'users', '--encrypt-local', '--encrypt-to', pub);
    const set = JSON.parse(again.stdout).set as string;
    const m = JSON.parse(fs.readFileSync(path.join(set, 'MANIFEST.json'), 'utf8'));
    expect(m.users.map((u: { reused: boolean }) => u.reused)).toEqual([true, true]);
    const other = okOn(root, '--json', 'backup', 'users', '--encrypt-local', '--encrypt-to', otherPub);
    const m2 = JSON.parse(fs.readFileSync(path.join(JSON.parse(other.stdout).set as string, 'MANIFEST.json'), 'utf8'));
    expect(m2.users.map((u: { reused: boolean }) => u.reused)).toEqual([false, false]);
    expect(m2.sealed).toEqual({ recipients: [otherPub] });
    fs.rmSync(JSON.parse(other.stdout).set as string, { recursive: true });
    fs.rmSync(set, { recursive: true });
  });

  it('ls and diff read sealed archives with --identity, and ask for it without', () => {
    const set = setOf(root);
    const no = runOn(root, 'ls', set, 'alice');
    expect(no.code).toBe(2);
    expect(no.stderr).toMatch(/is encrypted \(a sealed backup\)\. Give --identity/);
    expect(okOn(root, 'ls', set, 'alice', '--identity', key).stdout).toMatch(/entries, \d+ files/);
    expect(okOn(root, 'ls', dbOf(root), '--identity', key).stdout).toMatch(/auth_user {2}2 row\(s\)/);
    fs.writeFileSync(path.join(root, 'data/users/alice/new.txt'), 'x');
    expect(okOn(root, 'diff', set, '--user', 'alice', '--identity', key).stdout).toMatch(/\+ new\.txt/);
    fs.rmSync(path.join(root, 'data/users/alice/new.txt'));
  });

  it('restore users: refused without a key or with the wrong one (live untouched); a dry run writes nothing; then restored', () => {
    fs.writeFileSync(path.join(root, 'data/users/alice/proj.txt'), 'changed after the backup');
    const live = snapshotTree(path.join(root, 'data/users'));
    const no = runOn(root, 'restore', 'users', '--user', 'alice', '--yes');
    expect([no.code, no.stderr.trim().split('\n').length]).toEqual([2, 1]);
    const wrong = runOn(root, 'restore', 'users', '--user', 'alice', '--yes', '--identity', otherKey);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/age decryption failed.*no identity matched/);
    expect(wrong.stderr.trim().split('\n')).toHaveLength(1);
    expect(snapshotTree(path.join(root, 'data/users'))).toEqual(live);
    const before = snapshotTree(root);
    const dry = okOn(root, 'restore', 'users', '--user', 'alice', '--dry-run', '--identity', key);
    expect(dry.stdout).toMatch(/1 only live/);
    expect(snapshotTree(root)).toEqual(before);
    okOn(root, 'restore', 'users', '--user', 'alice', '--yes', '--identity', key);
    expect(fs.existsSync(path.join(root, 'data/users/alice/proj.txt'))).toBe(false);
    expect(plaintextFiles(backups(root))).toEqual([]);
  });

  it('restore db: refused without the key; a dry run writes nothing; then restored with the rows of the backup', () => {
    withDb(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'), (db) => db.exec("INSERT INTO auth_user(username) VALUES ('carol')"));
    expect(runOn(root, 'restore', 'db', '--yes').code).toBe(2);
    const before = snapshotTree(root);
    okOn(root, 'restore', 'db', '--dry-run', '--identity', key);
    expect(snapshotTree(root)).toEqual(before);
    okOn(root, 'restore', 'db', '--yes', '--identity', key);
    expect(rows(root)).toBe(2);
    // The decrypted copy is gone; nothing but ciphertext stays in the backup directory.
    expect(fs.readdirSync(backups(root)).filter((n) => n.startsWith('.unseal'))).toEqual([]);
    expect(plaintextFiles(backups(root))).toEqual([]);
  });
});

describe('sealed archives of every compression', () => {
  it.each([['zstd', 'zstd -d'], ['none', 'cat']])('--compression %s: encrypted as written, restored by scitex-data and by age -d | %s | tar -x', (compression, decompress) => {
    const root = appTree(['alice']);
    const r = JSON.parse(okOn(root, '--json', 'backup', 'users', '--encrypt-local', '--encrypt-to', pub, '--compression', compression).stdout);
    const set = r.set as string;
    const m = JSON.parse(fs.readFileSync(path.join(set, 'MANIFEST.json'), 'utf8'));
    const file = path.join(set, m.users[0].archive as string);
    expect(fs.readFileSync(file).subarray(0, 21).toString()).toBe('age-encryption.org/v1');
    expect(sha256(file)).toBe(m.users[0].sha256);
    // The recorded plaintext checksum is the archive age decrypts to.
    const plain = execFileSync('age', ['-d', '-i', key, file], { maxBuffer: 1 << 28 });
    expect(crypto.createHash('sha256').update(plain).digest('hex')).toBe(m.users[0].plainSha256);
    const out = tempDir();
    execFileSync('sh', ['-c', `age -d -i "$1" "$2" | ${decompress} | tar -x -C "$3"`, 'sh', key, file, out]);
    expect(snapshotTree(path.join(out, 'data/users/alice'))).toEqual(snapshotTree(path.join(root, 'data/users/alice')));
    const to = tempDir();
    okOn(root, 'restore', 'users', '--to', to, '--yes', '--identity', key);
    expect(snapshotTree(path.join(to, 'data/users/alice'))).toEqual(snapshotTree(path.join(root, 'data/users/alice')));
    for (const d of [out, to]) fs.rmSync(d, { recursive: true, force: true });
  });
});

describe('sealed backups that were tampered with', () => {
  it('an archive re-encrypted to the same public key (checksums rewritten to match) is refused by the plaintext check', () => {
    const root = appTree(['alice', 'bob']);
    okOn(root, 'backup', 'users', '--encrypt-local', '--encrypt-to', pub);
    const set = path.join(backups(root), setOf(root));
    // Anyone with the public key can encrypt: a well-formed archive of data/users/alice with other contents,
    // sealed to the same key, with both records rewritten to match the new ciphertext.
    const forged = path.join(set, 'forged.age');
    const fake = tempDir();
    fs.mkdirSync(path.join(fake, 'data/users/alice'), { recursive: true });
    fs.writeFileSync(path.join(fake, 'data/users/alice/planted.txt'), 'not what alice had');
    execFileSync('sh', ['-c', `tar --format=ustar -czf - -C "$1" data/users/alice | age -r "$2" > "$3"`, 'sh', fake, pub, forged]);
    fs.renameSync(forged, path.join(set, 'alice.tar.gz.age'));
    const sum = sha256(path.join(set, 'alice.tar.gz.age'));
    const m = JSON.parse(fs.readFileSync(path.join(set, 'MANIFEST.json'), 'utf8'));
    const alice = m.users.find((u: { username: string }) => u.username === 'alice');
    Object.assign(alice, { sha256: sum, size: fs.statSync(path.join(set, 'alice.tar.gz.age')).size });
    fs.writeFileSync(path.join(set, 'MANIFEST.json'), JSON.stringify(m, null, 2));
    fs.writeFileSync(path.join(set, 'SHA256SUMS'), fs.readFileSync(path.join(set, 'SHA256SUMS'), 'utf8').replace(/^[0-9a-f]{64}( {2}alice)/m, `${sum}$1`).replace(/^[0-9a-f]{64}( {2}MANIFEST\.json)/m, `${sha256(path.join(set, 'MANIFEST.json'))}$1`));
    fs.writeFileSync(path.join(root, 'data/users/alice/mine.txt'), 'alice only');
    const live = snapshotTree(path.join(root, 'data/users'));
    const r = runOn(root, 'restore', 'users', '--user', 'alice', '--yes', '--identity', key);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/alice\.tar\.gz\.age.*(does not match|checksum)/);
    expect(snapshotTree(path.join(root, 'data/users'))).toEqual(live);
  });

  it('a flipped byte in a sealed database backup is refused before decryption; --encrypt-local without keys writes nothing', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    const f = path.join(backups(root), dbOf(root));
    const b = fs.readFileSync(f);
    b[b.length - 100] ^= 1;
    fs.writeFileSync(f, b);
    const r = runOn(root, 'restore', 'db', '--yes', '--identity', key);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not match its recorded SHA-256/);
    const before = snapshotTree(backups(root));
    const nokey = runOn(root, 'backup', '--encrypt-local');
    expect(nokey.code).toBe(2);
    expect(nokey.stderr).toMatch(/--encrypt-local needs the public keys/);
    expect(snapshotTree(backups(root))).toEqual(before);
  });
});

describe('a sealed backup killed while age encrypts', () => {
  /** The pid of an `age` process whose parent is `ppid`, or null. */
  const ageChild = (ppid: number): number | null => {
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
        const m = /^\d+ \((.*)\) \S (\d+)/.exec(stat);
        if (m && m[1] === 'age' && Number(m[2]) === ppid) return Number(d);
      } catch {
        /* gone */
      }
    }
    return null;
  };

  it('leaves nothing published and nothing in plaintext that a re-run does not clean up; the re-run completes', async () => {
    const root = appTree(['alice']);
    fs.writeFileSync(path.join(root, 'data/users/alice/bulk.bin'), crypto.randomBytes(192 << 20));
    const run = cliAsync(['--root', root, 'backup', 'users', '--encrypt-local', '--encrypt-to', pub, '--compression', 'none'], { env: SQLITE_ENV });
    let seen: number | null = null;
    for (let i = 0; i < 6000 && seen === null && run.child.exitCode === null; i++) {
      seen = ageChild(run.child.pid!);
      if (seen === null) await new Promise((r) => setTimeout(r, 5));
    }
    expect(seen, 'age never ran while the backup was alive').not.toBeNull();
    run.child.kill('SIGKILL');
    const r = await run.done;
    expect(r.code).toBe(-1);
    // No set was published by the killed run.
    expect(fs.readdirSync(backups(root)).filter((n) => n.startsWith('users_'))).toEqual([]);
    okOn(root, 'backup', 'users', '--encrypt-local', '--encrypt-to', pub, '--compression', 'none');
    expect(fs.readdirSync(backups(root)).filter((n) => n.includes('.partial-'))).toEqual([]);
    expect(plaintextFiles(backups(root))).toEqual([]);
    // Only users were backed up (no database backup: freshness fails); what was published is sound.
    const v = runOn(root, 'verify', '--backups', '--identity', key);
    expect(v.stdout).toMatch(/PASS\s+backups\.checksums\s+1 backup\(s\) match/);
    expect(v.stdout).toMatch(/PASS\s+backups\.readable\s+1 backup\(s\) read cleanly/);
  }, 120_000);
});
