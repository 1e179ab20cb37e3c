/**
 * Developer tools (tests and benchmarks only): a throwaway Ceph cluster serving S3 on 127.0.0.1 — one monitor, one
 * OSD with an in-memory store, and radosgw — from Debian's packages (radosgw, ceph-mon, ceph-osd). Not public API.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A running throwaway S3 server and the credentials of its one user. */
export interface TestRadosgw {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  /** Environment for a scitex-data child: the user's credentials through the SDK's standard variables. */
  env(): Record<string, string>;
  /** radosgw-admin with this cluster's configuration (e.g. to set a quota); returns stdout. */
  admin(args: string[]): string;
  /** Stops radosgw only (the server is "down"); start it again with startGateway(). */
  stopGateway(): Promise<void>;
  startGateway(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

function must(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.error?.message ?? ''} ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Polls `ready` until it returns true or `ms` pass (startup only, never used to order test steps). */
async function waitFor(what: string, ms: number, ready: () => boolean | Promise<boolean>, log: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ready())) {
    if (Date.now() > end) throw new Error(`${what} did not come up within ${ms / 1000} s; log: ${log}`);
    await pause(200);
  }
}

/** Whether the Debian packages are installed (`.ci/run` installs them). */
export function radosgwAvailable(): boolean {
  return ['radosgw', 'ceph-mon', 'ceph-osd', 'monmaptool', 'radosgw-admin'].every((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0);
}

/** Starts a fresh cluster (a few seconds); call stop() in afterAll. `memBytes` sizes the in-memory OSD (default 1 GiB). */
export async function startRadosgw(opts: { memBytes?: number } = {}): Promise<TestRadosgw> {
  if (!radosgwAvailable()) throw new Error('Ceph is not installed: apt-get install radosgw ceph-mon ceph-osd');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-rgw-'));
  for (const d of ['run', 'log', 'mon.a', 'osd.0', 'rgw']) fs.mkdirSync(path.join(dir, d));
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const fsid = crypto.randomUUID();
  const conf = path.join(dir, 'ceph.conf');
  fs.writeFileSync(
    conf,
    `[global]
fsid = ${fsid}
mon_host = v1:127.0.0.1:${monPort}
mon_initial_members = a
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = ${dir}/run
admin_socket = ${dir}/run/$name.asok
log_file = ${dir}/log/$name.log
keyring = ${dir}/keyring
mon_data = ${dir}/mon.$id
osd_data = ${dir}/osd.$id
osd_objectstore = memstore
memstore_device_bytes = ${opts.memBytes ?? 1024 ** 3}
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_crush_chooseleaf_type = 0
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
mon_max_pg_per_osd = 1000
mon_data_avail_crit = 1
ms_bind_msgr2 = false
ms_bind_ipv6 = false
public_addr = 127.0.0.1
osd_crush_update_on_start = false
osd_class_update_on_start = false
[client.rgw]
rgw_frontends = beast endpoint=127.0.0.1:${rgwPort}
rgw_data = ${dir}/rgw
# Deleted objects free the in-memory store within seconds (the default waits two hours).
rgw_gc_obj_min_wait = 1
rgw_gc_processor_period = 5
`,
  );
  const c = ['-c', conf];
  const procs: ChildProcess[] = [];
  // Foreground daemons (-f) stay our children, so stop() can end exactly them.
  const daemon = (cmd: string, args: string[]): ChildProcess => {
    const p = spawn(cmd, [...c, '-f', ...args], { stdio: 'ignore' });
    procs.push(p);
    return p;
  };
  const kill = async (p: ChildProcess) => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
  };
  const stopAll = async () => {
    for (const p of procs.reverse()) await kill(p);
  };
  try {
    must('ceph-authtool', ['--create-keyring', path.join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    must('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v1:127.0.0.1:${monPort}]`, path.join(dir, 'monmap')]);
    must('ceph-mon', [...c, '--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap')]);
    daemon('ceph-mon', ['-i', 'a']);
    const ceph = (args: string[]) => spawnSync('ceph', [...c, '--connect-timeout', '5', ...args], { encoding: 'utf8', timeout: 30_000 });
    await waitFor('ceph-mon', 60_000, () => ceph(['mon', 'stat']).status === 0, `${dir}/log/mon.a.log`);
    // Under load a ceph client can send its first command before it knows the cluster's fsid and be refused
    // (EPERM "problem getting command descriptions"): such a command is simply sent again.
    const cephMust = async (args: string[]): Promise<string> => {
      for (let attempt = 1; ; attempt++) {
        const r = ceph(args);
        if (r.status === 0) return r.stdout;
        if (attempt === 10) throw new Error(`ceph ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
        await pause(300);
      }
    };
    const uuid = crypto.randomUUID();
    const id = (await cephMust(['osd', 'new', uuid])).trim();
    must('ceph-osd', [...c, '-i', id, '--mkfs', '--osd-uuid', uuid]);
    // Placed in the CRUSH map here, not by the OSD at start: under load its own request could go out before it
    // knew the cluster's fsid, and be refused ("wrong fsid").
    await cephMust(['osd', 'crush', 'add', `osd.${id}`, '1', 'root=default', 'host=localhost']);
    for (let attempt = 1; ; attempt++) {
      const osd = daemon('ceph-osd', ['-i', id]);
      const up = () => /"num_up_osds":\s*1/.test(ceph(['osd', 'stat', '-f', 'json']).stdout);
      await waitFor('ceph-osd', 60_000, () => up() || osd.exitCode !== null, `${dir}/log/osd.${id}.log`);
      if (up() || attempt === 3) break;
    }
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    let gw: ChildProcess | undefined;
    const startGateway = async () => {
      gw = daemon('radosgw', ['-n', 'client.rgw']);
      await waitFor('radosgw', 120_000, () => fetch(endpoint).then((r) => r.ok, () => false), `${dir}/log/client.rgw.log`);
    };
    await startGateway();
    const accessKeyId = 'SCITEXTEST' + crypto.randomBytes(5).toString('hex').toUpperCase();
    const secretAccessKey = crypto.randomBytes(20).toString('hex');
    const admin = (args: string[]) => must('radosgw-admin', [...c, ...args]);
    for (let attempt = 1; ; attempt++) {
      const r = spawnSync('radosgw-admin', [...c, 'user', 'create', '--uid=tester', '--display-name=tester', `--access-key=${accessKeyId}`, `--secret-key=${secretAccessKey}`], { encoding: 'utf8', timeout: 120_000 });
      if (r.status === 0 || /exists/i.test(r.stderr)) break;
      if (attempt === 10) throw new Error(`radosgw-admin user create failed: ${r.stderr || r.stdout}`);
      await pause(300);
    }
    return {
      endpoint,
      accessKeyId,
      secretAccessKey,
      dir,
      env: () => ({ AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey, AWS_REGION: 'us-east-1' }),
      admin,
      async stopGateway() {
        if (gw) await kill(gw);
      },
      startGateway,
      async stop() {
        await stopAll();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopAll();
    // The logs' tails go into the error: the directory itself is removed, a failed start leaves nothing behind.
    const tails = ['mon.a', 'osd.0', 'client.rgw'].map((n) => {
      try {
        return `--- ${n}.log\n` + fs.readFileSync(path.join(dir, 'log', `${n}.log`), 'utf8').split('\n').slice(-8).join('\n');
      } catch {
        return '';
      }
    });
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(err as Error).message}\n${tails.filter(Boolean).join('\n')}`);
  }
}
