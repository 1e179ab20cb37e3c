import type { Command } from 'commander';
import { describeSafety, restoreDatabase, restoreUsers, withLock } from '../index.js';
import { run } from './run.js';
import { backupDirOption, collect, intArg } from './options.js';

/** `scitex-data restore db|users`: run by hand during an incident. */
export function registerRestore(program: Command): void {
  const restore = program.command('restore').description('restore the database or user directories from a backup');
  restore
    .command('db')
    .description('restore the configured database from its newest backup (or --from/--at), keeping the current one')
    .option('--from <file>', 'restore this backup file')
    .option('--at <timestamp>', 'restore the backup taken at YYYYMMDD_HHMMSS')
    .addOption(backupDirOption())
    .option('--jobs <n>', 'parallel pg_restore jobs for custom-format dumps', intArg)
    .option('--allow-unverified', 'restore a backup that has no recorded checksum (legacy backups)')
    .option('--dry-run', 'show what would be restored and kept, change nothing')
    .option('-y, --yes', 'do not ask; terminate other sessions on the live PostgreSQL database')
    .action(
      run('restore db', async (ctx, o: { from?: string; at?: string; backupDir?: string; jobs?: number; allowUnverified?: boolean; dryRun?: boolean; yes?: boolean }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        const opts = { from: o.from, at: o.at, allowUnverified: o.allowUnverified, jobs: o.jobs };
        const r = await withLock(cfg.root, 'restore db', async () => {
          const plan = await restoreDatabase(cfg, ctx.log, { ...opts, dryRun: true });
          const kept = describeSafety(plan);
          ctx.say(`${o.dryRun ? 'would restore' : 'restoring'} ${plan.backup} into ${plan.target}${kept ? `, keeping ${kept}` : ''}`);
          if (o.dryRun) return plan;
          if (!(await ctx.confirm(`Replace ${plan.target} with ${plan.backup}?`, o.yes, 'replace the live database'))) return { ...plan, dryRun: true };
          // The run uses the names the plan announced (computed once), not a second timestamp.
          return restoreDatabase(cfg, ctx.log, { ...opts, terminateSessions: true, safetyName: plan.safetyCopy ?? undefined });
        });
        const kept = describeSafety(r);
        if (!r.dryRun) ctx.say(`restored ${r.target} from ${r.backup}${kept ? `; kept ${kept} (remove when no longer needed)` : ''}`);
        return { result: { ...r } };
      }),
    );
  restore
    .command('users')
    .description('restore user directories from the newest set (or --from/--at); the current ones are kept as safety copies')
    .option('--user <name>', 'restore only this user (repeatable)', collect)
    .option('--from <path>', 'a set directory (users_<ts>) or one archive in it')
    .option('--at <timestamp>', 'the set taken at YYYYMMDD_HHMMSS')
    .option('--to <dir>', 'extract under <dir>/data/users instead of touching live data')
    .addOption(backupDirOption())
    .option('--dry-run', 'list what would change, change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      run('restore users', async (ctx, o: { user?: string[]; from?: string; at?: string; to?: string; backupDir?: string; dryRun?: boolean; yes?: boolean }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        const opts = { usernames: o.user, from: o.from, at: o.at, to: o.to };
        const r = await withLock(cfg.root, 'restore users', async () => {
          // The plan without reading archives; --dry-run also verifies them and computes what would change.
          const plan = await restoreUsers(cfg, ctx.log, { ...opts, dryRun: true, planOnly: !o.dryRun });
          for (const u of plan.users) {
            const d = u.diff;
            ctx.say(`${u.username}: from ${u.archive} -> ${u.target}${d ? ` (${d.missing} to bring back, ${d.changed} to replace, ${d.extra} only live, ${d.same} same)` : ''}${u.safetyCopy ? `; current copy kept as ${u.safetyCopy}` : ''}`);
          }
          if (o.dryRun) return plan;
          if (!o.to && !(await ctx.confirm(`Restore ${plan.users.length} user(s) from ${plan.set}?`, o.yes, 'replace live user directories'))) return plan;
          return restoreUsers(cfg, ctx.log, opts);
        });
        return { result: { ...r } };
      }),
    );
}
