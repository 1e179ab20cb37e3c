import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliAsync, tempDir } from '../helpers/cli.js';
import { appTree, okOn, runOn, sha256, SQLITE_ENV, stamp } from '../helpers/apptree.js';
import { ageKey } from '../helpers/offsite.js';

// Attacks on sealed local backups (`backup --encrypt-local`): each case is a scenario that broke a promise.
let keys: string;
let key: string;
let pub: string;
let slow: string;
beforeAll(() => {
  keys = tempDir('scitex-keys-');
  ({ key, pub } = ageKey(keys));
  // An `age` that, from its SLOW_FROM-th decryption on, holds on after writing all the plaintext: a window in
  // which the run is interrupted with the decrypted copy on disk (exec: the run's SIGINT handler kills the sleep).
  slow = tempDir('scitex-slowage-');
  const real = execFileSync('sh', ['-c', 'command -v age']).toString().trim();
  fs.writeFileSync(
    path.join(slow, 'age'),
    `#!/bin/sh\n"${real}" "$@"; st=$?\ncase " $* " in *" -d "*) n=$(($(cat "${slow}/count" 2>/dev/null || echo 0) + 1)); echo $n > "${slow}/count"; [ "$n" -ge "\${SLOW_FROM:-1}" ] && echo $$ > "${slow}/sleeper" && exec sleep 60;; esac\nexit $st\n`,
    { mode: 0o755 },
  );
});
afterAll(() => {
  fs.rmSync(keys, { recursive: true, force: true });
  fs.rmSync(slow, { recursive: true, force: true });
});

const backups = (root: string) => path.join(root, 'data/db/backups');
const dbOf = (root: string) => fs.readdirSync(backups(root)).find((n) => /\.db\.age$/.test(n))!;

/** Files below `dir` (recursively) that start like a SQLite database. */
function sqliteFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.scitex-data'))
    .map((e) => path.join(e.parentPath, e.name))
    .filter((f) => fs.readFileSync(f).subarray(0, 15).toString('latin1') === 'SQLite format 3');
}

/** Waits until a non-empty file exists inside a `.unseal*` directory of `dir`, or the run ended. */
async function decryptedCopyIn(dir: string, run: ReturnType<typeof cliAsync>): Promise<string | null> {
  for (let i = 0; i < 12000 && run.child.exitCode === null; i++) {
    for (const n of fs.readdirSync(dir).filter((x) => x.startsWith('.unseal'))) {
      for (const f of fs.readdirSync(path.join(dir, n))) if (fs.statSync(path.join(dir, n, f)).size > 0) return path.join(dir, n, f);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return null;
}

describe('Ctrl-C while a sealed backup is decrypted', () => {
  it('restore db: the decrypted copy in the backup directory is removed, and the message does not claim otherwise', async () => {
    fs.rmSync(path.join(slow, 'count'), { force: true });
    const root = appTree(['alice']);
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    // The plan's dry decryption (1st) streams only; the restore's (2nd) writes the plaintext copy.
    const run = cliAsync(['--root', root, 'restore', 'db', '--yes', '--identity', key], { env: { ...SQLITE_ENV, PATH: `${slow}:${process.env.PATH}`, SLOW_FROM: '2' } });
    const copy = await decryptedCopyIn(backups(root), run);
    expect(copy, 'the restore never wrote its decrypted copy').not.toBeNull();
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/1 partial file\(s\) removed/);
    expect(fs.readdirSync(backups(root)).filter((n) => n.startsWith('.unseal'))).toEqual([]);
    expect(sqliteFiles(backups(root))).toEqual([]);
  }, 180_000);

  it('verify --deep --identity: the decrypted copy in the temporary directory is removed', async () => {
    fs.rmSync(path.join(slow, 'count'), { force: true });
    const root = appTree(['alice']);
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    const tmp = tempDir('scitex-tmp-');
    const run = cliAsync(['--root', root, 'verify', '--deep', '--identity', key], { env: { ...SQLITE_ENV, PATH: `${slow}:${process.env.PATH}`, TMPDIR: tmp, SLOW_FROM: '1' } });
    const copy = await decryptedCopyIn(tmp, run);
    expect(copy, 'verify never wrote its decrypted copy').not.toBeNull();
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.code).toBe(130);
    expect(sqliteFiles(tmp)).toEqual([]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 180_000);
});

describe('Ctrl-C while verify --deep extracts a sealed set', () => {
  it('the decrypted files in the scratch directory are removed', async () => {
    fs.rmSync(path.join(slow, 'count'), { force: true });
    const root = appTree(['alice']);
    okOn(root, 'backup', '--encrypt-local', '--encrypt-to', pub);
    const tmp = tempDir('scitex-tmp-');
    const files = () => fs.readdirSync(tmp, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
    // Decryptions: the database and alice's archive read by the backup checks, the database restored, then alice
    // extracted into scratch space (the 4th).
    const run = cliAsync(['--root', root, 'verify', '--deep', '--identity', key], { env: { ...SQLITE_ENV, PATH: `${slow}:${process.env.PATH}`, TMPDIR: tmp, SLOW_FROM: '4' } });
    for (let i = 0; i < 12000 && run.child.exitCode === null && !files().some((e) => e.parentPath.includes('/data/users/alice')); i++) await new Promise((r) => setTimeout(r, 10));
    expect(files().some((e) => e.parentPath.includes('/data/users/alice')), 'verify never extracted alice').toBe(true);
    run.child.kill('SIGINT');
    expect((await run.done).code).toBe(130);
    expect(files().map((e) => path.join(e.parentPath, e.name))).toEqual([]);
    fs.rmSync(tmp, { recursive: true, force: true });
  }, 180_000);
});

describe('verify --backups without the key', () => {
  it('fails a sealed database backup whose record of its plaintext was removed (restore refuses it)', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', '--encrypt-local', '--encrypt-to', pub);
    fs.rmSync(path.join(backups(root), `${dbOf(root)}.origin.json`));
    const r = runOn(root, 'restore', 'db', '--yes', '--identity', key);
    expect(r.code).toBe(1);
    // The next step names a way out: the ciphertext is intact and the key decrypts it.
    expect(r.stderr).toMatch(/age -d -i <key>.*--allow-unverified/);
    const v = runOn(root, 'verify', '--backups');
    expect(v.code).toBe(3); // verify: a failed check
    expect(v.stdout).toMatch(/FAIL\s+backups\.readable\s+.*\.db\.age.*no checksum of its plaintext/);
  });

  it('fails a sealed set whose manifest lost a plainSha256 (restore refuses it)', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', '--encrypt-local', '--encrypt-to', pub);
    const set = path.join(backups(root), fs.readdirSync(backups(root)).find((n) => n.startsWith('users_'))!);
    const m = JSON.parse(fs.readFileSync(path.join(set, 'MANIFEST.json'), 'utf8'));
    delete m.users[0].plainSha256;
    fs.writeFileSync(path.join(set, 'MANIFEST.json'), JSON.stringify(m, null, 2));
    expect(runOn(root, 'restore', 'users', '--yes', '--identity', key).code).toBe(1);
    const v = runOn(root, 'verify', '--backups');
    expect(v.code).toBe(3); // verify: a failed check
    expect(v.stdout).toMatch(/FAIL\s+backups\.readable\s+.*alice\.tar\.gz\.age.*no checksum of its plaintext/);
  });
});

describe('prune', () => {
  it('removes the origin record (with the plaintext checksum) of a pruned sealed database backup', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    okOn(root, 'prune', '--keep-last', '1', '--yes');
    const left = fs.readdirSync(backups(root)).filter((n) => n.includes('.db'));
    expect(left.filter((n) => n.endsWith('.db.age'))).toHaveLength(1);
    expect(left.filter((n) => n.endsWith('.origin.json'))).toEqual([`${left.find((n) => n.endsWith('.db.age'))}.origin.json`]);
  });
});

describe('restore db --from a sealed backup outside the backup directory', () => {
  it('works from a read-only directory (a mounted backup disk): the decrypted copy is not written beside the file', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    const mnt = tempDir('scitex-ro-');
    if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', mnt]).status !== 0) return; // needs root and mount
    try {
      const name = dbOf(root);
      for (const f of fs.readdirSync(backups(root)).filter((n) => n.startsWith(name))) fs.copyFileSync(path.join(backups(root), f), path.join(mnt, f));
      expect(spawnSync('mount', ['-o', 'remount,ro', mnt]).status).toBe(0);
      const r = runOn(root, 'restore', 'db', '--yes', '--from', path.join(mnt, name), '--identity', key);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readdirSync(backups(root)).filter((n) => n.startsWith('.unseal'))).toEqual([]);
    } finally {
      spawnSync('umount', [mnt]);
      fs.rmSync(mnt, { recursive: true, force: true });
    }
  });
});

describe('a plain and a sealed database backup', () => {
  it('never share a timestamp (then --at and "the newest" cannot tell them apart)', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', 'db');
    const plain = fs.readdirSync(backups(root)).find((n) => /\.db$/.test(n))!;
    // Plain backups named for each of the next 30 seconds: the sealed run must not take one of their stamps.
    const now = Date.now();
    for (let s = 0; s < 30; s++) {
      const name = plain.replace(/\d{8}_\d{6}/, stamp(new Date(now + s * 1000)));
      if (name === plain) continue;
      fs.copyFileSync(path.join(backups(root), plain), path.join(backups(root), name));
      fs.copyFileSync(path.join(backups(root), `${plain}.sha256`), path.join(backups(root), `${name}.sha256`));
    }
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    const stamps = fs.readdirSync(backups(root)).filter((n) => /\.db(\.age)?$/.test(n)).map((n) => /\d{8}_\d{6}/.exec(n)![0]);
    expect(new Set(stamps).size).toBe(stamps.length);
  });
});

describe('kill -9 while restore db decrypted a sealed backup', () => {
  it('the decrypted copy left in the backup directory is removed by the next restore', async () => {
    fs.rmSync(path.join(slow, 'count'), { force: true });
    const root = appTree(['alice']);
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    const run = cliAsync(['--root', root, 'restore', 'db', '--yes', '--identity', key], { env: { ...SQLITE_ENV, PATH: `${slow}:${process.env.PATH}`, SLOW_FROM: '2' } });
    expect(await decryptedCopyIn(backups(root), run), 'the restore never wrote its decrypted copy').not.toBeNull();
    run.child.kill('SIGKILL');
    await run.done;
    // Our orphaned `age` wrapper (a sleep by now) is ended by its pid.
    try {
      process.kill(Number(fs.readFileSync(path.join(slow, 'sleeper'), 'utf8')), 'SIGKILL');
    } catch {
      /* already gone */
    }
    expect(sqliteFiles(backups(root))).toHaveLength(1);
    okOn(root, 'restore', 'db', '--yes', '--identity', key);
    expect(fs.readdirSync(backups(root)).filter((n) => n.startsWith('.unseal'))).toEqual([]);
    expect(sqliteFiles(backups(root))).toEqual([]);
  }, 180_000);
});

describe('--identity that is not a secret key', () => {
  it('a public key file: one line, exit 1, the reason ends before the next step begins', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    const pubFile = path.join(keys, 'pub.txt');
    fs.writeFileSync(pubFile, pub + '\n');
    const r = runOn(root, 'restore', 'db', '--yes', '--identity', pubFile);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unknown identity type\. Check --identity/);
    const dir = runOn(root, 'restore', 'db', '--yes', '--identity', keys);
    expect([dir.code, dir.stderr.trim().split('\n').length]).toEqual([2, 1]);
  });
});

describe('an unchanged user whose sealed archive lost its plaintext checksum', () => {
  it('is archived afresh, not linked with the missing record carried into the new set', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', 'users', '--encrypt-local', '--encrypt-to', pub);
    const first = path.join(backups(root), fs.readdirSync(backups(root)).find((n) => n.startsWith('users_'))!);
    const m = JSON.parse(fs.readFileSync(path.join(first, 'MANIFEST.json'), 'utf8'));
    delete m.users[0].plainSha256;
    fs.writeFileSync(path.join(first, 'MANIFEST.json'), JSON.stringify(m, null, 2));
    const set = JSON.parse(okOn(root, '--json', 'backup', 'users', '--encrypt-local', '--encrypt-to', pub).stdout).set as string;
    const m2 = JSON.parse(fs.readFileSync(path.join(set, 'MANIFEST.json'), 'utf8'));
    expect(m2.users[0].plainSha256).toMatch(/^[0-9a-f]{64}$/);
    okOn(root, 'restore', 'users', '--from', set, '--yes', '--identity', key);
  });
});

describe('a truncated sealed database backup whose checksum record was rewritten to match', () => {
  it('is refused in one line that blames the file, not the key; live untouched', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', 'db', '--encrypt-local', '--encrypt-to', pub);
    const f = path.join(backups(root), dbOf(root));
    fs.writeFileSync(f, fs.readFileSync(f).subarray(0, 4000));
    fs.writeFileSync(`${f}.sha256`, `${sha256(f)}  ${path.basename(f)}\n`);
    const live = sha256(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'));
    const r = runOn(root, 'restore', 'db', '--yes', '--identity', key);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/Check --identity/);
    expect(r.stderr).toMatch(/damaged or was tampered with/);
    expect(sha256(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'))).toBe(live);
  });
});

describe('verify --backups with a key that is not a recipient', () => {
  it('blames the key, not the storage (the backups are sound)', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', '--encrypt-local', '--encrypt-to', pub);
    const other = path.join(keys, 'other.txt');
    if (!fs.existsSync(other)) execFileSync('age-keygen', ['-o', other], { stdio: 'ignore' });
    const v = runOn(root, 'verify', '--backups', '--identity', other);
    expect(v.code).toBe(3);
    expect(v.stdout).toMatch(/FAIL\s+backups\.readable\s+.*no identity matched/);
    expect(v.stdout).not.toMatch(/investigate the storage/);
    expect(v.stdout).toMatch(/→ .*--identity/);
  });
});

describe('a set whose manifest misstates whether it is sealed (unchanged users are hard-linked)', () => {
  it('never gives a plain set a link to ciphertext under a plaintext name (a sealed set that lost its "sealed" record)', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', 'users', '--encrypt-local', '--encrypt-to', pub);
    const first = path.join(backups(root), fs.readdirSync(backups(root)).find((n) => n.startsWith('users_'))!);
    const m = JSON.parse(fs.readFileSync(path.join(first, 'MANIFEST.json'), 'utf8'));
    delete m.sealed;
    fs.writeFileSync(path.join(first, 'MANIFEST.json'), JSON.stringify(m, null, 2));
    const set = JSON.parse(okOn(root, '--json', 'backup', 'users').stdout).set as string;
    const head = fs.readFileSync(path.join(set, 'alice.tar.gz')).subarray(0, 2);
    expect(head.equals(Buffer.from([0x1f, 0x8b])), 'alice.tar.gz is not gzip').toBe(true);
  });

  it('never publishes a plain archive in a sealed set (a plain set whose manifest claims to be sealed)', () => {
    const root = appTree(['alice']);
    okOn(root, 'backup', 'users');
    const first = path.join(backups(root), fs.readdirSync(backups(root)).find((n) => n.startsWith('users_'))!);
    const m = JSON.parse(fs.readFileSync(path.join(first, 'MANIFEST.json'), 'utf8'));
    m.sealed = { recipients: [pub] };
    for (const u of m.users) u.plainSha256 = u.sha256;
    fs.writeFileSync(path.join(first, 'MANIFEST.json'), JSON.stringify(m, null, 2));
    const set = JSON.parse(okOn(root, '--json', 'backup', 'users', '--encrypt-local', '--encrypt-to', pub).stdout).set as string;
    expect(fs.readFileSync(path.join(set, 'alice.tar.gz.age')).subarray(0, 21).toString('latin1')).toBe('age-encryption.org/v1');
  });
});
