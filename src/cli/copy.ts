import fsp from 'node:fs/promises';
import path from 'node:path';
import { Argument, Option, type Command } from 'commander';
import {
  copyBackups,
  ExitCode,
  fetchRemote,
  hasPolicy,
  pruneRemote,
  listRemote,
  ObjectStore,
  PARTIAL_MARK,
  offsiteSettings,
  UsageError,
  verifyRemote,
  type DestinationResult,
  type OffsiteSettings,
} from '../index.js';
import type { Ctx } from './context.js';
import { human } from './format.js';
import { run, type Action } from './run.js';
import { backupDirOption, collect, identityOption, keepOptions, policyFrom } from './options.js';

/** The off-site settings from the environment plus --encrypt-to; refuses when no destination is configured. */
export function settingsFor(encryptTo: string[] = [], required = true): OffsiteSettings {
  const s = offsiteSettings(process.env, encryptTo);
  if (required && !s.destinations.length) throw new UsageError('No off-site destination is configured.', 'Set SCITEX_DATA_REMOTE=s3://bucket/prefix?endpoint=… (and SCITEX_DATA_REMOTE_1 … _9 for more); see the README, "Off-site copies".');
  return s;
}

/** Prints one line per destination; returns the exit code (1 when any copy failed). */
export function reportCopies(ctx: Ctx, copies: DestinationResult[]): number {
  for (const c of copies) {
    if (c.error) ctx.log.warn(`copy to ${c.destination} FAILED: ${c.error}. The local backups are unaffected; re-run \`scitex-data copy\` to finish.`);
    else ctx.say(`copied to ${c.destination}: ${c.sent.length} sent (${human(c.bytesSent)}${c.resumed.length ? `, ${c.resumed.length} objects already there from an interrupted run` : ''}), ${c.present.length} already there`);
  }
  return copies.some((c) => c.error) ? ExitCode.FAILED : ExitCode.OK;
}

/** One destination by number (1-based, in configuration order). */
function pick(s: OffsiteSettings, n: string | undefined): Promise<ObjectStore> {
  const i = n === undefined ? 0 : Number(n) - 1;
  const d = s.destinations[i];
  if (!d) throw new UsageError(`No destination number ${n}; ${s.destinations.length} configured.`, 'Destinations are numbered from 1 in the order SCITEX_DATA_REMOTE, SCITEX_DATA_REMOTE_1 … _9.');
  return ObjectStore.open(d);
}

/** Options a restore gets for a backup taken from a destination. */
export interface RemoteRestoreFlags {
  from?: string;
  fromRemote?: string;
  identity?: string;
  destination?: string;
  backupDir?: string;
}

/** Adds --from-remote, --identity and --destination to a restore command. */
export function remoteRestoreOptions(cmd: Command): Command {
  return cmd
    .option('--from-remote <backup>', 'fetch this backup from an off-site destination (checked, decrypted) into staging, then restore it')
    .addOption(identityOption())
    .option('--destination <n>', 'with --from-remote: which destination (1 = the first configured)');
}

/**
 * Wraps a restore action: with --from-remote, the backup is fetched into a private staging directory beside the
 * backups (checked against its manifest and, decrypted, against its own checksum), restored through the normal path
 * with --from, and the staging directory removed afterwards.
 */
export function fromRemote<O extends RemoteRestoreFlags>(action: (ctx: Ctx, o: O) => ReturnType<Action>): (ctx: Ctx, o: O) => ReturnType<Action> {
  return async (ctx, o) => {
    if (!o.fromRemote) return action(ctx, o);
    if (o.from) throw new UsageError('--from and --from-remote exclude each other.');
    const cfg = ctx.config({ backupDir: o.backupDir });
    const store = await pick(settingsFor(), o.destination);
    // A partial name with our pid: an interrupt (or the next backup, after a kill) removes what was fetched.
    const staging = path.join(cfg.backupDir.value, `.remote-staging${PARTIAL_MARK}${process.pid}-0`);
    try {
      const r = await fetchRemote(store, o.fromRemote, staging, ctx.log, o.identity);
      ctx.say(`fetched ${o.fromRemote} from ${store.dest.label}, checked`);
      return await action(ctx, { ...o, from: r.path });
    } finally {
      store.close();
      await fsp.rm(staging, { recursive: true, force: true });
    }
  };
}

/** Off-site flag shared by list, verify and prune (`--remote`) and the `remote` commands. */
export const destinationOption = (): Option => new Option('--destination <n>', 'with --remote: which destination (1 = the first configured)');

/** `remote list` and `list --remote`: the backups at a destination, complete or interrupted. */
export const remoteList = async (ctx: Ctx, o: { destination?: string }) => {
  const store = await pick(settingsFor(), o.destination);
  try {
    const rows = await listRemote(store, { locks: true });
    if (!rows.length) ctx.say(`No backups at ${store.dest.label}.`);
    for (const r of rows) ctx.say(`${r.name.padEnd(40)} ${human(r.size).padStart(10)}  ${r.complete ? (r.manifest?.encrypted ? 'encrypted' : 'plain') : ctx.c.yellow('INCOMPLETE')}${r.lockedUntil ? `  locked until ${r.lockedUntil}` : ''}`);
    return { result: { destination: store.dest.label, backups: rows.map((r) => ({ name: r.name, complete: r.complete, size: r.size, encrypted: r.manifest?.encrypted ?? null, lockedUntil: r.lockedUntil ?? null })) } };
  } finally {
    store.close();
  }
};

/** `remote verify` and `verify --remote [--deep]`: sizes (and with --deep, contents) against the manifests. */
export const remoteVerify = async (ctx: Ctx, names: string[], o: { deep?: boolean; destination?: string }) => {
  const store = await pick(settingsFor(), o.destination);
  try {
    const r = await verifyRemote(store, { deep: o.deep, names });
    for (const p of r.problems) ctx.say(`${ctx.c.red('FAIL')}  ${p.key ?? p.name}: ${p.problem}`);
    ctx.say(`${r.checked.length} backups checked at ${store.dest.label}${o.deep ? ' (downloaded and re-hashed)' : ''}: ${r.problems.length} problems`);
    return { result: { destination: store.dest.label, ...r }, exitCode: r.problems.length ? ExitCode.PROBLEMS : ExitCode.OK };
  } finally {
    store.close();
  }
};

/** `remote prune` and `prune --remote`: the calendar rules at a destination. */
export const remotePrune = async (ctx: Ctx, o: { destination?: string; keepDaily?: number; keepWeekly?: number; keepMonthly?: number; dryRun?: boolean; yes?: boolean }) => {
  const policy = policyFrom(o);
  if (!hasPolicy(policy)) throw new UsageError('No retention rule given.', 'Pass at least one of --keep-daily, --keep-weekly, --keep-monthly.');
  const store = await pick(settingsFor(), o.destination);
  try {
    const now = new Date();
    let decisions = await pruneRemote(store, policy, ctx.log, { dryRun: true, now });
    const doomed = decisions.filter((d) => !d.keep);
    if (!o.dryRun && doomed.length) {
      for (const d of doomed) ctx.say(`will delete ${d.entry.name} at ${store.dest.label}`);
      if (!(await ctx.confirm(`Delete ${doomed.length} backup(s) at ${store.dest.label}?`, o.yes, 'delete remote backups'))) throw new UsageError('Nothing deleted.');
      decisions = await pruneRemote(store, policy, ctx.log, { now });
    }
    // Deletions are printed under --quiet too (cron mails them), as `prune` does.
    for (const d of decisions) {
      if (d.keep) ctx.say(`keep         ${d.entry.name}  (${d.reasons.join('; ')})`);
      else ctx.alert(`${(o.dryRun ? 'would delete' : 'deleted').padEnd(12)} ${d.entry.name} at ${store.dest.label}`);
    }
    return { result: { destination: store.dest.label, dryRun: !!o.dryRun, decisions: decisions.map((d) => ({ name: d.entry.name, keep: d.keep, reasons: d.reasons })) } };
  } finally {
    store.close();
  }
};

/** `scitex-data copy` and `scitex-data remote list|verify|fetch`: off-site copies. */
export function registerCopy(program: Command): void {
  program
    .command('copy')
    .description('send published backups that a destination lacks (all, or those named) to every off-site destination')
    .addArgument(new Argument('[backup...]', 'backup names (as `list` shows them); default all'))
    .option('--encrypt-to <age1...>', 'encrypt to this age public key (repeatable; also $SCITEX_DATA_ENCRYPT_TO)', collect)
    .addOption(backupDirOption())
    .action(
      run('copy', async (ctx, names: string[], o: { encryptTo?: string[]; backupDir?: string }) => {
        const s = settingsFor(o.encryptTo);
        const cfg = ctx.config({ backupDir: o.backupDir });
        const copies = await copyBackups(cfg.backupDir.value, s, ctx.log, names);
        return { result: { copies }, exitCode: reportCopies(ctx, copies) };
      }),
    );
  const remote = program.command('remote').description('the off-site copies: list, verify, fetch');
  remote
    .command('list')
    .description('list the backups at a destination, complete or interrupted')
    .option('--destination <n>', 'which destination (1 = the first configured)')
    .action(
      run('remote list', remoteList),
    );
  remote
    .command('verify')
    .description('check the copies at a destination against their manifests (no key needed); --deep downloads and re-hashes')
    .addArgument(new Argument('[backup...]', 'only these backups'))
    .option('--deep', 'download every object and compare its SHA-256')
    .option('--destination <n>', 'which destination (1 = the first configured)')
    .action(
      run('remote verify', remoteVerify),
    );
  const prune = remote
    .command('prune')
    .description('delete old complete backups at a destination by the same calendar rules as `prune` (credentials with delete rights)')
    .option('--destination <n>', 'which destination (1 = the first configured)');
  for (const opt of keepOptions()) prune.addOption(opt);
  prune
    .option('--dry-run', 'show what would be deleted, delete nothing')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      run('remote prune', remotePrune),
    );
  remote
    .command('fetch')
    .description('download one backup into a directory, checked (and decrypted) before it appears there; then restore it with --from')
    .argument('<backup>', 'backup name, as `remote list` shows it')
    .requiredOption('--to <dir>', 'staging directory (created private)')
    .option('--identity <file>', 'age secret key file, for encrypted copies')
    .option('--destination <n>', 'which destination (1 = the first configured)')
    .action(
      run('remote fetch', async (ctx, name: string, o: { to: string; identity?: string; destination?: string }) => {
        const store = await pick(settingsFor(), o.destination);
        try {
          const r = await fetchRemote(store, name, path.resolve(o.to), ctx.log, o.identity);
          ctx.say(`fetched ${name} into ${r.path}; restore it with \`scitex-data restore ${r.manifest.kind === 'users' ? 'users' : 'db'} --from ${r.path}\``);
          return { result: { path: r.path, kind: r.manifest.kind, encrypted: r.manifest.encrypted } };
        } finally {
          store.close();
        }
      }),
    );
}
