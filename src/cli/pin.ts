import type { Command } from 'commander';
import { pinBackup, unpinBackup, withLock } from '../index.js';
import { run } from './run.js';
import { backupDirOption } from './options.js';

/** `scitex-data pin|unpin <backup>`: a pinned backup is never pruned (e.g. the one taken before a risky deploy). */
export function registerPin(program: Command): void {
  program
    .command('pin')
    .description('pin a backup so that retention never deletes it (a .pinned marker beside it)')
    .argument('<backup>', 'the backup\'s name as `list` shows it (a file or users_<ts>)')
    .option('--note <text>', 'why it is pinned (shown by list, status and prune)', '')
    .addOption(backupDirOption())
    .action(
      run('pin', async (ctx, name: string, o: { note: string; backupDir?: string }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        const e = await withLock(cfg.root, 'pin', () => pinBackup(cfg.backupDir.value, name, o.note));
        ctx.say(`pinned ${e.name}${o.note ? ` (${o.note})` : ''}: retention will keep it until \`scitex-data unpin ${e.name}\``);
        return { result: { backup: e.name, path: e.path, pinned: true, note: o.note } };
      }),
    );
  program
    .command('unpin')
    .description('remove a pin: the backup is subject to retention again')
    .argument('<backup>', 'the backup\'s name as `list` shows it')
    .addOption(backupDirOption())
    .action(
      run('unpin', async (ctx, name: string, o: { backupDir?: string }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        const was = await withLock(cfg.root, 'unpin', () => unpinBackup(cfg.backupDir.value, name));
        ctx.say(was ? `unpinned ${name}` : `${name} was not pinned`);
        return { result: { backup: name, pinned: false, wasPinned: was } };
      }),
    );
}
