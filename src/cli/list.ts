import { Argument, type Command } from 'commander';
import { listBackups } from '../index.js';
import { human } from './context.js';
import { run } from './run.js';
import { backupDirOption } from './options.js';

/** `scitex-data list [db|users|all]`: the backups with time, size, kind and checksum status. */
export function registerList(program: Command): void {
  program
    .command('list')
    .description('list the backups with time, size, kind and whether their checksum is recorded')
    .addArgument(new Argument('[which]', 'which backups').choices(['db', 'users', 'all']).default('all'))
    .addOption(backupDirOption())
    .action(
      run('list', async (ctx, which: string, o: { backupDir?: string }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        const all = await listBackups(cfg.backupDir.value);
        const rows = all.filter((e) => which === 'all' || (which === 'users' ? e.kind === 'users' : e.kind !== 'users'));
        if (!rows.length) ctx.say(`No backups in ${cfg.backupDir.value}.`);
        for (const e of rows) {
          const when = e.time ? e.time.toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '(undated)           ';
          const sum = e.checksum ? ctx.c.green('checksum') : ctx.c.yellow('NO CHECKSUM');
          ctx.say(`${when}  ${e.kind.padEnd(8)} ${human(e.size).padStart(10)}  ${sum}${e.partial ? ctx.c.yellow(' PARTIAL') : ''}  ${e.name}`);
        }
        return { result: { backupDir: cfg.backupDir.value, backups: rows.map((e) => ({ ...e, time: e.time?.toISOString() ?? null })) } };
      }),
    );
}
