import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { describeSafety, inspectSet, listBackups, resolveAt, executeDatabaseRestore, planDatabaseRestore, executeUsersRestore, planUsersRestore, previewUsersRestore, withLock } from '../index.js';
import type { Ctx } from './context.js';
import { run } from './run.js';
import { backupDirOption, collect, intArg } from './options.js';
import { fromRemote, remoteRestoreOptions } from './copy.js';

/** `scitex-data restore db|users`: run by hand during an incident. */
export function registerRestore(program: Command): void {
  const restore = program.command('restore').description('restore the database or user directories from a backup');
  restore
    .command('db')
    .description('restore the configured database from its newest backup (or --from/--at), keeping the current one')
    .option('--from <file>', 'restore this backup file')
    .option('--at <time>', 'restore the backup taken at this time, as `list` shows it or as the stamp in its name (YYYYMMDD_HHMMSS, UTC)')
    .addOption(backupDirOption())
    .option('--jobs <n>', 'parallel pg_restore jobs for custom-format dumps', intArg)
    .option('--allow-unverified', 'restore a backup that has no recorded checksum (legacy backups)')
    .option('--dry-run', 'show what would be restored and kept, change nothing')
    .option('-y, --yes', 'do not ask; terminate other sessions on the live PostgreSQL database');
  remoteRestoreOptions(restore.commands[restore.commands.length - 1]!).action(
      run('restore db', fromRemote(async (ctx, o: { from?: string; at?: string; backupDir?: string; jobs?: number; allowUnverified?: boolean; dryRun?: boolean; yes?: boolean; identity?: string }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        const opts = { from: o.from, at: o.at, allowUnverified: o.allowUnverified, jobs: o.jobs, identity: o.identity };
        const r = await withLock(cfg.root, 'restore db', async () => {
          const plan = await planDatabaseRestore(cfg, ctx.log, opts);
          const kept = describeSafety(plan);
          ctx.say(`${o.dryRun ? 'would restore' : 'restoring'} ${plan.backup} into ${plan.target}${kept ? `, keeping ${kept}` : ''}`);
          if (o.dryRun) return plan;
          if (!(await ctx.confirm(`Replace ${plan.target} with ${plan.backup}?`, o.yes, 'replace the live database'))) return { ...plan, dryRun: true };
          // The run uses the names the plan announced (computed once), not a second timestamp.
          return executeDatabaseRestore(cfg, ctx.log, plan, { allowUnverified: opts.allowUnverified, jobs: opts.jobs, terminateSessions: true, identity: opts.identity });
        });
        const kept = describeSafety(r);
        if (!r.dryRun) ctx.say(`restored ${r.target} from ${r.backup}${kept ? `; kept ${kept} (remove when no longer needed)` : ''}`);
        return { result: { ...r } };
      })),
    );
  restore
    .command('users')
    .description('restore user directories from the newest set (or --from/--at); the current ones are kept as safety copies')
    .option('--user <name>', 'restore only this user (repeatable)', collect)
    .option('--path <rel>', "with --user: restore only this file or directory of the user's (repeatable, e.g. proj/paper-1)", collect)
    .option('--from <path>', 'a set directory (users_<ts>) or one archive in it')
    .option('--at <time>', 'the set taken at this time, as `list` shows it or as the stamp in its name (YYYYMMDD_HHMMSS, UTC)')
    .option('--to <dir>', 'extract under <dir>/data/users instead of touching live data')
    .addOption(backupDirOption())
    .option('--dry-run', 'list what would change, change nothing')
    .option('-y, --yes', 'do not ask for confirmation');
  remoteRestoreOptions(restore.commands[restore.commands.length - 1]!).action(
      run('restore users', fromRemote(async (ctx, o: { user?: string[]; path?: string[]; from?: string; at?: string; to?: string; backupDir?: string; dryRun?: boolean; yes?: boolean; identity?: string }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        // Sets damaged by other tools (a `find -delete` cleanup) are said first; --at as `list` shows it.
        const at = await damagedSetsFirst(ctx, cfg.root, cfg.backupDir.value, o);
        const opts = { usernames: o.user, paths: o.path, from: o.from, at, to: o.to, identity: o.identity };
        const r = await withLock(cfg.root, 'restore users', async () => {
          // One plan, computed once (the safety-copy names it prints are the ones made); --dry-run also
          // checks every archive and computes what would change.
          const plan = await planUsersRestore(cfg, ctx.log, opts);
          const shown = o.dryRun ? await previewUsersRestore(plan) : { ...plan, dryRun: true };
          for (const u of shown.users) {
            const d = u.diff;
            const what = u.paths ? ` ${u.paths.map((x) => `${x.path}${x.live ? ' (replaces the live one)' : ' (not live now)'}`).join(', ')} of` : '';
            if (u.unchanged) ctx.say(`${u.username}: unchanged since ${u.archive}; nothing to restore, no safety copy`);
            else ctx.say(`${what ? `restore${what} ` : ''}${u.username}: from ${u.archive} -> ${u.target}${d ? ` (${d.missing} to bring back, ${d.changed} to replace, ${d.extra} only live, ${d.same} same)` : ''}${u.safetyCopy ? `; current ${u.paths ? 'paths' : 'copy'} kept as ${u.safetyCopy}` : ''}`);
          }
          if (o.dryRun) return shown;
          if (!o.to && !(await ctx.confirm(`Restore ${plan.users.length} user(s) from ${plan.set}?`, o.yes, 'replace live user directories'))) return { set: plan.set, users: plan.users, dryRun: true };
          return executeUsersRestore(cfg, ctx.log, plan);
        });
        if (!r.dryRun) for (const u of r.users) if (u.unchanged) ctx.say(`${u.username}: unchanged, left as it is (no safety copy)`);
        return { result: { ...r } };
      })),
    );
}

/**
 * Says, before anything else, when the set restore would use (or any other set) is damaged, and resolves
 * --at to the stamp of the set it names (what `list` shows, or the raw stamp). Returns that stamp.
 */
async function damagedSetsFirst(ctx: Ctx, root: string, backupDir: string, o: { user?: string[]; from?: string; at?: string }): Promise<string | undefined> {
  const sets = (await listBackups(backupDir)).filter((e) => e.kind === 'users');
  const chosen = o.at ? resolveAt(sets, o.at, 'user backup set') : undefined;
  let used: { name: string; problem: string | null } | undefined;
  if (o.from) {
    const p = path.resolve(root, o.from);
    const dir = fs.statSync(p, { throwIfNoEntry: false })?.isFile() ? path.dirname(p) : p;
    used = { name: path.basename(dir), problem: inspectSet(dir).problem };
  } else {
    const fits = (e: (typeof sets)[number]) => !!e.set && (!!e.set.damage || !e.set.problem) && (o.user?.length ? o.user.every((u) => e.set!.users.some((x) => x.username === u)) : !e.set.selection);
    const e = chosen ?? sets.find(fits);
    if (e) used = { name: e.name, problem: e.set?.problem ?? null };
  }
  if (used?.problem) ctx.log.warn(`${used.name}, the set this restore uses, is damaged: ${used.problem}.`);
  const others = sets.filter((e) => e.set?.problem && e.name !== used?.name);
  if (others.length) ctx.log.warn(`${others.length === 1 ? 'another set is' : `${others.length} other sets are`} damaged: ${others.map((e) => e.name).join(', ')} (\`scitex-data list users\`, \`scitex-data verify --backups\`).`);
  return chosen?.timestamp ?? o.at;
}
