import type { Command } from 'commander';
import { diffSets } from '../index.js';
import { run } from './run.js';
import { backupDirOption, collect, identityOption, intArg } from './options.js';

/** `scitex-data diff <set> [other]`: what changed for which user, between two sets or a set and the live tree. */
export function registerDiff(program: Command): void {
  program
    .command('diff')
    .description('what changed for which user: between two user sets, or a set and the live data/users (headers only)')
    .argument('<set>', 'the older user set (users_<ts>)')
    .argument('[other]', 'the newer set; without it, the live tree')
    .option('--user <name>', 'only this user (repeatable)', collect)
    .option('--limit <n>', 'paths shown per user and change (0: all)', intArg, 20)
    .addOption(backupDirOption())
    .addOption(identityOption())
    .action(
      run('diff', async (ctx, from: string, to: string | undefined, o: { user?: string[]; limit: number; backupDir?: string; identity?: string }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        const d = await diffSets(cfg.root, cfg.backupDir.value, from, to ?? null, { users: o.user, identity: o.identity });
        ctx.say(`${d.from} -> ${d.to}`);
        const show = (mark: string, xs: string[]) => {
          for (const x of o.limit ? xs.slice(0, o.limit) : xs) ctx.say(`    ${mark} ${x}`);
          if (o.limit && xs.length > o.limit) ctx.say(`    ${mark} ... and ${xs.length - o.limit} more`);
        };
        for (const u of d.users) {
          if (u.state === 'same') ctx.say(`  ${u.username}: unchanged`);
          else if (u.state === 'only-old') ctx.say(`  ${u.username}: only in ${d.from}`);
          else if (u.state === 'only-new') ctx.say(`  ${u.username}: only in ${d.to}`);
          else {
            ctx.say(`  ${u.username}: ${u.added.length} added, ${u.changed.length} changed, ${u.removed.length} removed`);
            show('+', u.added);
            show('~', u.changed);
            show('-', u.removed);
          }
        }
        const changed = d.users.filter((u) => u.state !== 'same').length;
        ctx.say(`${changed} of ${d.users.length} user(s) differ`);
        return { result: { ...d } };
      }),
    );
}
