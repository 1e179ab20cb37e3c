import { Command, CommanderError, Option } from 'commander';
import { asScitexError, dataDir, ExitCode, recordRun, VERSION } from '../index.js';
import type { Ctx } from './context.js';
import { makeContext } from './context.js';
import { registerInit } from './init.js';
import { registerConfig } from './config.js';
import { registerBackup } from './backup.js';
import { registerList } from './list.js';
import { registerPrune } from './prune.js';
import { registerRestore } from './restore.js';
import { registerVerify } from './verify.js';
import { registerMigrate } from './migrate.js';
import { registerDoctor } from './doctor.js';
import { DEFAULT_HOOK_TIMEOUT, hookWarning, runHook, type HookReport } from './hooks.js';
import { handleSignals, setCurrentRun, type CurrentRun } from './interrupt.js';
import { intArg } from './options.js';
import { settleTerminal } from './terminal.js';

/** A command's action: returns the JSON-able result (printed with --json) and an exit code. */
export type Action = (ctx: Ctx, ...args: any[]) => Promise<{ result: Record<string, unknown>; exitCode?: number }>;

/** Commands whose last run is recorded in the backup directory's state file (for metrics and status). */
const RECORDED = new Set(['backup', 'prune', 'verify', 'restore db', 'restore users']);

/**
 * After the run: records it (state file) and runs the --on-success/--on-failure hook. A hook that fails is
 * a warning and never changes the run's exit code: the run's own outcome is what cron and monitoring see.
 */
function finishRun(ctx: Ctx, cur: CurrentRun, started: Date, dryRun: boolean, exitCode: number, message: string, doc: Record<string, unknown>): HookReport[] {
  const finished = new Date();
  if (RECORDED.has(cur.command) && cur.backupDir && (!dryRun || cur.command === 'verify')) {
    try {
      recordRun(cur.backupDir, cur.command, { result: exitCode === 0 ? 'ok' : 'failed', exitCode, started: started.toISOString(), finished: finished.toISOString(), durationMs: finished.getTime() - started.getTime(), message }, dataDir(cur.root));
    } catch (err) {
      ctx.log.debug(`could not record the run in ${cur.backupDir}: ${(err as Error).message}`);
    }
  }
  const hook = exitCode === 0 ? ctx.g.onSuccess : ctx.g.onFailure;
  if (!hook) return [];
  const timeout = ctx.g.hookTimeout ?? DEFAULT_HOOK_TIMEOUT;
  const report = runHook(hook, exitCode === 0 ? 'success' : 'failure', { command: cur.command, exitCode, message, document: doc }, timeout);
  const w = hookWarning(report, timeout);
  if (w) ctx.log.warn(w);
  return [report];
}

/** Wraps an action with the shared error handling, --json output, signal handling, run record and hooks. */
export function run(name: string, action: Action) {
  return async (...args: any[]) => {
    const cmd = args[args.length - 1] as Command;
    const ctx = makeContext(cmd);
    const started = new Date();
    const dryRun = !!cmd.opts().dryRun;
    const cur: CurrentRun = { command: name, json: ctx.g.json, root: ctx.g.root };
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
      settleTerminal();
      const e = asScitexError(err);
      exitCode = e.exitCode;
      message = e.message;
      doc = { ok: false, command: name, exitCode: e.exitCode, error: { message: e.message, hint: e.hint }, warnings: ctx.warnings };
      if (!ctx.g.json) process.stderr.write(`${ctx.ce.red('error:')} ${e.message}${e.hint ? ' ' + e.hint : ''}\n`);
      if (ctx.g.debug) process.stderr.write(((e.cause as Error | undefined)?.stack ?? e.stack ?? '') + '\n');
    }
    // From here on a signal only stops the process: the run's outcome is settled.
    cur.finish = undefined;
    const hooks = finishRun(ctx, cur, started, dryRun, exitCode, message, doc);
    if (ctx.g.json) process.stdout.write(JSON.stringify({ ...doc, ...(hooks.length ? { hooks } : {}), warnings: ctx.warnings }, null, 2) + '\n');
    cur.printed = true;
    setCurrentRun(undefined);
    process.exitCode = exitCode;
  };
}

/** Builds the whole program; exported so tests can compare the README with --help. */
export function buildProgram(): Command {
  const program = new Command('scitex-data')
    .description("Layout, migration, backup, restore and verification of scitex-cloud's data/ directory.")
    .version(VERSION, '-V, --version')
    .option('--root <dir>', 'project root that contains data/', '.')
    .addOption(new Option('--env <env>', 'app environment (default from SCITEX_CLOUD_ENV)').choices(['dev', 'prod']))
    .option('--json', 'print one JSON document on stdout, nothing else there')
    .option('-q, --quiet', 'print nothing on success (failures, errors, warnings and deletions still print)')
    .option('--no-color', 'no colours (also NO_COLOR, or when stdout is not a terminal)')
    .option('--debug', 'print stack traces and debug messages')
    .option('--on-success <command>', 'run this shell command after a successful run (result as JSON on stdin)')
    .option('--on-failure <command>', 'run this shell command after a failed or interrupted run (result as JSON on stdin)')
    .option('--hook-timeout <seconds>', 'kill a hook still running after this long', intArg, DEFAULT_HOOK_TIMEOUT)
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false)
    .configureHelp({ sortSubcommands: false, helpWidth: 100 });
  registerInit(program);
  registerConfig(program);
  registerMigrate(program);
  registerBackup(program);
  registerList(program);
  registerRestore(program);
  registerPrune(program);
  registerVerify(program);
  registerDoctor(program);
  return program;
}

/**
 * A reader that went away (`scitex-data list | head -1`) is not a crash: output stops quietly, the
 * command finishes what it started (a backup is never cut short by its log reader) and keeps its exit code.
 */
function tolerateClosedOutput(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
}

/** True when --json comes before any `--` (needed before parsing: commander's own errors must be JSON too). */
const wantsJson = (argv: string[]) => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
};

/** Entry point: parses argv and maps commander's own errors to exit code 2 (one JSON document with --json). */
export async function main(argv: string[]): Promise<void> {
  tolerateClosedOutput(process.stdout);
  tolerateClosedOutput(process.stderr);
  handleSignals();
  const json = wantsJson(argv.slice(2));
  const out: string[] = [];
  const err: string[] = [];
  const program = buildProgram();
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) {
    c.exitOverride();
    // With --json, commander's help and errors are collected into the one document instead of printed.
    if (json) c.configureOutput({ writeOut: (s) => void out.push(s), writeErr: (s) => void err.push(s) });
  }
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    // Help and version asked for exit 0; a group without its subcommand (`restore`) shows help as an error.
    const ok = e.exitCode === 0;
    const exitCode = ok ? ExitCode.OK : ExitCode.USAGE;
    const missing = !ok && e.code === 'commander.help';
    if (missing && !json) process.stderr.write('error: a command is missing (see the list above).\n');
    if (json) {
      const valued = ['--root', '--env', '--on-success', '--on-failure', '--hook-timeout'];
      const words = argv.slice(2).filter((a, i, xs) => !a.startsWith('-') && !valued.includes(xs[i - 1] ?? ''));
      const message = missing ? 'a command is missing: run with --help for the list' : e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim();
      const doc: Record<string, unknown> = ok
        ? { ok: true, command: e.code === 'commander.version' ? 'version' : 'help', exitCode, output: out.join('') || err.join('') }
        : { ok: false, command: words[0] ?? null, exitCode, error: { message, hint: 'Run `scitex-data --help` for usage.' }, warnings: [] };
      if (!ok && words[0] === 'restore' && words[1]) doc.command = `restore ${words[1]}`;
      process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    }
    process.exitCode = exitCode;
  }
}
