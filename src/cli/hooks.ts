import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** What a hook gets to know about the run that just ended. */
export interface RunOutcome {
  command: string;
  exitCode: number;
  message: string;
  /** The run's JSON document (the one --json prints), fed to the hook's stdin. */
  document: Record<string, unknown>;
}

/** What became of a hook: printed as a warning when it did not succeed, listed in --json. */
export interface HookReport {
  event: 'success' | 'failure';
  command: string;
  exitCode: number | null;
  timedOut: boolean;
  /** The last lines the hook printed (stdout and stderr together), kept for the warning. */
  output: string;
}

/** The default time a hook may take, in seconds. */
export const DEFAULT_HOOK_TIMEOUT = 60;

const TIMEOUT_BIN = ['/usr/bin/timeout', '/bin/timeout'].find((p) => fs.existsSync(p));

/**
 * Runs `--on-success`/`--on-failure` through /bin/sh -c with the run's JSON on stdin and SCITEX_DATA_*
 * variables. Synchronous on purpose: it also runs from the signal handler, where nothing else may move.
 * Input and output are unlinked temp files (never our stdout, which may carry the JSON document; never a pipe a
 * backgrounded grandchild could hold open). The time limit kills the hook's whole process group
 * (coreutils `timeout`), so a hung `curl` cannot keep cron waiting.
 */
export function runHook(shellCommand: string, event: 'success' | 'failure', outcome: RunOutcome, timeoutSeconds = DEFAULT_HOOK_TIMEOUT): HookReport {
  // The hook is the operator's command, but it has no use for the database password (a ping, a mail).
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^SCITEX_CLOUD_DB_PASSWORD|^PGPASSWORD$/.test(k)));
  const env = {
    ...inherited,
    SCITEX_DATA_RESULT: outcome.exitCode === 0 ? 'ok' : 'failed',
    SCITEX_DATA_EXIT_CODE: String(outcome.exitCode),
    SCITEX_DATA_COMMAND: outcome.command,
    SCITEX_DATA_MESSAGE: outcome.message,
  };
  // stdin is a file too: a hook that never reads it (`curl <url>`) must not fail us with EPIPE.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-data-hook-'));
  const inFile = path.join(dir, 'input');
  fs.writeFileSync(inFile, JSON.stringify(outcome.document) + '\n', { mode: 0o600 });
  const inFd = fs.openSync(inFile, 'r');
  const fd = fs.openSync(path.join(dir, 'output'), 'w+', 0o600);
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    const [file, args] = TIMEOUT_BIN
      ? [TIMEOUT_BIN, ['--kill-after=5', `${timeoutSeconds}s`, '/bin/sh', '-c', shellCommand]]
      : ['/bin/sh', ['-c', shellCommand]];
    const r = spawnSync(file, args, {
      stdio: [inFd, fd, fd],
      env,
      // Without coreutils the shell alone is killed at the limit; with it this is only a backstop.
      timeout: (timeoutSeconds + 10) * 1000,
      killSignal: 'SIGKILL',
    });
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, 4096));
    fs.readSync(fd, buf, 0, buf.length, Math.max(0, size - buf.length));
    const output = buf.toString('utf8').trim().split('\n').slice(-5).join(' | ');
    const timedOut = (TIMEOUT_BIN !== undefined && (r.status === 124 || r.status === 137)) || r.signal === 'SIGKILL';
    const exitCode = r.error ? 127 : r.status;
    return { event, command: shellCommand, exitCode, timedOut, output: r.error ? r.error.message : output };
  } finally {
    fs.closeSync(fd);
    fs.closeSync(inFd);
  }
}

/** A one-line warning for a hook that failed, or null when it succeeded. */
export function hookWarning(h: HookReport, timeoutSeconds: number): string | null {
  if (h.exitCode === 0 && !h.timedOut) return null;
  const how = h.timedOut ? `did not finish within ${timeoutSeconds} s and was killed` : `exited ${h.exitCode ?? 'on a signal'}`;
  return `the --on-${h.event} hook ${how} (the run's own exit code is unchanged)${h.output ? `: ${h.output}` : ''}`;
}
