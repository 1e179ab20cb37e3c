import type { ResolvedConfig } from '../config/index.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { Logger } from '../logger.js';
import { backupChecks } from './backups.js';
import { deepChecks, postgresCheck } from './deep.js';
import { layoutChecks } from './layout.js';
import type { Check } from './types.js';

export type { Check, Status } from './types.js';

/** Options of `verify`. */
export interface VerifyOptions {
  backups?: boolean;
  deep?: boolean;
  maxAgeHours?: number;
  /** Skip the PostgreSQL connectivity check (for machines that only hold files). */
  skipDb?: boolean;
  fix?: boolean;
  dryRun?: boolean;
  strict?: boolean;
}

/** What `verify` found and, with --fix, repaired. */
export interface VerifyResult {
  checks: Check[];
  repairs: string[];
  failed: number;
  warned: number;
  ok: boolean;
}

async function runChecks(cfg: ResolvedConfig, opts: VerifyOptions): Promise<Check[]> {
  const checks = await layoutChecks(cfg);
  if (!opts.skipDb) {
    const pg = await postgresCheck(cfg);
    if (pg) checks.push(pg);
  }
  if (opts.backups || opts.deep) checks.push(...(await backupChecks(cfg, { maxAgeHours: opts.maxAgeHours ?? 26 })));
  if (opts.deep) checks.push(...(await deepChecks(cfg)));
  return checks;
}

/** Runs the checks; with `fix` applies the safe repairs (or lists them with dryRun) and checks again. */
export async function verify(cfg: ResolvedConfig, log: Logger, opts: VerifyOptions = {}): Promise<VerifyResult> {
  let checks = await runChecks(cfg, opts);
  const repairs: string[] = [];
  if (opts.fix) {
    for (const c of checks) if (c.status !== 'pass' && c.fix) repairs.push(...c.fix.describe);
    if (!opts.dryRun && repairs.length) {
      for (const c of checks) if (c.status !== 'pass' && c.fix) await c.fix.apply();
      for (const r of repairs) log.debug(`repaired: ${r}`);
      checks = await runChecks(cfg, opts);
    }
  }
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  return { checks, repairs, failed, warned, ok: failed === 0 && (!opts.strict || warned === 0) };
}

/** The result in the Prometheus node_exporter textfile format. */
export function metricsText(r: VerifyResult, now = new Date()): string {
  const lines = [
    '# HELP scitex_data_check_ok 1 when the check passed or warned, 0 when it failed.',
    '# TYPE scitex_data_check_ok gauge',
    ...r.checks.map((c) => `scitex_data_check_ok{check="${c.name}"} ${c.status === 'fail' ? 0 : 1}`),
    '# HELP scitex_data_verify_failed_checks Number of failed checks in the last verify run.',
    '# TYPE scitex_data_verify_failed_checks gauge',
    `scitex_data_verify_failed_checks ${r.failed}`,
    '# HELP scitex_data_verify_timestamp_seconds When verify last ran.',
    '# TYPE scitex_data_verify_timestamp_seconds gauge',
    `scitex_data_verify_timestamp_seconds ${Math.floor(now.getTime() / 1000)}`,
  ];
  const figures = r.checks.flatMap((c) => Object.entries(c.metrics ?? {}));
  const byName = new Map<string, string[]>();
  for (const [k, v] of figures) {
    const name = `scitex_data_backup_${k.split('{')[0]}`;
    byName.set(name, [...(byName.get(name) ?? []), `scitex_data_backup_${k} ${v}`]);
  }
  for (const [name, rows] of byName) lines.push(`# TYPE ${name} gauge`, ...rows);
  return lines.join('\n') + '\n';
}

/** Writes the metrics file atomically (node_exporter must never read half a file). */
export async function writeMetrics(file: string, r: VerifyResult): Promise<void> {
  await writeFileAtomic(file, metricsText(r), 0o644);
}
