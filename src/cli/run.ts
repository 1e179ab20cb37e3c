// The one wrapper every command's action goes through: shared error handling, --json output, exit codes,
// the run record, the --on-success/--on-failure hooks, and what a signal needs to know to stop cleanly.
import type { Command } from 'commander';
import { asScitexError, dataDir, ExitCode, recordRun } from '../index.js';
import type { Ctx } from './context.js';
import { makeContext } from './context.js';
import { DEFAULT_HOOK_TIMEOUT, hookWarning, runHook, type HookReport } from './hooks.js';
import { setCurrentRun, type CurrentRun } from './interrupt.js';
import { settleTerminal } from './terminal.js';

/** A command's action: returns the JSON-able result (printed with --json) and an exit code. */
// commander hands each action its arguments and options untyped; each command file types its own.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Action = (ctx: Ctx, ...args: any[]) => Promise<{ result: Record<string, unknown>; exitCode?: number }>;

/** True when the error (or one it was caused by) is a child killed by SIGINT or SIGTERM. */
function killedBySignal(err: unknown): boolean {
  for (let e = err as { signal?: unknown; cause?: unknown } | undefined; e && typeof e === 'object'; e = e.cause as typeof e) {
    if (e.signal === 'SIGINT' || e.signal === 'SIGTERM') return true;
  }
  return false;
}

/** Commands whose last run is recorded in the backup directory's state file (for metrics and status). */
const RECORDED = new Set(['backup', 'prune', 'verify', 'restore db', 'restore users', 'copy']);

/**
 * After the run: records it (state file) and runs the --on-success/--on-failure hook. A hook that fails is
 * a warning and never changes the run's exit code: the run's own outcome is what cron and monitoring see.
 */
function finishRun(ctx: Ctx, cur: CurrentRun, started: Date, dryRun: boolean, exitCode: number, message: string, doc: Record<string, unknown>): HookReport[] {
  const finished = new Date();
  // A usage error (exit 2) never started: it leaves nothing behind, not even a run record.
  if (RECORDED.has(cur.command) && cur.backupDir && exitCode !== ExitCode.USAGE && (!dryRun || cur.command === 'verify')) {
    try {
      recordRun(cur.backupDir, cur.command, { result: exitCode === 0 ? 'ok' : 'failed', exitCode, started: started.toISOString(), finished: finished.toISOString(), durationMs: finished.getTime() - started.getTime(), message }, dataDir(cur.root));
    } catch (err) {
      ctx.log.debug(`could not record the run in ${cur.backupDir}: ${(err as Error).message}`);
    }
  }
  const hook = exitCode === 0 ? ctx.globals.onSuccess : ctx.globals.onFailure;
  if (!hook) return [];
  const timeout = ctx.globals.hookTimeout ?? DEFAULT_HOOK_TIMEOUT;
  const report = runHook(hook, exitCode === 0 ? 'success' : 'failure', { command: cur.command, exitCode, message, document: doc }, timeout);
  const w = hookWarning(report, timeout);
  if (w) ctx.log.warn(w);
  return [report];
}

/** Wraps an action with the shared error handling, --json output, signal handling, run record and hooks. */
export function run(name: string, action: Action) {
  return async (...args: unknown[]) => {
    const cmd = args[args.length - 1] as Command;
    const ctx = makeContext(cmd);
    const started = new Date();
    const dryRun = !!cmd.opts().dryRun;
    const cur: CurrentRun = { command: name, json: ctx.globals.json, root: ctx.globals.root };
    const config = ctx.config.bind(ctx);
    ctx.config = (extra) => {
      const cfg = config(extra);
      cur.backupDir = cfg.backupDir.value;
      return cfg;
    };
    cur.finish = (code, message) => void finishRun(ctx, cur, started, dryRun, code, message, { ok: false, command: name, exitCode: code, error: { message }, warnings: ctx.warnings });
    setCurrentRun(cur);
    let doc: Record<string, unknown>;
    let exitCode: number;
    let message: string;
    try {
      const r = await action(ctx, ...args);
      exitCode = r.exitCode ?? ExitCode.OK;
      settleTerminal();
      const failedChecks = typeof r.result.failed === 'number' && r.result.failed > 0 ? `: ${r.result.failed} check(s) failed` : '';
      const lastWarning = ctx.warnings.length ? `: ${ctx.warnings[ctx.warnings.length - 1]}` : '';
      message = exitCode === ExitCode.OK ? `${name} succeeded` : `${name} exited ${exitCode}${failedChecks || lastWarning}`;
      doc = { ok: exitCode === ExitCode.OK, command: name, exitCode, ...r.result, warnings: ctx.warnings };
    } catch (err) {
      // A child stopped by the same Ctrl-C (the whole foreground group gets it) can fail the run before our
      // own handler runs: give the handler its turn, so the one line is the interruption, not this error.
      if (killedBySignal(err)) await new Promise((r) => setTimeout(r, 500));
      settleTerminal();
      const e = asScitexError(err);
      exitCode = e.exitCode;
      message = e.message;
      doc = { ok: false, command: name, exitCode: e.exitCode, error: { message: e.message, hint: e.hint }, warnings: ctx.warnings };
      // A message from a tool (age, tar) may end without a period: the next step must not read as part of it.
      if (!ctx.globals.json) process.stderr.write(`${ctx.ce.red('error:')} ${e.message}${e.hint ? (/[.!?]$/.test(e.message) ? ' ' : '. ') + e.hint : ''}\n`);
      if (ctx.globals.debug) process.stderr.write(((e.cause as Error | undefined)?.stack ?? e.stack ?? '') + '\n');
    }
    // From here on a signal only stops the process: the run's outcome is settled.
    cur.finish = undefined;
    const hooks = finishRun(ctx, cur, started, dryRun, exitCode, message, doc);
    if (ctx.globals.json) process.stdout.write(JSON.stringify({ ...doc, ...(hooks.length ? { hooks } : {}), warnings: ctx.warnings }, null, 2) + '\n');
    cur.printed = true;
    setCurrentRun(undefined);
    process.exitCode = exitCode;
  };
}

