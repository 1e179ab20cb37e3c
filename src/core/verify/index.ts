import type { ResolvedConfig } from '../config/index.js';
import type { Logger } from '../logger.js';
import { backupChecks } from './backups.js';
import { deepChecks, postgresCheck } from './deep.js';
import { layoutChecks } from './layout.js';
import { leftoverCheck } from './leftovers.js';
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
  /** age secret key file: sealed backups are decrypted and read too. */
  identity?: string;
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
  const checks = await layoutChecks(cfg, { usePostgres: !opts.skipDb });
  if (!opts.skipDb) {
    const pg = await postgresCheck(cfg);
    if (pg) checks.push(pg);
  }
  checks.push(await leftoverCheck(cfg, !opts.skipDb));
  if (opts.backups || opts.deep) checks.push(...(await backupChecks(cfg, { maxAgeHours: opts.maxAgeHours ?? 26, identity: opts.identity })));
  if (opts.deep) checks.push(...(await deepChecks(cfg, opts.identity)));
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

export { metricsText, newestAges, writeMetrics, type MetricsExtra } from './metrics.js';
export { readRunState, recordRun, STATE_FILE, type RunRecord, type RunState } from './runstate.js';
