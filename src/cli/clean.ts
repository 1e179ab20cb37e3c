import type { Command } from 'commander';
import { findLeftovers, oldLeftovers, removeLeftovers, withLock, formatDuration } from '../index.js';
import { human } from './format.js';
import { run } from './run.js';
import { durationArg } from './options.js';

/** `scitex-data clean`: removes what restores kept aside (safety copies, pre-restore databases) once old enough. */
export function registerClean(program: Command): void {
  program
    .command('clean')
    .description('remove safety copies and pre-restore databases (and files) older than --older-than')
    .requiredOption('--older-than <span>', 'only leftovers of restores older than this (e.g. 30d, 2w, 12h)', durationArg)
    .option('--dry-run', 'list what would be removed, remove nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      run('clean', async (ctx, o: { olderThan: number; dryRun?: boolean; yes?: boolean }) => {
        const cfg = ctx.config();
        const now = new Date();
        const r = await withLock(cfg.root, 'clean', async () => {
          const found = await findLeftovers(cfg, { pg: true });
          for (const n of found.notes) ctx.log.warn(n);
          const doomed = oldLeftovers(found.items, o.olderThan, now);
          const kept = found.items.filter((l) => !doomed.includes(l));
          const verb = o.dryRun ? 'would remove' : 'remove';
          for (const l of doomed) ctx.say(`${verb.padEnd(12)} ${l.kind.padEnd(11)} ${human(l.size).padStart(10)}  ${l.path ?? l.name}${l.sideFiles.length ? ` (+ ${l.sideFiles.length} side file(s))` : ''}`);
          for (const l of kept) ctx.say(`${'keep'.padEnd(12)} ${l.kind.padEnd(11)} ${human(l.size).padStart(10)}  ${l.path ?? l.name}  (${l.time ? 'younger than ' + formatDuration(o.olderThan) : 'undated'})`);
          if (!doomed.length) {
            ctx.say(`Nothing older than ${formatDuration(o.olderThan)} to remove.`);
            return { doomed, kept, removed: [] as string[] };
          }
          if (o.dryRun) return { doomed, kept, removed: [] as string[] };
          if (!(await ctx.confirm(`Remove ${doomed.length} leftover(s) (${human(doomed.reduce((t, l) => t + l.size, 0))})?`, o.yes, 'remove safety copies'))) return { doomed: [], kept: found.items, removed: [] as string[] };
          const removed = await removeLeftovers(cfg, doomed, ctx.log);
          ctx.say(`removed ${doomed.length} leftover(s), ${human(doomed.reduce((t, l) => t + l.size, 0))} freed`);
          return { doomed, kept, removed };
        });
        const j = (l: (typeof r.doomed)[number]) => ({ ...l, time: l.time?.toISOString() ?? null });
        return { result: { dryRun: !!o.dryRun, olderThan: formatDuration(o.olderThan), removed: o.dryRun ? [] : r.doomed.map(j), wouldRemove: o.dryRun ? r.doomed.map(j) : [], kept: r.kept.map(j), freedBytes: o.dryRun ? 0 : r.doomed.reduce((t, l) => t + l.size, 0) } };
      }),
    );
}
