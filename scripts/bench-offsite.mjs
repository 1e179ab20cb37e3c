#!/usr/bin/env node
// Off-site bench (run after `npm run build`): copy throughput against rclone to the same throwaway radosgw, peak
// memory of a copy, and the cost of encryption, of the copies and of sealed local backups. Every pair is measured
// alternately, REPS times, each copy to a fresh bucket, and the medians are compared: one run on a shared 2-core
// machine swings by 2x. Prints ratios; asserts nothing. Needs radosgw, ceph-mon, ceph-osd, age, rclone and GNU time
// (Debian packages). Usage: node scripts/bench-offsite.mjs [MiB of the incompressible file, default 384] [reps, 3]
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeShape } from './bench-trees.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.join(here, '..', 'bin', 'scitex-data');
const { startRadosgw } = await import(path.join(here, '..', 'dist', 'devtools', 'radosgw.js'));
const { ObjectStore, parseDestination } = await import(path.join(here, '..', 'dist', 'index.js'));
const MiB = 1024 * 1024;
const size = Number(process.argv[2] ?? 384) * MiB;
const REPS = Number(process.argv[3] ?? 3);

/** Runs a command under GNU time: seconds and peak RSS (MB). */
function timed(cmd, args, env) {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const [s, kb] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { s, mb: Math.round(kb / 1024) };
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** Medians of seconds and of peak RSS. */
const med = (runs) => ({ s: median(runs.map((r) => r.s)), mb: median(runs.map((r) => r.mb)) });

const gw = await startRadosgw({ memBytes: 8 * 1024 ** 3 });
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-bench-offsite-'));
let buckets = 0;
try {
  Object.assign(process.env, gw.env());
  // The OSD's store lives in memory, and a full Ceph cluster blocks writes instead of failing them: each run's
  // bucket is emptied before the next one is made.
  let last = null;
  const mk = async () => {
    if (last) {
      const old = await ObjectStore.open(parseDestination(`s3://${last}/?endpoint=${gw.endpoint}`));
      await old.delete((await old.list()).map((o) => o.key));
      old.close();
    }
    const b = (last = `bench-${++buckets}`);
    const s = await ObjectStore.open(parseDestination(`s3://${b}/p?endpoint=${gw.endpoint}`));
    const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
    await s.client.send(new CreateBucketCommand({ Bucket: b }));
    s.close();
    return { b, url: `s3://${b}/p?endpoint=${gw.endpoint}` };
  };
  const key = path.join(work, 'key.txt');
  execFileSync('age-keygen', ['-o', key], { stdio: 'ignore' });
  const pub = execFileSync('age-keygen', ['-y', key]).toString().trim();
  const cli = (root, args, env = {}) => timed(process.execPath, [bin, '--root', root, '--quiet', ...args], { SCITEX_CLOUD_USE_SQLITE_DEV: '1', ...env });
  const fresh = (name) => {
    const root = path.join(work, name);
    fs.rmSync(root, { recursive: true, force: true });
    fs.mkdirSync(root);
    execFileSync(process.execPath, [bin, '--root', root, 'init'], { stdio: 'ignore' });
    return root;
  };

  // One incompressible file: the worst case for encryption's share of the time.
  const root = fresh('big');
  fs.mkdirSync(path.join(root, 'data/users/alice'), { recursive: true });
  fs.writeFileSync(path.join(root, 'data/users/alice/bulk.bin'), crypto.randomBytes(size));
  cli(root, ['backup', 'users', '--no-copy', '--compression', 'none']);
  const set = fs.readdirSync(path.join(root, 'data/db/backups')).find((n) => n.startsWith('users_'));
  // A fresh cluster is slow on its first large writes: warm it up before anything is timed.
  cli(root, ['copy'], { SCITEX_DATA_REMOTE: (await mk()).url });
  const rcloneEnv = { AWS_CA_BUNDLE: '', RCLONE_CONFIG_R_TYPE: 's3', RCLONE_CONFIG_R_PROVIDER: 'Ceph', RCLONE_CONFIG_R_ENDPOINT: gw.endpoint, RCLONE_CONFIG_R_ACCESS_KEY_ID: gw.accessKeyId, RCLONE_CONFIG_R_SECRET_ACCESS_KEY: gw.secretAccessKey };
  const plain = [];
  const sealed = [];
  const rclone = [];
  for (let i = 0; i < REPS; i++) {
    plain.push(cli(root, ['copy'], { SCITEX_DATA_REMOTE: (await mk()).url }));
    sealed.push(cli(root, ['copy', '--encrypt-to', pub], { SCITEX_DATA_REMOTE: (await mk()).url }));
    rclone.push(timed('rclone', ['copy', path.join(root, 'data/db/backups', set), `r:${(await mk()).b}/p/${set}`], rcloneEnv));
  }
  // The nightly job end to end (backup users + copy to a fresh bucket), on a fresh root each time: plain copies,
  // encrypted copies, and sealed local backups (--encrypt-local, whose copies leave as they are).
  const template = path.join(work, 'small-template');
  makeShape('small', template);
  const shapes = [
    ['one incompressible file, --compression none', (dir) => {
      fs.mkdirSync(path.join(dir, 'data/users/alice'), { recursive: true });
      fs.linkSync(path.join(root, 'data/users/alice/bulk.bin'), path.join(dir, 'data/users/alice/bulk.bin'));
    }, ['--compression', 'none']],
    ["make-tree.py's tree (40 users x 4 MiB), default gzip", (dir) => execFileSync('cp', ['-al', path.join(template, 'data/users'), path.join(dir, 'data')]), []],
  ];
  const variants = [
    ['plain', []],
    ['encrypted copies', ['--encrypt-to', pub]],
    ['sealed locally (--encrypt-local)', ['--encrypt-to', pub, '--encrypt-local']],
  ];
  const nightly = [];
  for (const [shape, fill, flags] of shapes) {
    const runs = variants.map(() => []);
    for (let i = 0; i < REPS; i++) {
      for (const [v, [, extra]] of variants.entries()) {
        const r = fresh(`n${v}`);
        fs.rmSync(path.join(r, 'data/users'), { recursive: true, force: true });
        fill(r);
        runs[v].push(cli(r, ['backup', 'users', ...flags, ...extra], { SCITEX_DATA_REMOTE: (await mk()).url }));
      }
    }
    nightly.push([shape, runs.map(med)]);
  }
  const P = med(plain);
  const S = med(sealed);
  const R = med(rclone);
  const mbps = (t) => (size / MiB / t.s).toFixed(0);
  const row = (...c) => console.log(`| ${c.join(' | ')} |`);
  row('what', 'scitex-data (median time / peak RSS)', 'peer (median)', 'ratio', 'goal');
  row('---', '---', '---', '---', '---');
  row(`copy a ${size / MiB} MiB set`, `${P.s} s / ${P.mb} MB (${mbps(P)} MiB/s)`, `\`rclone copy\`: ${R.s} s / ${R.mb} MB (${mbps(R)} MiB/s)`, `throughput ${(R.s / P.s).toFixed(2)}x`, '>= 0.9x rclone, peak < 200 MB');
  row('encrypted copy (age) of the same set', `${S.s} s / ${S.mb} MB`, `plain copy: ${P.s} s`, `${(S.s / P.s).toFixed(2)}x`, '-');
  for (const [shape, [p, e, l]] of nightly) {
    row(`backup + copy, encrypted copies: ${shape}`, `${e.s} s / ${e.mb} MB`, `plain: ${p.s} s / ${p.mb} MB`, `${(e.s / p.s).toFixed(2)}x`, 'within 1.3x');
    row(`backup + copy, sealed locally: ${shape}`, `${l.s} s / ${l.mb} MB`, `plain: ${p.s} s`, `${(l.s / p.s).toFixed(2)}x`, 'within 1.3x');
  }
  console.log(`\n(medians of ${REPS} alternating runs, each copy to a fresh bucket of one throwaway radosgw on this machine)`);
} finally {
  await gw.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
