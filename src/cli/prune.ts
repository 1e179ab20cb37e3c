import type { Command } from 'commander';
import { hasPolicy, NO_POLICY_HINT, prune, UsageError, withLock, type PruneDecision } from '../index.js';
import { type Ctx } from './context.js';
import { human } from './format.js';
import { run } from './run.js';
import { backupDirOption, keepOptions, policyFrom } from './options.js';
import { destinationOption, remotePrune } from './copy.js';

/** Retention decisions as JSON: name, path, kept or not, and why kept. */
export const decisionsJson = (ds: PruneDecision[]) => ds.map((d) => ({ name: d.entry.name, path: d.entry.path, series: seriesLabel(d), keep: d.keep, reasons: d.reasons }));

const seriesLabel = (d: PruneDecision): string => {
  const e = d.entry;
  if (e.kind !== 'users') return `${e.kind} ${e.series}`;
  return e.set?.selection ? `users --user ${e.set.selection.join(',')}` : 'users';
};

/** The forget table (restic's model): per series, every backup with what happens to it and why it is kept. */
export function decisionsTable(ds: PruneDecision[], verb: 'deleted' | 'would delete'): string[] {
  const groups = new Map<string, PruneDecision[]>();
  for (const d of ds) groups.set(seriesLabel(d), [...(groups.get(seriesLabel(d)) ?? []), d]);
  const out: string[] = [];
  const w = Math.max(6, ...ds.map((d) => d.entry.name.length));
  for (const [label, list] of groups) {
    const gone = list.filter((d) => !d.keep).length;
    out.push(`${label}: keep ${list.length - gone}, ${verb === 'deleted' ? 'delete' : 'would delete'} ${gone}`);
    out.push(`  ${'action'.padEnd(12)} ${'time'.padEnd(20)} ${'size'.padStart(10)}  ${'backup'.padEnd(w)}  reasons`);
    for (const d of list) {
      const when = d.entry.time ? d.entry.time.toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '(undated)';
      out.push(`  ${(d.keep ? 'keep' : verb).padEnd(12)} ${when.padEnd(20)} ${human(d.entry.size).padStart(10)}  ${d.entry.name.padEnd(w)}  ${d.reasons.join('; ')}`.trimEnd());
    }
  }
  const gone = ds.filter((d) => !d.keep).length;
  if (ds.length) out.push(`${ds.length - gone} kept, ${gone} ${verb}`);
  return out;
}

/** Prints the forget table; when something was (or would be) deleted it is printed under --quiet too (cron mails it). */
export function printDecisions(ctx: Ctx, ds: PruneDecision[], verb: 'deleted' | 'would delete'): void {
  if (ctx.globals.json || !ds.length) return;
  if (ctx.globals.quiet && !ds.some((d) => !d.keep)) return;
  process.stdout.write(decisionsTable(ds, verb).join('\n') + '\n');
}

/** `scitex-data prune`: delete old backups by retention rules. */
export function registerPrune(program: Command): void {
  const cmd = program.command('prune').description('delete old backups by --keep-* rules (never the newest, a pinned or an undated one)').addOption(backupDirOption());
  for (const o of keepOptions()) cmd.addOption(o);
  cmd
    .option('--dry-run', 'show what would be deleted, delete nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--remote', 'prune the copies at an off-site destination instead (as `remote prune`)')
    .addOption(destinationOption())
    .action(
      run('prune', async (ctx, o: Parameters<typeof policyFrom>[0] & { backupDir?: string; dryRun?: boolean; yes?: boolean; remote?: boolean; destination?: string }) => {
        if (o.remote) return remotePrune(ctx, o);
        const cfg = ctx.config({ backupDir: o.backupDir });
        const policy = policyFrom(o);
        if (!hasPolicy(policy)) throw new UsageError('No retention rule given.', NO_POLICY_HINT);
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
