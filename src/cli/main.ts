import { Command, CommanderError, Option } from 'commander';
import { asScitexError, ExitCode, VERSION } from '../index.js';
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
import { registerCopy } from './copy.js';

/** A command's action: returns the JSON-able result (printed with --json) and an exit code. */
export type Action = (ctx: Ctx, ...args: any[]) => Promise<{ result: Record<string, unknown>; exitCode?: number }>;

/** Wraps an action with the shared error handling and --json output. */
export function run(name: string, action: Action) {
  return async (...args: any[]) => {
    const cmd = args[args.length - 1] as Command;
    const ctx = makeContext(cmd);
    try {
      const { result, exitCode = ExitCode.OK } = await action(ctx, ...args);
      if (ctx.g.json) process.stdout.write(JSON.stringify({ ok: exitCode === ExitCode.OK, command: name, exitCode, ...result, warnings: ctx.warnings }, null, 2) + '\n');
      process.exitCode = exitCode;
    } catch (err) {
      const e = asScitexError(err);
      if (ctx.g.json) {
        process.stdout.write(JSON.stringify({ ok: false, command: name, exitCode: e.exitCode, error: { message: e.message, hint: e.hint }, warnings: ctx.warnings }, null, 2) + '\n');
      } else {
        process.stderr.write(`${ctx.c.red('error:')} ${e.message}${e.hint ? ' ' + e.hint : ''}\n`);
      }
      if (ctx.g.debug) process.stderr.write(((e.cause as Error | undefined)?.stack ?? e.stack ?? '') + '\n');
      process.exitCode = e.exitCode;
    }
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
    .option('-q, --quiet', 'print nothing on success')
    .option('--no-color', 'no colours (also NO_COLOR, or when stdout is not a terminal)')
    .option('--debug', 'print stack traces and debug messages')
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
  registerCopy(program);
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

/** Entry point: parses argv and maps commander's own errors to exit code 2. */
export async function main(argv: string[]): Promise<void> {
  tolerateClosedOutput(process.stdout);
  tolerateClosedOutput(process.stderr);
  const program = buildProgram();
  program.exitOverride();
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      const ok = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code);
      process.exitCode = ok ? ExitCode.OK : ExitCode.USAGE;
      return;
    }
    throw err;
  }
}
