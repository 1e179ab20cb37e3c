import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, cleanEnv, cliAsync, tempDir } from '../helpers/cli.js';

let root = '';
const backups = () => path.join(root, 'data/db/backups');
const env = { SCITEX_CLOUD_USE_SQLITE_DEV: '1' };

/** A tree big enough that `backup users --level 9` is still writing when the signal comes: incompressible files. */
beforeAll(() => {
  root = tempDir('scitex-signal-');
  fs.mkdirSync(backups(), { recursive: true });
  for (const u of ['alice', 'bob', 'carol', 'dave']) {
    const d = path.join(root, 'data/users', u, 'proj');
    fs.mkdirSync(d, { recursive: true });
    for (let i = 0; i < 6; i++) fs.writeFileSync(path.join(d, `blob${i}.bin`), crypto.randomBytes(8 << 20));
  }
}, 120_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Resolves once the backup directory holds a partial (unpublished) entry: the run is mid-way. */
async function partialAppears(): Promise<string> {
  for (;;) {
    const p = fs.readdirSync(backups()).find((n) => n.startsWith('.users_') && n.includes('.partial-'));
    if (p) return p;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** What the interrupted run must leave: no partial entry, no published set. */
function nothingLeft(): void {
  const names = fs.readdirSync(backups());
  expect(names.filter((n) => n.includes('.partial-'))).toEqual([]);
  expect(names.filter((n) => n.startsWith('users_'))).toEqual([]);
}

describe('Ctrl-C stops cleanly', () => {
  it('SIGINT mid-backup: exit 130, one line saying what stopped and that nothing was published, partial files removed', async () => {
    const { child, done } = cliAsync(['--root', root, 'backup', 'users', '--level', '9'], { env });
    await partialAppears();
    child.kill('SIGINT');
    const r = await done;
    expect(r.code).toBe(130);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^interrupted: backup interrupted by SIGINT: no unfinished backup was published; \d+ partial file\(s\) removed\.$/);
    expect(r.stdout).toBe('');
    nothingLeft();
  }, 120_000);

  it('Ctrl-C on a terminal signals the whole process group (zstd too): still the one line, exit 130', async () => {
    // detached: the CLI leads its own process group, as a shell's foreground job does; -pid signals all of it.
    const child = spawn(process.execPath, [BIN, '--root', root, 'backup', 'users', '--compression', 'zstd', '--level', '19'], { env: cleanEnv(env), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const code = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    await partialAppears();
    process.kill(-child.pid!, 'SIGINT');
    expect(await code).toBe(130);
    expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(/^interrupted: backup interrupted by SIGINT: no unfinished backup was published/)]);
    expect(stdout).toBe('');
    nothingLeft();
  }, 120_000);

  it('SIGTERM with --json: exit 143 and one JSON document saying so; --on-failure and the run record see it', async () => {
    const hookOut = path.join(root, 'hook.json');
    const { child, done } = cliAsync(['--root', root, '--json', '--on-failure', `cat > '${hookOut}'`, 'backup', 'users', '--level', '9'], { env });
    await partialAppears();
    child.kill('SIGTERM');
    const r = await done;
    expect(r.code).toBe(143);
    const doc = JSON.parse(r.stdout) as { ok: boolean; exitCode: number; error: { message: string } };
    expect(doc).toMatchObject({ ok: false, exitCode: 143 });
    expect(doc.error.message).toMatch(/interrupted by SIGTERM/);
    expect(JSON.parse(fs.readFileSync(hookOut, 'utf8'))).toMatchObject({ ok: false, command: 'backup', exitCode: 143 });
    const state = JSON.parse(fs.readFileSync(path.join(backups(), '.scitex-data-state.json'), 'utf8')) as { lastRun: Record<string, unknown> };
    expect(state.lastRun.backup).toMatchObject({ result: 'failed', exitCode: 143 });
    nothingLeft();
  }, 120_000);

  it('on a terminal: the progress bar is cleared and line wrapping and the cursor are given back', async () => {
    // `script` gives the run a terminal (so a bar is drawn); `exec` makes the CLI the shell's own process.
    const cmd = `exec ${process.execPath} ${BIN} --root ${root} backup users --level 9`;
    const script = spawn('script', ['-qfec', cmd, '/dev/null'], { env: cleanEnv({ ...env, TERM: 'xterm' }), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    script.stdout.on('data', (d: Buffer) => (out += d.toString('latin1')));
    const exited = new Promise<number | null>((resolve) => script.on('close', (code) => resolve(code)));
    await partialAppears();
    // Wait for the bar itself (wrapping off), then find the CLI: the child of `script`.
    while (!out.includes('\x1b[?7l')) await new Promise((r) => setTimeout(r, 10));
    const kids = fs.readdirSync(`/proc/${script.pid}/task`).flatMap((t) => fs.readFileSync(`/proc/${script.pid}/task/${t}/children`, 'utf8').split(/\s+/).filter(Boolean));
    expect(kids).toHaveLength(1);
    process.kill(Number(kids[0]), 'SIGINT');
    expect(await exited).toBe(130);
    const after = out.slice(out.lastIndexOf('\x1b[?7l'));
    expect(after).toContain('\x1b[?7h');
    expect(after).toContain('\x1b[?25h');
    // The one line starts on a cleared line, not after the bar's text.
    expect(after).toMatch(/\x1b\[2K[^\n]*interrupted: backup interrupted by SIGINT/);
    nothingLeft();
  }, 120_000);
});
