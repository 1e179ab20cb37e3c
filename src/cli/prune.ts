import type { Command } from 'commander';
import { hasPolicy, prune, UsageError, withLock, type PruneDecision } from '../index.js';
import type { Ctx } from './context.js';
import { run } from './run.js';
import { backupDirOption, keepOptions, policyFrom } from './options.js';

/** Retention decisions as JSON: name, path, kept or not, and why kept. */
export const decisionsJson = (ds: PruneDecision[]) => ds.map((d) => ({ name: d.entry.name, path: d.entry.path, keep: d.keep, reasons: d.reasons }));

/** Prints each kept backup with its reasons and each deletion; deletions also under --quiet (cron mails them). */
export function printDecisions(ctx: Ctx, ds: PruneDecision[], verb: 'deleted' | 'would delete'): void {
  for (const d of ds) {
    if (d.keep) ctx.say(`keep         ${d.entry.name}  (${d.reasons.join('; ')})`);
    else if (!ctx.g.json) process.stdout.write(`${verb.padEnd(12)} ${d.entry.name}\n`);
  }
}

/** `scitex-data prune`: delete old backups by calendar rules. */
export function registerPrune(program: Command): void {
  const cmd = program.command('prune').description('delete old backups by --keep-daily/--keep-weekly/--keep-monthly (never the newest, never an undated one)').addOption(backupDirOption());
  for (const o of keepOptions()) cmd.addOption(o);
  cmd
    .option('--dry-run', 'show what would be deleted, delete nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      run('prune', async (ctx, o: { backupDir?: string; keepDaily?: number; keepWeekly?: number; keepMonthly?: number; dryRun?: boolean; yes?: boolean }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        const policy = policyFrom(o);
        if (!hasPolicy(policy)) throw new UsageError('No retention rule given.', 'Pass at least one of --keep-daily, --keep-weekly, --keep-monthly.');
        // One clock for the plan shown and the run: the decisions printed are the ones applied.
        const now = new Date();
        const decisions = await withLock(cfg.root, 'prune', async () => {
          const planned = await prune(cfg.backupDir.value, policy, ctx.log, { dryRun: true, now });
          const doomed = planned.filter((d) => !d.keep);
          if (o.dryRun || !doomed.length) return planned;
          for (const d of doomed) ctx.say(`will delete ${d.entry.name}`);
          if (!(await ctx.confirm(`Delete ${doomed.length} backup(s)?`, o.yes, 'delete backups'))) throw new UsageError('Nothing deleted.');
          return prune(cfg.backupDir.value, policy, ctx.log, { now });
        });
        printDecisions(ctx, decisions, o.dryRun ? 'would delete' : 'deleted');
        return { result: { dryRun: !!o.dryRun, decisions: decisionsJson(decisions) } };
      }),
    );
}
