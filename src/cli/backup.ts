import { Argument, Option, type Command } from 'commander';
import { ENCRYPT_LOCAL_VAR, hasPolicy, runBackup, UsageError, type Compression, type DumpFormat } from '../index.js';
import { run } from './run.js';
import { backupDirOption, collect, intArg, keepOptions, policyFrom } from './options.js';
import { decisionsJson, printDecisions } from './prune.js';
import { reportCopies, settingsFor } from './copy.js';

interface BackupFlags {
  format: DumpFormat;
  backupDir?: string;
  user?: string[];
  compression: Compression;
  level?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  dryRun?: boolean;
  copy: boolean;
  encryptTo?: string[];
  encryptLocal?: boolean;
}

/** `scitex-data backup [db|users|all]`: the nightly job. */
export function registerBackup(program: Command): void {
  const cmd = program
    .command('backup')
    .description('back up the database (pg_dump or a SQLite snapshot) and/or the user directories')
    .addArgument(new Argument('[target]', 'what to back up').choices(['db', 'users', 'all']).default('all'))
    .addOption(new Option('--format <format>', 'PostgreSQL dump format').choices(['custom', 'plain']).default('custom'))
    .addOption(backupDirOption())
    .option('--user <name>', 'back up only this user (repeatable)', collect)
    .addOption(new Option('--compression <kind>', 'user archive compression').choices(['gzip', 'zstd', 'none']).default('gzip'))
    .addOption(new Option('--level <n>', 'compression level (gzip 1-9, zstd 1-19)').argParser(intArg));
  for (const o of keepOptions()) cmd.addOption(o);
  cmd.option('--no-copy', 'do not copy to the off-site destinations ($SCITEX_DATA_REMOTE…)');
  cmd.option('--encrypt-to <age1...>', 'encrypt the off-site copies to this age public key (repeatable; also $SCITEX_DATA_ENCRYPT_TO)', collect);
  cmd.option('--encrypt-local', 'encrypt the local backups to those keys too (also $SCITEX_DATA_ENCRYPT_LOCAL=1); restores then need --identity');
  cmd.option('--dry-run', 'show what would be backed up, write nothing').action(
    run('backup', async (ctx, target: 'db' | 'users' | 'all', o: BackupFlags) => {
      const cfg = ctx.config({ backupDir: o.backupDir });
      const keep = policyFrom(o);
      const offsite = settingsFor(o.encryptTo, false);
      const sealLocal = !!o.encryptLocal || offsite.encryptLocal;
      if (sealLocal && !offsite.recipients.length) {
        throw new UsageError(`${o.encryptLocal ? '--encrypt-local' : ENCRYPT_LOCAL_VAR} needs the public keys to encrypt to.`, 'Give --encrypt-to age1… (or SCITEX_DATA_ENCRYPT_TO); keep the secret key off this machine. Nothing was backed up.');
      }
      const r = await runBackup(cfg, ctx.log, {
        db: target !== 'users',
        users: target !== 'db',
        format: o.format,
        usernames: o.user,
        compression: o.compression,
        level: o.level,
        keep: hasPolicy(keep) ? keep : undefined,
        dryRun: o.dryRun,
        offsite: o.copy ? offsite : undefined,
        seal: sealLocal ? offsite.recipients : undefined,
      });
      if (r.dryRun) for (const p of r.plan) ctx.say(`would run: ${p}`);
      printDecisions(ctx, r.retention, 'deleted');
      if (r.partial) ctx.log.warn('The user set is PARTIAL: some files changed while they were read (exit 3). Re-run when the app is quieter.');
      reportCopies(ctx, r.copies);
      return { result: { dryRun: r.dryRun, plan: r.plan, artifacts: r.artifacts, set: r.usersSet?.set ?? null, partial: r.partial, pruned: r.pruned, retention: decisionsJson(r.retention), copies: r.copies }, exitCode: r.exitCode };
    }),
  );
}
