import type { Command } from 'commander';
import { describePolicy, ExitCode, status, type StatusReport } from '../index.js';
import { type Ctx } from './context.js';
import { human } from './format.js';
import { run } from './run.js';
import { backupDirOption, intArg, keepOptions, policyFrom } from './options.js';

const age = (h: number) => (h >= 48 ? `${(h / 24).toFixed(1)} d` : `${h.toFixed(1)} h`);
const secs = (ms: number | null) => (ms === null ? '?' : ms >= 60_000 ? `${(ms / 60_000).toFixed(1)} min` : `${(ms / 1000).toFixed(1)} s`);

function print(ctx: Ctx, r: StatusReport, out: (line: string) => void): void {
  const { c } = ctx;
  out(`Backups in ${r.backupDir} (stale after ${r.maxAgeHours} h)`);
  const rows = r.kinds.map((k) => [
    k.kind,
    k.newest ? `${k.newest.name}${k.newest.pinned ? ' (pinned)' : ''}` : '-',
    k.newest ? age(k.newest.ageHours) : '-',
    k.newest ? human(k.newest.size) : '-',
    String(k.backups),
    k.state,
  ]);
  const head = ['KIND', 'NEWEST GOOD BACKUP', 'AGE', 'SIZE', 'COUNT', 'STATE'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const paint = (s: string) => (s === 'ok' ? c.green(s) : s === 'extra' ? c.dim(s) : c.red(s.toUpperCase()));
  out('  ' + head.map((h, i) => h.padEnd(w[i]!)).join('  '));
  for (const x of rows) out('  ' + x.map((v, i) => (i === 5 ? paint(v) : i === 2 || i === 3 || i === 4 ? v.padStart(w[i]!) : v.padEnd(w[i]!))).join('  '));
  out('Last runs');
  if (!r.lastRuns.length) out('  no run recorded yet (the first backup, prune or verify records one in the backup directory)');
  for (const l of r.lastRuns) {
    const res = l.result === 'ok' ? c.green('ok') : c.red(`${l.result}${l.exitCode !== null ? ` (exit ${l.exitCode})` : ''}`);
    out(`  ${l.command.padEnd(14)} ${res}  ${l.finished ?? '?'}  took ${secs(l.durationMs)}${l.result !== 'ok' && l.message ? `  ${l.message}` : ''}`);
  }
  if (r.lastRuns.length && !r.lastRuns.some((l) => l.command === 'verify')) out('  verify         never recorded: run `scitex-data verify --backups` (cron)');
  if (!r.retention) out('Retention: no policy known (pass --keep-* here, or run backup/prune with --keep-* once)');
  else {
    const d = r.retention.wouldDelete;
    out(`Retention (${describePolicy(r.retention.policy)}, from ${r.retention.source}): ${d.length ? `the next run deletes ${d.length} backup(s), ${human(d.reduce((t, x) => t + x.size, 0))}` : 'the next run deletes nothing'}`);
    for (const x of d) out(`  would delete ${x.name} (${human(x.size)})`);
  }
  const lo = r.leftovers;
  out(`Leftovers of restores: ${lo.items.length ? `${lo.items.length}, ${human(lo.totalBytes)} (\`scitex-data clean --older-than 30d\`)` : 'none'}`);
  const now = Date.now();
  for (const l of lo.items) out(`  ${l.kind.padEnd(11)} ${human(l.size).padStart(10)}  ${l.time ? age((now - l.time.getTime()) / 3_600_000).padStart(8) + ' old' : '  undated'}  ${l.path ?? l.name}`);
  for (const n of lo.notes) out(`  ${c.yellow('note:')} ${n}`);
  out(r.problems.length ? c.red(`${r.problems.length} problem(s): ${r.problems.join('; ')}`) : c.green('all good'));
}

/** `scitex-data status`: one screen answering "are the backups fine, and what is kept where". */
export function registerStatus(program: Command): void {
  const cmd = program
    .command('status')
    .description('per kind the newest good backup, its age and size; the last runs; what retention deletes next; leftovers (exit 3 when stale or failing)')
    .option('--max-age <hours>', 'a backup older than this is stale', intArg, 26)
    .option('--skip-db', 'do not connect to PostgreSQL (pre-restore databases are then not listed)')
    .addOption(backupDirOption());
  for (const o of keepOptions()) cmd.addOption(o);
  cmd.action(
    run('status', async (ctx, o: Parameters<typeof policyFrom>[0] & { maxAge: number; skipDb?: boolean; backupDir?: string }) => {
      const cfg = ctx.config({ backupDir: o.backupDir });
      const r = await status(cfg, { maxAgeHours: o.maxAge, policy: policyFrom(o), pg: !o.skipDb });
      // The report is the point of the command: a problem is printed under --quiet too.
      if (!ctx.globals.json && (!ctx.globals.quiet || r.problems.length)) print(ctx, r, (l) => process.stdout.write(l + '\n'));
      const leftovers = { ...r.leftovers, items: r.leftovers.items.map((l) => ({ ...l, time: l.time?.toISOString() ?? null })) };
      return { result: { ...r, leftovers }, exitCode: r.problems.length ? ExitCode.PROBLEMS : ExitCode.OK };
    }),
  );
}
