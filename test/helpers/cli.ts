import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI, as installed users run it. */
export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/scitex-data');

/** Result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment for CLI runs: the caller's, minus anything scitex-cloud related. */
export function cleanEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('SCITEX_')) env[k] = v;
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** Runs the built CLI synchronously with stdin closed (never a terminal). */
export function cli(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: cleanEnv(opts.env), encoding: 'utf8', input: '' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs the built CLI asynchronously (for concurrency and kill tests). */
export function cliAsync(args: string[], opts: { cwd?: string; env?: Record<string, string | undefined> } = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: opts.cwd, env: cleanEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code: code ?? (signal ? -1 : 0), stdout, stderr })));
  return { child, done };
}

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'scitex-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}
