import path from 'node:path';
import type { Command } from 'commander';
import { ExitCode, verify, writeMetrics } from '../index.js';
import { run } from './run.js';
import { backupDirOption, identityOption, intArg } from './options.js';
import { destinationOption, remoteVerify } from './copy.js';

interface VerifyFlags {
  backups?: boolean;
  deep?: boolean;
  maxAge: number;
  skipDb?: boolean;
  fix?: boolean;
  dryRun?: boolean;
  strict?: boolean;
  metrics?: string;
  backupDir?: string;
  remote?: boolean;
  destination?: string;
  identity?: string;
}

/** `scitex-data verify`: prove the layout (and with --backups, the backups) are sound. */
export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check the layout, settings, .gitignore, databases and permissions (exit 3 when anything fails)')
    .option('--backups', 'also check every backup: checksums, freshness, readability')
    .option('--deep', 'also restore the newest backups into scratch space and compare (implies --backups)')
    .option('--max-age <hours>', 'newest backup of each kind must be younger than this', intArg, 26)
    .option('--skip-db', 'do not connect to PostgreSQL')
    .option('--fix', 'repair what is safe: directories, .gitkeep files, the .gitignore block, modes')
    .option('--dry-run', 'with --fix: list the repairs, change nothing')
    .option('--strict', 'warnings fail too')
    .option('--metrics <file>', 'write the results in the Prometheus textfile format (atomically)')
    .addOption(backupDirOption())
    .addOption(identityOption())
    .option('--remote', 'check the copies at an off-site destination instead (as `remote verify`; --deep downloads and re-hashes)')
    .addOption(destinationOption())
    .action(
      run('verify', async (ctx, o: VerifyFlags) => {
        if (o.remote) return remoteVerify(ctx, [], o);
        const cfg = ctx.config({ backupDir: o.backupDir });
        const r = await verify(cfg, ctx.log, { backups: o.backups, deep: o.deep, maxAgeHours: o.maxAge, skipDb: o.skipDb, fix: o.fix, dryRun: o.dryRun, strict: o.strict, identity: o.identity });
        const icon = { pass: ctx.c.green('PASS'), warn: ctx.c.yellow('WARN'), fail: ctx.c.red('FAIL') };
        const width = Math.max(...r.checks.map((c) => c.name.length));
        // Quiet on success, never on failure: a failing run prints what did not pass (cron mails it).
        const problem = r.ok ? ctx.say : ctx.alert;
        for (const c of r.checks) {
          const out = c.status === 'pass' ? ctx.say : problem;
          out(`${icon[c.status]}  ${c.name.padEnd(width)}  ${c.found}`);
          if (c.status !== 'pass' && c.hint) out(`      ${' '.repeat(width)}  ${ctx.c.dim('→ ' + c.hint)}`);
        }
        for (const rep of r.repairs) ctx.say(`${o.dryRun ? 'would repair' : 'repaired'}: ${rep}`);
        problem(`${r.checks.length} checks: ${r.checks.length - r.failed - r.warned} passed, ${r.warned} warned, ${r.failed} failed`);
        if (o.metrics) await writeMetrics(path.resolve(o.metrics), r, cfg);
        const checks = r.checks.map(({ fix, ...c }) => ({ ...c, fixable: !!fix }));
        return { result: { checks, repairs: r.repairs, failed: r.failed, warned: r.warned }, exitCode: r.ok ? ExitCode.OK : ExitCode.PROBLEMS };
      }),
    );
}
