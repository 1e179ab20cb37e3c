import { Argument, type Command } from 'commander';
import { listBackups, localTime } from '../index.js';
import { human } from './format.js';
import { run } from './run.js';
import { backupDirOption } from './options.js';
import { contentsOf } from './ls.js';
import { destinationOption, remoteList } from './copy.js';

/** `scitex-data list [db|users|all]`: the backups with time, size, kind and checksum status. */
export function registerList(program: Command): void {
  program
    .command('list')
    .description('list the backups with local time, size, kind, checksum status and damaged sets')
    .addArgument(new Argument('[which]', 'db, users or all; or a backup\'s name to show its contents (as `ls`)').default('all'))
    .addOption(backupDirOption())
    .option('--remote', 'list the copies at an off-site destination instead (as `remote list`)')
    .addOption(destinationOption())
    .action(
      run('list', async (ctx, which: string, o: { backupDir?: string; remote?: boolean; destination?: string }) => {
        if (o.remote) return remoteList(ctx, o);
        const cfg = ctx.config({ backupDir: o.backupDir });
        if (!['db', 'users', 'all'].includes(which)) return contentsOf(ctx, cfg.backupDir.value, which);
        const all = await listBackups(cfg.backupDir.value);
        const rows = all.filter((e) => which === 'all' || (which === 'users' ? e.kind === 'users' : e.kind !== 'users'));
        if (!rows.length) ctx.say(`No backups in ${cfg.backupDir.value}.`);
        // Names carry UTC stamps; the operator reads local time with its offset (what `restore --at` accepts).
        for (const e of rows) {
          const when = e.time ? localTime(e.time) : '(undated)'.padEnd(26);
          const sum = e.checksum ? ctx.c.green('checksum') : ctx.c.yellow('NO CHECKSUM');
          const damaged = e.set?.damage ? ctx.c.red(` DAMAGED: ${e.set.damage.missing.length ? `${e.set.damage.missing.length} archive(s) missing` : ''}${e.set.damage.missing.length && e.set.damage.resized.length ? ', ' : ''}${e.set.damage.resized.length ? `${e.set.damage.resized.length} of another size` : ''} (scitex-data verify --backups explains)`) : e.set?.problem ? ctx.c.red(` DAMAGED: ${e.set.problem}`) : '';
          ctx.say(`${when}  ${e.kind.padEnd(8)} ${human(e.size).padStart(10)}  ${sum}${e.partial ? ctx.c.yellow(' PARTIAL') : ''}  ${e.name}${damaged}`);
        }
        return { result: { backupDir: cfg.backupDir.value, backups: rows.map((e) => ({ ...e, time: e.time?.toISOString() ?? null, localTime: e.time ? localTime(e.time) : null, damaged: !!e.set?.problem })) } };
      }),
    );
}
