// The one wrapper every command's action goes through: shared error handling, --json output, exit codes.
import type { Command } from 'commander';
import { asScitexError, ExitCode } from '../index.js';
import type { Ctx } from './context.js';
import { makeContext } from './context.js';

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
