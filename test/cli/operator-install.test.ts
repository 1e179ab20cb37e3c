import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { makeUser } from '../helpers/tree.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');

/** The README's crontab block: variable lines and jobs (schedule + command). */
function readmeCrontab(): { vars: Record<string, string>; jobs: string[] } {
  const block = /<!-- cron:begin[^\n]*-->\n```cron\n([\s\S]*?)```\n<!-- cron:end -->/.exec(readme);
  if (!block) throw new Error('README.md lacks the cron block');
  const vars: Record<string, string> = {};
  const jobs: string[] = [];
  for (const line of block[1]!.split('\n').filter((l) => l.trim())) {
    const v = /^([A-Z_]+)=(.*)$/.exec(line);
    if (v) vars[v[1]!] = v[2]!;
    else jobs.push(/^(?:\S+\s+){5}(.*)$/.exec(line)![1]!);
  }
  return { vars, jobs };
}

let T = '';
let prefix = '';
let how = '';
const npm = (args: string[], cwd = repo) => spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } });

beforeAll(() => {
  T = tempDir('scitex-install-');
  prefix = path.join(T, 'prefix');
  const pack = npm(['pack', '--pack-destination', T, '--silent']);
  expect(pack.status, pack.stderr).toBe(0);
  const tgz = path.join(T, pack.stdout.trim().split('\n').pop()!);
  // A real global install from the tarball; offline (this machine has no registry), so its dependencies
  // must be in npm's cache. Where they are not, the same tarball's contents are installed globally as a
  // folder whose node_modules are the project's (what `npm install -g .` from a clone does).
  const r = npm(['install', '-g', '--offline', '--prefix', prefix, tgz]);
  if (r.status === 0) how = 'tarball';
  else {
    const pkg = path.join(T, 'pkg');
    fs.mkdirSync(pkg);
    expect(spawnSync('tar', ['-xzf', tgz, '-C', pkg]).status).toBe(0);
    fs.symlinkSync(path.join(repo, 'node_modules'), path.join(pkg, 'package/node_modules'));
    const f = npm(['install', '-g', '--offline', '--prefix', prefix, path.join(pkg, 'package')]);
    expect(f.status, f.stderr).toBe(0);
    how = 'unpacked tarball';
  }
  // `npm prefix -g` is the prefix of the node that runs npm, so the real global bin (/usr/local/bin in the
  // README) holds that node too: the one better-sqlite3 was compiled for, whatever node is in /usr/bin.
  if (!fs.existsSync(path.join(prefix, 'bin/node'))) fs.symlinkSync(process.execPath, path.join(prefix, 'bin/node'));
}, 300_000);
afterAll(() => fs.rmSync(T, { recursive: true, force: true }));

describe('install and cron (README)', () => {
  it(`npm install -g puts scitex-data in <prefix>/bin, runnable from the packed files`, () => {
    const bin = path.join(prefix, 'bin/scitex-data');
    expect(fs.existsSync(bin), how).toBe(true);
    // It runs the installed copy, not this checkout.
    expect(fs.realpathSync(bin).startsWith(repo + path.sep)).toBe(false);
    const r = spawnSync(bin, ['--version'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("the README's crontab lines exit 0 under cron's environment, silently, and the morning check sees the night's backup", () => {
    const root = path.join(T, 'srv');
    const home = path.join(T, 'home');
    const metrics = path.join(T, 'node_exporter');
    for (const d of [root, home, metrics]) fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(root, '.env'), 'SCITEX_CLOUD_USE_SQLITE_DEV=1\n');
    expect(spawnSync(path.join(prefix, 'bin/scitex-data'), ['--root', root, 'init', '-q']).status).toBe(0);
    const db = new Database(path.join(root, 'data/db/sqlite/scitex_cloud_dev.db'));
    db.exec("CREATE TABLE auth_user(id INTEGER PRIMARY KEY, username TEXT); INSERT INTO auth_user(username) VALUES ('alice')");
    db.close();
    makeUser(path.join(root, 'data/users'), 'alice');

    const { vars, jobs } = readmeCrontab();
    expect(jobs.length).toBe(2);
    // cron's own environment (env -i), then the crontab's variable lines, as cron applies them. Only the
    // machine-specific paths are moved into the temp dir: npm's global bin (/usr/local/bin in the README),
    // the project and the node_exporter directory.
    const env: Record<string, string> = { HOME: home, LOGNAME: 'root', SHELL: '/bin/sh', PATH: '/usr/bin:/bin' };
    for (const [k, v] of Object.entries(vars)) env[k] = v.replace('/usr/local/bin', path.join(prefix, 'bin'));
    const place = (cmd: string) => cmd.replaceAll('/srv/scitex-cloud', root).replaceAll('/var/lib/node_exporter', metrics);
    for (const job of jobs) {
      const r = spawnSync('env', ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), env.SHELL!, '-c', place(job)], { cwd: home, encoding: 'utf8' });
      expect({ job, code: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ job, code: 0, stdout: '', stderr: '' });
    }
    const prom = fs.readFileSync(path.join(metrics, 'scitex.prom'), 'utf8');
    expect(prom).toMatch(/^scitex_data_last_run_success\{command="backup"\} 1$/m);
    expect(prom).toMatch(/^scitex_data_backup_newest_age_seconds\{kind="users"\} \d+$/m);
    expect(prom).toMatch(/^scitex_data_backup_newest_age_seconds\{kind="database"\} \d+$/m);
  });
});
