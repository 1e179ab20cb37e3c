import path from 'node:path';
import type { Command } from 'commander';
import { doctor, ENCRYPT_VAR, ExitCode } from '../index.js';
import { run } from './run.js';
import { backupDirOption } from './options.js';

/** `scitex-data doctor`: the tools, privileges, space and cron entry a backup and a restore rely on. */
export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check the tools and versions, restore privileges, free space and the cron entry (exit 3 when something must be fixed)')
    .addOption(backupDirOption())
    .action(
      run('doctor', async (ctx, o: { backupDir?: string }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        // The path this command was started by (the link npm made, not its target): what a cron line should name.
        const r = await doctor(cfg, { self: process.argv[1] ? path.resolve(process.argv[1]) : 'scitex-data', node: process.execPath }, { encrypting: !!process.env[ENCRYPT_VAR]?.trim() });
        const icon = { pass: ctx.c.green('ok  '), warn: ctx.c.yellow('WARN'), fail: ctx.c.red('FIX ') };
        const width = Math.max(...r.checks.map((c) => c.name.length));
        // Like verify: quiet on success, and what must be fixed is printed under --quiet too.
        const problem = r.failed ? ctx.alert : ctx.say;
        for (const c of r.checks) {
          const out = c.status === 'pass' ? ctx.say : problem;
          out(`${icon[c.status]}  ${c.name.padEnd(width)}  ${c.found}`);
          if (c.status !== 'pass' && c.hint) out(`      ${' '.repeat(width)}  ${ctx.c.dim('→ ' + c.hint)}`);
        }
        problem(r.failed ? `${r.failed} thing(s) to fix, ${r.warned} warning(s)` : `nothing to fix${r.warned ? `, ${r.warned} warning(s)` : ''}`);
        const checks = r.checks.map((c) => ({ name: c.name, status: c.status, found: c.found, hint: c.hint }));
        return { result: { checks, tools: r.tools, failed: r.failed, warned: r.warned }, exitCode: r.failed ? ExitCode.PROBLEMS : ExitCode.OK };
      }),
    );
}
