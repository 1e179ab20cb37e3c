import type { Command } from 'commander';
import { describeConfig, type Sourced } from '../index.js';
import { run } from './run.js';

/** `scitex-data config`: print the resolved configuration with its sources, password masked. */
export function registerConfig(program: Command): void {
  program
    .command('config')
    .description('show the resolved configuration (database, paths) and where each value came from')
    .option('--backup-dir <dir>', 'backup directory (default data/db/backups, or $SCITEX_DATA_BACKUP_DIR)')
    .action(
      run('config', async (ctx, opts: { backupDir?: string }) => {
        const cfg = ctx.config({ backupDir: opts.backupDir });
        const d = describeConfig(cfg);
        const from = (s: Sourced<unknown>) => ctx.c.dim(`(${s.source}${s.variable ? ' ' + s.variable : ''})`);
        ctx.say(`root         ${cfg.root}`);
        const st = cfg.settings;
        ctx.say(st.source === 'python' ? `settings     ${st.module}, evaluated by python: ${st.python} (uid ${st.uid})` : `settings     ${st.module}, emulated: ${st.reason}`);
        ctx.say(`env          ${cfg.env.value} ${from(cfg.env)}`);
        const db = cfg.database;
        if (db.kind === 'sqlite') {
          ctx.say(`database     SQLite ${db.path} ${from(db.switch)}`);
        } else {
          ctx.say(`database     PostgreSQL`);
          ctx.say(`  name       ${db.name.value} ${from(db.name)}`);
          ctx.say(`  user       ${db.user.value} ${from(db.user)}`);
          ctx.say(`  password   ${db.password.value ? '********' : '(none)'} ${from(db.password)}`);
          ctx.say(`  host       ${db.host.value} ${from(db.host)}`);
          ctx.say(`  port       ${db.port.value} ${from(db.port)}`);
        }
        ctx.say(`backups      ${cfg.backupDir.value} ${from(cfg.backupDir)}`);
        return { result: { config: d } };
      }),
    );
}
