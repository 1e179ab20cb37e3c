#!/usr/bin/env node
// `npm run bench`: scitex-data next to what operators use today, measured in one run on the same trees.
// Prints time (median) with CPU time, peak memory, output size and the ratio to each peer; never asserts. User rows run on
// every tree shape of scripts/bench-trees.mjs; wall time is noisy on a shared machine, the CPU ratio less so.
//   node scripts/bench.mjs [--quick] [--runs 3] [--layout-users 10000]
//                          [--sqlite-mb 500] [--pg-scale 100] [--write-readme [--readme-block bench]]
//                          [--only layout,users,sqlite,pg,checksum,offsite] [--shapes small,large,many] [--rows none,zstd,gzip,restore,nightly]
// The off-site rows (copy vs rclone, encryption) come from scripts/bench-offsite.mjs, run last (radosgw, age, rclone).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, '..');
const BIN = path.join(repo, 'bin', 'scitex-data');
const { makeTree } = await import(path.join(repo, 'dist/devtools/maketree.js'));
const { values: a } = parseArgs({
  options: {
    quick: { type: 'boolean' }, runs: { type: 'string' }, users: { type: 'string' }, mb: { type: 'string' },
    'layout-users': { type: 'string' }, 'big-mb': { type: 'string' }, small: { type: 'string' },
    'sqlite-mb': { type: 'string' }, 'pg-scale': { type: 'string' }, 'write-readme': { type: 'boolean' }, only: { type: 'string' }, shapes: { type: 'string' }, rows: { type: 'string' }, 'readme-block': { type: 'string' },
  },
});
const q = !!a.quick;
const opt = {
  runs: Number(a.runs ?? (q ? 1 : 3)), users: Number(a.users ?? (q ? 6 : 20)), mb: Number(a.mb ?? (q ? 4 : 20)),
  layoutUsers: Number(a['layout-users'] ?? (q ? 1000 : 10000)), bigMb: Number(a['big-mb'] ?? (q ? 64 : 1024)),
  small: Number(a.small ?? (q ? 5000 : 100000)), sqliteMb: Number(a['sqlite-mb'] ?? (q ? 20 : 500)), pgScale: Number(a['pg-scale'] ?? (q ? 1 : 100)),
};
const only = a.only ? new Set(a.only.split(',')) : null;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-bench-'));
const rows = [];

function ensureTools() {
  const need = [['borg', 'borgbackup'], ['restic', 'restic'], ['sqlite3', 'sqlite3'], ['zstd', 'zstd']].filter(([b]) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0).map(([, p]) => p);
  if (!fs.existsSync('/usr/bin/time')) need.push('time');
  if (want('offsite')) need.push(...[['radosgw', 'radosgw'], ['ceph-mon', 'ceph-mon'], ['ceph-osd', 'ceph-osd'], ['age', 'age'], ['rclone', 'rclone']].filter(([b]) => spawnSync('sh', ['-c', `command -v ${b}`]).status !== 0).map(([, p]) => p));
  if (need.length) {
    console.log(`bench: installing ${need.join(' ')} (Debian)`);
    spawnSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${need.join(' ')} >/dev/null`], { stdio: 'inherit' });
  }
}

/** Runs a command under GNU time: seconds and peak RSS (KiB); throws on failure. */
function timed(cmd, args, { cwd, env, before } = {}) {
  const samples = [];
  for (let i = 0; i < opt.runs; i++) {
    before?.();
    const r = spawnSync('/usr/bin/time', ['-f', '@@%e %M %U %S', cmd, ...args], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 26 });
    const m = /@@([\d.]+) (\d+) ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr);
    if (r.status !== 0 && r.status !== 3 || !m) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.slice(-400)}`);
    samples.push({ s: Number(m[1]), kb: Number(m[2]), cpu: Number(m[3]) + Number(m[4]) });
  }
  samples.sort((x, y) => x.s - y.s);
  const mid = samples[Math.floor(samples.length / 2)];
  return { s: mid.s, cpu: mid.cpu, mb: Math.max(...samples.map((x) => x.kb)) / 1024 };
}
const du = (p) => Number(execFileSync('du', ['-sb', p]).toString().split('\t')[0]);
const sd = (p) => [BIN, '--root', p];
const row = (group, what, ours, peer, goal, extra = '') => {
  const ratio = peer ? ours.s / peer.s : null;
  const cpu = peer && peer.cpu > 0 ? `${(ours.cpu / peer.cpu).toFixed(2)}x` : '';
  rows.push({ group, what, ours: `${ours.s.toFixed(2)} s (cpu ${ours.cpu.toFixed(2)} s) / ${ours.mb.toFixed(0)} MB`, peer: peer ? `${peer.name}: ${peer.s.toFixed(2)} s (cpu ${peer.cpu.toFixed(2)} s) / ${peer.mb.toFixed(0)} MB` : '', ratio: ratio === null ? '' : `${ratio.toFixed(2)}x`, cpu, goal, extra });
  console.log(`${group} | ${what} | ours ${ours.s.toFixed(2)}s ${ours.mb.toFixed(0)}MB | ${peer ? `${peer.name} ${peer.s.toFixed(2)}s` : ''} | ${ratio === null ? '' : ratio.toFixed(2) + 'x'} (cpu ${cpu}) | ${goal} ${extra}`);
};
const want = (k) => !only || only.has(k);

ensureTools();
console.log(`bench: work dir ${work}; options ${JSON.stringify(opt)}`);

// 1. Layout: init, verify and migrate on many users (structure only).
if (want('layout')) {
  const old = path.join(work, 'layout-old');
  makeTree(old, { users: opt.layoutUsers, mbPerUser: 0, layout: 'old' });
  const m = path.join(work, 'layout-mig');
  const migrate = timed(process.execPath, [...sd(m), '-q', 'migrate', '--yes', '--no-settings'], { before: () => { fs.rmSync(m, { recursive: true, force: true }); execFileSync('cp', ['-a', old, m]); } });
  row('layout', `migrate ${opt.layoutUsers} users (one filesystem)`, migrate, null, 'well under 5 s');
  const verify = timed(process.execPath, [...sd(m), '-q', 'verify', '--skip-db']);
  const find = timed('sh', ['-c', `find ${m}/data/users -maxdepth 2 -name workspace_info.json | wc -l`]);
  row('layout', `verify (layout checks) ${opt.layoutUsers} users`, verify, { name: 'find -maxdepth 2', ...find }, 'well under 1 s');
  const e = path.join(work, 'layout-init');
  fs.mkdirSync(e);
  row('layout', 'init on an empty directory', timed(process.execPath, [...sd(e), '-q', 'init'], { before: () => fs.rmSync(path.join(e, 'data'), { recursive: true, force: true }) }), null, '');
}

// 2. User data, on every tree shape (scripts/bench-trees.mjs): each archive row against its peer in the same run.
// Wall time on a shared machine is noisy: each row also gives CPU time (user+sys, children included) and its ratio.
if (want('users')) {
  const { SHAPES, makeShape } = await import('./bench-trees.mjs');
  const rowSet = new Set((a.rows ?? 'none,zstd,gzip,restore,nightly').split(','));
  for (const shape of (a.shapes ?? Object.keys(SHAPES).join(',')).split(',')) {
    const root = path.join(work, `users-${shape}`);
    console.log(`bench: building ${shape}: ${SHAPES[shape]}`);
    makeShape(shape, root, q ? 0.1 : 1);
    spawnSync(process.execPath, [...sd(root), '-q', 'init']);
    const tree = du(path.join(root, 'data/users'));
    const files = Number(execFileSync('sh', ['-c', `find ${root}/data/users -type f | wc -l`]).toString());
    const label = `${shape}: ${(tree / 2 ** 20).toFixed(0)} MiB, ${files} files, ${fs.readdirSync(path.join(root, 'data/users')).filter((n) => !n.startsWith('.')).length} users`;
    const bdir = path.join(root, 'data/db/backups');
    fs.mkdirSync(bdir, { recursive: true });
    const clean = () => { for (const n of fs.readdirSync(bdir)) if (n.startsWith('users_')) fs.rmSync(path.join(bdir, n), { recursive: true, force: true }); };
    const peak = [];
    const mine = (args, o = {}) => { const r = timed(process.execPath, [...sd(root), '-q', ...args], o); peak.push(r.mb); return r; };
    const newest = () => path.join(bdir, fs.readdirSync(bdir).filter((x) => x.startsWith('users_')).sort().pop());
    if (rowSet.has('none')) {
      const peer = { name: 'tar -cf', ...timed('tar', ['-cf', path.join(work, 'u.tar'), 'data/users'], { cwd: root }) };
      row('users', `${label}: backup --compression none`, mine(['backup', 'users', '--compression', 'none'], { before: clean }), peer, 'within 1.5x of tar -cf');
    }
    if (rowSet.has('zstd')) {
      const zf = path.join(work, 'u.tar.zst');
      const peer = { name: 'tar -cf - | zstd -3 -T2', ...timed('sh', ['-c', `tar -cf - data/users | zstd -q -f -3 -T2 -o ${zf}`], { cwd: root }) };
      const ours = mine(['backup', 'users', '--compression', 'zstd'], { before: clean });
      row('users', `${label}: backup --compression zstd`, ours, peer, 'within 1.3x', `size ${(du(newest()) / fs.statSync(zf).size).toFixed(3)}x of tar|zstd`);
    }
    if (rowSet.has('gzip') || rowSet.has('restore') || rowSet.has('nightly')) {
      const tgz = path.join(work, 'u.tar.gz');
      const peer = rowSet.has('gzip') ? { name: 'tar -czf', ...timed('tar', ['-czf', tgz, 'data/users'], { cwd: root }) } : null;
      const ours = mine(['backup', 'users'], { before: clean });
      if (peer) row('users', `${label}: backup (gzip, default)`, ours, peer, '>= 5x faster, size <= 1.10x', `size ${(du(newest()) / fs.statSync(tgz).size).toFixed(3)}x of tar.gz`);
    }
    if (rowSet.has('restore')) {
      const setDir = newest();
      const out = path.join(work, 'restore-out');
      const fresh = () => { fs.rmSync(out, { recursive: true, force: true }); fs.mkdirSync(out); };
      const peer = { name: 'tar -xzf (same archives)', ...timed('sh', ['-c', `for f in ${setDir}/*.tar.gz; do tar -xzf "$f" -C ${out}; done`], { before: fresh }) };
      row('users', `${label}: restore all users (--to)`, mine(['restore', 'users', '--from', setDir, '--to', out], { before: () => fs.rmSync(out, { recursive: true, force: true }) }), peer, 'within 1.2x of tar -xzf');
      fs.rmSync(out, { recursive: true, force: true });
    }
    if (rowSet.has('nightly')) {
      // Nightly on an unchanged tree (every archive re-hashed before it is linked), against a borg repository that already holds it.
      const borgRepo = path.join(work, `borg-${shape}`);
      const benv = { BORG_PASSPHRASE: '', BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes', BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes' };
      execFileSync('borg', ['init', '-e', 'none', borgRepo], { env: { ...process.env, ...benv } });
      execFileSync('borg', ['create', `${borgRepo}::first`, 'data/users'], { cwd: root, env: { ...process.env, ...benv } });
      const borg = { name: 'borg create', ...timed('borg', ['create', `${borgRepo}::{now:%Y%m%d%H%M%S%f}`, 'data/users'], { cwd: root, env: benv }) };
      const before = new Set(fs.readdirSync(bdir));
      const nightly = mine(['backup', 'users']);
      let newBytes = 0;
      for (const n of fs.readdirSync(bdir).filter((x) => !before.has(x) && x.startsWith('users_'))) {
        for (const f of fs.readdirSync(path.join(bdir, n))) { const st = fs.statSync(path.join(bdir, n, f)); if (st.nlink === 1) newBytes += st.size; }
      }
      row('users', `${label}: nightly, unchanged tree`, nightly, borg, 'under 0.5x of borg', `new bytes ${(100 * newBytes / tree).toFixed(3)}% of tree (over ${opt.runs} runs)`);
      fs.rmSync(borgRepo, { recursive: true, force: true });
    }
    if (peak.length) rows.push({ group: 'users', what: `${label}: peak memory of the rows above`, ours: `${Math.max(...peak).toFixed(0)} MB`, peer: '', ratio: '', cpu: '', goal: '< 200 MB', extra: '' });
    fs.rmSync(root, { recursive: true, force: true });
  }
}

// 4. SQLite: a large database, against cp and sqlite3 .backup.
if (want('sqlite')) {
  const root = path.join(work, 'sqlite');
  spawnSync(process.execPath, [...sd(root), '-q', 'init'], { env: process.env });
  fs.mkdirSync(root, { recursive: true });
  spawnSync(process.execPath, [...sd(root), '-q', 'init']);
  const file = path.join(root, 'data/db/sqlite/scitex_cloud_dev.db');
  const Database = (await import('better-sqlite3')).default;
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE blob(id INTEGER PRIMARY KEY, body BLOB)');
  const ins = db.prepare('INSERT INTO blob(body) VALUES (?)');
  const body = Buffer.alloc(4000, 'x');
  db.transaction(() => { for (let i = 0; i < (opt.sqliteMb * 2 ** 20) / 4096; i++) ins.run(body); })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };
  const cp = { name: 'cp', ...timed('cp', [file, path.join(work, 'copy.db')]) };
  const dot = { name: 'sqlite3 .backup', ...timed('sqlite3', [file, `.backup ${path.join(work, 'dot.db')}`], { before: () => fs.rmSync(path.join(work, 'dot.db'), { force: true }) }) };
  const ours = timed(process.execPath, [...sd(root), '-q', 'backup', 'db'], { env });
  row('sqlite', `backup db, ${(fs.statSync(file).size / 2 ** 20).toFixed(0)} MiB (quick_check and checksum included)`, ours, dot, 'within 1.5x of sqlite3 .backup; flat memory', `cp ${cp.s.toFixed(2)} s`);
}

// 5. PostgreSQL: against bare pg_dump -Fc and pg_restore into an empty database.
if (want('pg')) {
  const { startCluster, destroyCluster } = await import(path.join(repo, 'dist/devtools/pgcluster.js'));
  const pg = await startCluster();
  try {
    await pg.createOwnedDatabase('scitex_dev', 'benchpw', 'scitex_cloud_dev');
    const penv = { PGPASSWORD: 'benchpw', PGHOST: pg.host, PGPORT: String(pg.port), PGUSER: 'scitex_dev' };
    execFileSync(path.join(pg.bin, 'pgbench'), ['-i', '-q', '-s', String(opt.pgScale), 'scitex_cloud_dev'], { env: { ...process.env, ...penv }, stdio: 'ignore' });
    const root = path.join(work, 'pg');
    fs.mkdirSync(root);
    spawnSync(process.execPath, [...sd(root), '-q', 'init']);
    const env = { SCITEX_CLOUD_DB_HOST_DEV: pg.host, SCITEX_CLOUD_DB_PORT_DEV: String(pg.port), SCITEX_CLOUD_DB_PASSWORD_DEV: 'benchpw' };
    const dump = path.join(work, 'bare.dump');
    const bare = { name: 'pg_dump -Fc', ...timed('pg_dump', ['-Fc', '-f', dump, 'scitex_cloud_dev'], { env: penv }) };
    const ours = timed(process.execPath, [...sd(root), '-q', 'backup', 'db'], { env });
    row('postgres', `backup db (pgbench scale ${opt.pgScale}, ${(fs.statSync(dump).size / 2 ** 20).toFixed(0)} MiB dump)`, ours, bare, 'within 1.10x of pg_dump -Fc');
    let k = 0;
    const restoreBare = { name: 'createdb + pg_restore', ...timed('sh', ['-c', `createdb bench_r$N && pg_restore --no-owner -d bench_r$N ${dump}`], { env: penv, before: () => { process.env.N = String(++k); } }) };
    const file = fs.readdirSync(path.join(root, 'data/db/backups')).find((f) => f.endsWith('.dump'));
    const ro = timed(process.execPath, [...sd(root), '-q', 'restore', 'db', '--yes', '--from', path.join(root, 'data/db/backups', file)], { env });
    row('postgres', 'restore db end to end (verify, new db, swap)', ro, restoreBare, 'within 1.3x of pg_restore');
  } finally {
    destroyCluster(pg);
  }
}

// 6. Checksums: the library's streaming SHA-256 against sha256sum over the same files.
if (want('checksum')) {
  const files = [];
  const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); if (e.isDirectory()) walk(p); else if (e.isFile()) files.push(p); } };
  walk(work);
  const big = files.filter((f) => fs.statSync(f).size > 1 << 20).slice(0, 50);
  fs.writeFileSync(path.join(work, 'files.txt'), big.join('\n'));
  const peer = { name: 'sha256sum', ...timed('sh', ['-c', `xargs -d '\\n' sha256sum < ${path.join(work, 'files.txt')} > /dev/null`]) };
  const script = `import { sha256File } from '${path.join(repo, 'dist/index.js')}'; import fs from 'node:fs'; for (const f of fs.readFileSync('${path.join(work, 'files.txt')}', 'utf8').split('\\n')) await sha256File(f);`;
  fs.writeFileSync(path.join(work, 'sha.mjs'), script);
  const ours = timed(process.execPath, [path.join(work, 'sha.mjs')]);
  row('verify', `checksums of ${big.length} backup/data files`, ours, peer, 'near sha256sum');
}

const table = ['| area | what | scitex-data: time (cpu) / peak RSS | peer | ratio | cpu ratio | goal | notes |', '|---|---|---|---|---|---|---|---|', ...rows.map((r) => `| ${r.group} | ${r.what} | ${r.ours} | ${r.peer} | ${r.ratio} | ${r.cpu ?? ''} | ${r.goal} | ${r.extra} |`)].join('\n');
console.log('\n' + table);
const stamp = `Measured ${new Date().toISOString().slice(0, 10)} with \`node scripts/bench.mjs ${process.argv.slice(2).join(' ')}\` (median of ${opt.runs}), ${os.cpus().length} cores, Node ${process.version}.`;
if (a['write-readme']) {
  const readme = path.join(repo, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const block = a['readme-block'] ?? 'bench';
  fs.writeFileSync(readme, text.replace(new RegExp(`<!-- ${block}:begin -->[\\s\\S]*<!-- ${block}:end -->`), `<!-- ${block}:begin -->\n${stamp}\n\n${table}\n<!-- ${block}:end -->`));
}
fs.rmSync(work, { recursive: true, force: true });

// 7. Off-site: its own script and table (a throwaway radosgw on this machine; medians of alternating runs).
if (want('offsite')) {
  console.log('\noff-site copies and encryption (scripts/bench-offsite.mjs):');
  spawnSync(process.execPath, [path.join(here, 'bench-offsite.mjs'), q ? '64' : '384', String(Math.max(3, opt.runs))], { stdio: 'inherit' });
}
