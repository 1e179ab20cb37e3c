import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cli, tempDir } from '../helpers/cli.js';
import { appTreeWithAlice } from '../helpers/apptree.js';

let root = '';
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };

function fresh(): void {
  root = appTreeWithAlice();
}

/** A hook that saves its stdin and SCITEX_DATA_* variables under `name` in the root. */
const saving = (name: string) => `cat > '${root}/${name}.json'; env | grep '^SCITEX_DATA_' | sort > '${root}/${name}.env'`;
const saved = (name: string) => ({
  doc: JSON.parse(fs.readFileSync(path.join(root, `${name}.json`), 'utf8')) as Record<string, unknown>,
  env: Object.fromEntries(fs.readFileSync(path.join(root, `${name}.env`), 'utf8').trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])),
});

describe('--on-success / --on-failure hooks', () => {
  it('a successful backup runs --on-success (not --on-failure) with the JSON result on stdin and the variables', () => {
    fresh();
    const r = cli(['--root', root, '--quiet', '--on-success', saving('ok'), '--on-failure', saving('bad'), 'backup'], { env });
    expect(r).toEqual({ code: 0, stdout: '', stderr: '' });
    const { doc, env: vars } = saved('ok');
    expect(doc).toMatchObject({ ok: true, command: 'backup', exitCode: 0 });
    expect(String(doc.set)).toMatch(/users_\d{8}_\d{6}$/);
    expect(vars).toEqual({ SCITEX_DATA_COMMAND: 'backup', SCITEX_DATA_EXIT_CODE: '0', SCITEX_DATA_MESSAGE: 'backup succeeded', SCITEX_DATA_RESULT: 'ok' });
    expect(fs.existsSync(path.join(root, 'bad.json'))).toBe(false);
  });

  it('a failing verify runs --on-failure with the failure, and keeps its exit code', () => {
    fresh();
    const r = cli(['--root', root, '--quiet', '--on-failure', saving('bad'), 'verify', '--backups'], { env });
    expect(r.code).toBe(3);
    const { doc, env: vars } = saved('bad');
    expect(doc).toMatchObject({ ok: false, command: 'verify', exitCode: 3, failed: 2 });
    expect(vars.SCITEX_DATA_RESULT).toBe('failed');
    expect(vars.SCITEX_DATA_EXIT_CODE).toBe('3');
  });

  it('an error runs --on-failure with the error message', () => {
    root = tempDir();
    const r = cli(['--root', root, '--on-failure', saving('bad'), 'backup'], { env });
    expect(r.code).toBe(2);
    const { doc, env: vars } = saved('bad');
    expect((doc.error as { message: string }).message).toMatch(/data does not exist/);
    expect(vars.SCITEX_DATA_MESSAGE).toMatch(/data does not exist/);
  });

  it('a failing hook is a warning (also under --quiet) and never changes the exit code; --json lists it', () => {
    fresh();
    const r = cli(['--root', root, '--quiet', '--on-success', 'echo ping refused >&2; exit 7', 'backup', 'db'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^warning: the --on-success hook exited 7 \(the run's own exit code is unchanged\): ping refused$/m);
    const j = cli(['--root', root, '--json', '--on-success', 'exit 7', 'backup', 'db'], { env });
    expect(j.code).toBe(0);
    const doc = JSON.parse(j.stdout) as { hooks: { event: string; exitCode: number }[]; warnings: string[] };
    expect(doc.hooks).toMatchObject([{ event: 'success', exitCode: 7 }]);
    expect(doc.warnings.some((w) => w.includes('--on-success hook exited 7'))).toBe(true);
  });

  it('a hook that hangs is killed at --hook-timeout, with a warning', () => {
    fresh();
    const marker = path.join(root, 'late');
    const r = cli(['--root', root, '--hook-timeout', '1', '--on-success', `sleep 30; touch '${marker}'`, 'backup', 'db'], { env });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/--on-success hook did not finish within 1 s and was killed/);
    expect(fs.existsSync(marker)).toBe(false);
  }, 60_000);

  it('the hook does not inherit the database password', () => {
    fresh();
    const r = cli(['--root', root, '--on-success', `env > '${root}/hook-env'`, 'backup', 'db'], { env: { ...env, SCITEX_CLOUD_DB_PASSWORD_DEV: 's3cret-pw', PGPASSWORD: 's3cret-pw' } });
    expect(r.code).toBe(0);
    const seen = fs.readFileSync(path.join(root, 'hook-env'), 'utf8');
    expect(seen).toMatch(/^SCITEX_DATA_RESULT=ok$/m);
    expect(seen).not.toContain('s3cret-pw');
  });

  it("a hook's output never reaches stdout (the --json document stays alone)", () => {
    fresh();
    const j = cli(['--root', root, '--json', '--on-success', 'echo noise; echo more >&2', 'backup', 'db'], { env });
    expect(() => JSON.parse(j.stdout)).not.toThrow();
    expect(j.stderr).toBe('');
  });
});

describe('run state and metrics', () => {
  it('records the last run per command (0600, atomic) and the metrics carry it, the newest ages, and warn apart from pass', () => {
    fresh();
    expect(cli(['--root', root, 'backup'], { env }).code).toBe(0);
    const state = path.join(root, 'data/db/backups/.scitex-data-state.json');
    expect(fs.statSync(state).mode & 0o777).toBe(0o600);
    const s = JSON.parse(fs.readFileSync(state, 'utf8')) as { lastRun: Record<string, { result: string; exitCode: number; durationMs: number }> };
    expect(s.lastRun.backup).toMatchObject({ result: 'ok', exitCode: 0 });
    expect(s.lastRun.backup!.durationMs).toBeGreaterThan(0);
    // A dry run is not a run.
    expect(cli(['--root', root, 'backup', '--dry-run'], { env }).code).toBe(0);
    expect((JSON.parse(fs.readFileSync(state, 'utf8')) as typeof s).lastRun.backup).toEqual(s.lastRun.backup);
    const prom = path.join(root, 'm.prom');
    const v = cli(['--root', root, '--json', 'verify', '--metrics', prom], { env });
    const doc = JSON.parse(v.stdout) as { checks: { name: string; status: string }[] };
    const text = fs.readFileSync(prom, 'utf8');
    for (const c of doc.checks) {
      for (const st of ['pass', 'warn', 'fail']) {
        expect(text).toContain(`scitex_data_check_status{check="${c.name}",status="${st}"} ${c.status === st ? 1 : 0}\n`);
      }
    }
    expect(text).toMatch(/^scitex_data_verify_warned_checks \d+$/m);
    expect(text).toMatch(/^scitex_data_last_run_success\{command="backup"\} 1$/m);
    expect(text).toMatch(/^scitex_data_last_run_exit_code\{command="backup"\} 0$/m);
    expect(text).toMatch(/^scitex_data_last_run_duration_seconds\{command="backup"\} [\d.]+$/m);
    expect(text).toMatch(/^scitex_data_backup_newest_age_seconds\{kind="database"\} \d+$/m);
    expect(text).toMatch(/^scitex_data_backup_newest_age_seconds\{kind="users"\} \d+$/m);
    // A failed run is recorded as failed.
    fs.chmodSync(path.join(root, 'data/db/backups'), 0o755);
    expect(cli(['--root', root, 'verify'], { env }).code).toBe(3);
    expect((JSON.parse(fs.readFileSync(state, 'utf8')) as typeof s).lastRun.verify).toMatchObject({ result: 'failed', exitCode: 3 });
  });

  it('verify on a tree with no backup directory does not create one for its record', () => {
    fresh();
    fs.rmSync(path.join(root, 'data/db/backups'), { recursive: true });
    cli(['--root', root, 'verify'], { env });
    expect(fs.existsSync(path.join(root, 'data/db/backups'))).toBe(false);
  });
});
