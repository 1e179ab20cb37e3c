#!/usr/bin/env node
// Off-site bench (run after `npm run build`): copy throughput against rclone to the same throwaway radosgw, peak
// memory of a copy, and the cost of encryption. Prints ratios; asserts nothing. Needs radosgw, ceph-mon, ceph-osd,
// age, rclone and GNU time (Debian packages).
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.join(here, '..', 'bin', 'scitex-data');
const { startRadosgw } = await import(path.join(here, '..', 'dist', 'devtools', 'radosgw.js'));
const { ObjectStore, parseDestination } = await import(path.join(here, '..', 'dist', 'index.js'));
const MiB = 1024 * 1024;
const size = Number(process.argv[2] ?? 384) * MiB;

/** Runs a command under GNU time: seconds and peak RSS (MB). */
function timed(cmd, args, env) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [s, kb] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { s, mb: Math.round(kb / 1024) };
}

const gw = await startRadosgw({ memBytes: 8 * 1024 ** 3 });
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-bench-offsite-'));
try {
  Object.assign(process.env, gw.env());
  const mk = async (b) => {
    const s = await ObjectStore.open(parseDestination(`s3://${b}/p?endpoint=${gw.endpoint}`));
    const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
    await s.client.send(new CreateBucketCommand({ Bucket: b }));
    s.close();
    return `s3://${b}/p?endpoint=${gw.endpoint}`;
  };
  execFileSync(process.execPath, [bin, '--root', root, 'init']);
  fs.mkdirSync(path.join(root, 'data/users/alice'), { recursive: true });
  fs.writeFileSync(path.join(root, 'data/users/alice/bulk.bin'), crypto.randomBytes(size));
  const backup = timed(process.execPath, [bin, '--root', root, '--quiet', 'backup', 'users', '--no-copy', '--compression', 'none']);
  const set = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => n.startsWith('users_'));
  const key = path.join(root, 'key.txt');
  execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
  const pub = execFileSync('age-keygen', ['-y', key]).toString().trim();
  // A fresh cluster is slow on its first large writes: warm it up before anything is timed.
  const warm = await mk('bench-warmup');
  timed(process.execPath, [bin, '--root', root, '--quiet', 'copy'], { SCITEX_DATA_REMOTE: warm });
  const plain = timed(process.execPath, [bin, '--root', root, '--quiet', 'copy'], { SCITEX_DATA_REMOTE: await mk('bench-plain') });
  const sealed = timed(process.execPath, [bin, '--root', root, '--quiet', 'copy', '--encrypt-to', pub], { SCITEX_DATA_REMOTE: await mk('bench-sealed') });
  await mk('bench-rclone');
  const rcloneEnv = { AWS_CA_BUNDLE: '', RCLONE_CONFIG_R_TYPE: 's3', RCLONE_CONFIG_R_PROVIDER: 'Ceph', RCLONE_CONFIG_R_ENDPOINT: gw.endpoint, RCLONE_CONFIG_R_ACCESS_KEY_ID: gw.accessKeyId, RCLONE_CONFIG_R_SECRET_ACCESS_KEY: gw.secretAccessKey };
  const rclone = timed('rclone', ['copy', path.join(root, 'data/db/backups', set), `r:bench-rclone/p/${set}`], rcloneEnv);
  const mbps = (t) => (size / MiB / t.s).toFixed(0);
  console.log(`| offsite | copy a ${size / MiB} MiB set | ${plain.s} s / ${plain.mb} MB (${mbps(plain)} MiB/s) | rclone copy: ${rclone.s} s / ${rclone.mb} MB (${mbps(rclone)} MiB/s) | throughput ${(rclone.s / plain.s).toFixed(2)}x | >= 0.9x rclone; peak < 200 MB |`);
  console.log(`| offsite | encrypted copy (age) of the same set | ${sealed.s} s / ${sealed.mb} MB | plain copy: ${plain.s} s | ${(sealed.s / plain.s).toFixed(2)}x | backup + copy encrypted within 1.3x: ${((backup.s + sealed.s) / (backup.s + plain.s)).toFixed(2)}x (backup ${backup.s} s) |`);
} finally {
  await gw.stop();
  fs.rmSync(root, { recursive: true, force: true });
}
