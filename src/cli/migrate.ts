import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ExitCode, layoutChecks, migrationState, planMigration, rollbackMigration, runMigration, ScitexError, UsageError, withLock, type Plan } from '../index.js';
import type { Ctx } from './context.js';
import { human } from './format.js';
import { run } from './run.js';
import { collect } from './options.js';

interface MigrateFlags {
  dryRun?: boolean;
  yes?: boolean;
  rollback?: boolean;
  user?: string[];
  usersFrom?: string;
  system?: string[];
  settings: boolean;
}

function printPlan(ctx: Ctx, plan: Plan): void {
  for (const s of plan.steps) {
    if (s.from) continue; // the second half of a set-aside user's move, printed with the first
    const size = s.size === null ? '' : ` (${human(s.size)})`;
    const how = s.identical ? ' [identical copy exists: source dropped]' : s.crossDevice ? ' [copy + verify across filesystems]' : '';
    const dst = s.aside ? `${plan.steps.find((x) => x.from === s.src)?.dst} (first set aside as ${s.dst}: the new layout needs ${s.src})` : s.dst;
    ctx.say(s.what === 'rmdir' ? `  remove empty ${s.src}/` : `  ${s.what.padEnd(10)} ${s.src} -> ${dst}${size}${how}`);
  }
  for (const m of plan.modeChanges ?? []) ctx.say(`  ${ctx.c.dim('mode')}       ${m}`);
  for (const l of plan.left) ctx.say(`  ${ctx.c.dim('stays')}      ${l.entry}: ${l.reason}`);
  for (const u of plan.unknown) ctx.say(`  ${ctx.c.yellow('unknown')}    ${u.entry}: ${u.reason}`);
  for (const e of plan.settings) ctx.say(e.diff.split('\n').map((l) => '  ' + l).join('\n'));
  if (plan.gitignore !== 'unchanged') ctx.say(`  .gitignore: data block ${plan.gitignore === 'added' ? 'appended' : 'refreshed'} (a backup is kept)`);
  for (const w of plan.warnings) ctx.log.warn(w);
}

/** `scitex-data migrate`: move an old tree into the new layout, once, resumably. */
export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('move an old data/ tree into the new layout (journaled: a re-run finishes an interrupted one)')
    .option('--dry-run', 'print the full plan, change nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--rollback', 'put an interrupted or completed migration back to the old layout')
    .option('--user <name>', 'treat data/<name> as a user directory (repeatable)', collect)
    .option('--users-from <file>', 'treat the usernames in <file> (one per line) as users')
    .option('--system <name>', 'treat data/<name> as the app\'s own folder, not a user (repeatable)', collect)
    .option('--no-settings', 'do not update config/settings/*.py')
    .action(
      run('migrate', async (ctx, o: MigrateFlags) => {
        const cfg = ctx.config();
        if (!fs.existsSync(path.join(cfg.root, 'data'))) throw new UsageError(`${path.join(cfg.root, 'data')} does not exist.`, 'Check --root.');
        const users = [...(o.user ?? [])];
        if (o.usersFrom) users.push(...fs.readFileSync(path.resolve(o.usersFrom), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean));
        // A dry run only reads, so it does not take the lock (and creates no lock file).
        const locked = <T>(fn: () => Promise<T>) => (o.dryRun ? fn() : withLock(cfg.root, 'migrate', fn));
        // Crash-test seam: die without any cleanup right after the n-th journal record.
        const killAfter = Number(process.env.SCITEX_DATA_TEST_KILL_AFTER ?? 0);
        const onRecord = (n: number) => {
          if (killAfter && n >= killAfter) process.kill(process.pid, 'SIGKILL');
        };
        return locked(async () => {
          const { state, journal } = migrationState(cfg.root);
          if (o.rollback) {
            const dry = await rollbackMigration(cfg, ctx.log, { dryRun: true });
            ctx.say(`${o.dryRun ? 'would move back' : 'moving back'} ${dry.undone} entr${dry.undone === 1 ? 'y' : 'ies'}${dry.restored.length ? ` and restore ${dry.restored.join(', ')} from their backups` : ''}`);
            if (o.dryRun) return { result: { rollback: true, dryRun: true, ...dry } };
            if (!(await ctx.confirm('Roll the migration back?', o.yes, 'roll back the migration'))) throw new UsageError('Nothing was changed.');
            const r = await rollbackMigration(cfg, ctx.log, { onRecord });
            ctx.say(`rolled back: ${r.undone} entries moved back to the old layout`);
            return { result: { rollback: true, dryRun: false, ...r } };
          }
          if (journal?.undone.size) throw new ScitexError('A rollback of the migration was interrupted.', 'Finish it first: `scitex-data migrate --rollback`.');
          let plan: Plan;
          if (state === 'in-progress') {
            plan = journal!.plan;
            ctx.say(`Resuming an interrupted migration: ${journal!.done.size} of ${plan.steps.length} moves were recorded as done.`);
            if (o.dryRun) {
              printPlan(ctx, plan);
              return { result: { dryRun: true, resuming: true, plan } };
            }
          } else {
            plan = await planMigration(cfg, { users, system: o.system, noSettings: !o.settings, sizes: !!o.dryRun || !o.yes });
            const nothing = !plan.steps.length && !plan.settings.length && plan.gitignore === 'unchanged';
            if (nothing && !plan.conflicts.length) {
              ctx.say(state === 'complete' ? 'Already migrated: nothing to do.' : 'Nothing to migrate: no old-layout entries found.');
              for (const u of plan.unknown) ctx.say(`  unknown    ${u.entry}: ${u.reason}`);
              return { result: { dryRun: !!o.dryRun, nothingToDo: true, plan } };
            }
            ctx.say(`Migration plan (${plan.steps.length} moves, ${plan.users.length} users). Stop the app before migrating.`);
            printPlan(ctx, plan);
            if (plan.conflicts.length) {
              for (const c of plan.conflicts) ctx.log.warn(c);
              throw new ScitexError(`The plan has ${plan.conflicts.length} problem(s); nothing was moved. First: ${plan.conflicts[0]}`, 'Fix them, then re-run (see the warnings above).', plan.conflicts.some((c) => c.startsWith('--user')) ? ExitCode.USAGE : ExitCode.FAILED);
            }
            if (o.dryRun) return { result: { dryRun: true, plan } };
            if (!(await ctx.confirm(`Move ${plan.steps.length} entries now?`, o.yes, 'migrate'))) throw new UsageError('Nothing was changed.');
          }
          const r = await runMigration(cfg, ctx.log, plan, onRecord);
          ctx.say(`Migrated: ${r.moved} moves${r.resumed ? ' (resumed)' : ''}.`);
          for (const e of r.edited) ctx.say(`updated ${e.file}${e.backup ? ` (backup: ${e.backup})` : ''}`);
          const checks = await layoutChecks(cfg);
          for (const c of checks) ctx.say(`${c.status.toUpperCase().padEnd(4)}  ${c.name}  ${c.found}`);
          const failed = checks.filter((c) => c.status === 'fail');
          return { result: { dryRun: false, plan, ...r, checks: checks.map(({ fix: _fix, ...c }) => c) }, exitCode: failed.length ? ExitCode.PROBLEMS : ExitCode.OK };
        });
      }),
    );
}
