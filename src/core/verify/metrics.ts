import type { ResolvedConfig } from '../config/index.js';
import { databaseSeries, listBackups } from '../catalog/index.js';
import { writeFileAtomic } from '../fs/index.js';
import type { VerifyResult } from './index.js';
import { readRunState, type RunState } from './runstate.js';

/** What the metrics file carries besides the checks: the last runs and the newest backup of each kind. */
export interface MetricsExtra {
  state?: RunState;
  /** Age in seconds of the newest usable backup per kind (database, users). */
  newestAge?: Record<string, number>;
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

/** The result in the Prometheus node_exporter textfile format. */
export function metricsText(r: VerifyResult, now = new Date(), extra: MetricsExtra = {}): string {
  const states = ['pass', 'warn', 'fail'] as const;
  const lines = [
    '# HELP scitex_data_check_ok 1 when the check passed or warned, 0 when it failed.',
    '# TYPE scitex_data_check_ok gauge',
    ...r.checks.map((c) => `scitex_data_check_ok{check="${esc(c.name)}"} ${c.status === 'fail' ? 0 : 1}`),
    '# HELP scitex_data_check_status The outcome of each check: 1 for its status (pass, warn or fail), 0 for the others.',
    '# TYPE scitex_data_check_status gauge',
    ...r.checks.flatMap((c) => states.map((s) => `scitex_data_check_status{check="${esc(c.name)}",status="${s}"} ${c.status === s ? 1 : 0}`)),
    '# HELP scitex_data_verify_failed_checks Number of failed checks in the last verify run.',
    '# TYPE scitex_data_verify_failed_checks gauge',
    `scitex_data_verify_failed_checks ${r.failed}`,
    '# HELP scitex_data_verify_warned_checks Number of checks that warned in the last verify run.',
    '# TYPE scitex_data_verify_warned_checks gauge',
    `scitex_data_verify_warned_checks ${r.warned}`,
    '# HELP scitex_data_verify_timestamp_seconds When verify last ran.',
    '# TYPE scitex_data_verify_timestamp_seconds gauge',
    `scitex_data_verify_timestamp_seconds ${Math.floor(now.getTime() / 1000)}`,
  ];
  const figures = r.checks.flatMap((c) => Object.entries(c.metrics ?? {}));
  // Without --backups no check measured the ages: the extra figures (from the catalog) stand in.
  if (!figures.some(([k]) => k.startsWith('newest_age_seconds'))) {
    for (const [kind, age] of Object.entries(extra.newestAge ?? {})) figures.push([`newest_age_seconds{kind="${kind}"}`, age]);
  }
  const byName = new Map<string, string[]>();
  for (const [k, v] of figures) {
    const name = `scitex_data_backup_${k.split('{')[0]}`;
    byName.set(name, [...(byName.get(name) ?? []), `scitex_data_backup_${k} ${v}`]);
  }
  for (const [name, rows] of byName) lines.push(`# TYPE ${name} gauge`, ...rows);
  const runs = Object.entries(extra.state?.lastRun ?? {});
  if (runs.length) {
    const rows = (metric: string, help: string, f: (x: (typeof runs)[number][1]) => number) => [
      `# HELP scitex_data_last_run_${metric} ${help}`,
      `# TYPE scitex_data_last_run_${metric} gauge`,
      ...runs.map(([cmd, x]) => `scitex_data_last_run_${metric}{command="${esc(cmd)}"} ${f(x)}`),
    ];
    lines.push(
      ...rows('success', '1 when the last run of the command exited 0.', (x) => (x.result === 'ok' ? 1 : 0)),
      ...rows('exit_code', 'Exit code of the last run of the command.', (x) => x.exitCode),
      ...rows('duration_seconds', 'How long the last run of the command took.', (x) => Math.round(x.durationMs) / 1000),
      ...rows('timestamp_seconds', 'When the last run of the command finished.', (x) => Math.floor(Date.parse(x.finished) / 1000)),
    );
  }
  return lines.join('\n') + '\n';
}

/** The newest usable backup's age per kind, from the catalog (a complete full user set; no future date). */
export async function newestAges(cfg: ResolvedConfig, now = Date.now()): Promise<Record<string, number>> {
  const all = await listBackups(cfg.backupDir.value).catch(() => []);
  const placed = all.filter((e) => e.time && e.time.getTime() <= now + 5 * 60_000);
  const series = databaseSeries(cfg);
  const out: Record<string, number> = {};
  const db = placed.find((e) => e.kind === cfg.database.kind && e.series === series);
  const users = placed.find((e) => e.kind === 'users' && !e.partial && e.set && !e.set.problem && !e.set.selection);
  if (db) out.database = Math.max(0, Math.round((now - db.time!.getTime()) / 1000));
  if (users) out.users = Math.max(0, Math.round((now - users.time!.getTime()) / 1000));
  return out;
}

/** Writes the metrics file atomically (node_exporter must never read half a file). */
export async function writeMetrics(file: string, r: VerifyResult, cfg?: ResolvedConfig, extra: MetricsExtra = {}): Promise<void> {
  const full: MetricsExtra = cfg ? { state: readRunState(cfg.backupDir.value), newestAge: await newestAges(cfg), ...extra } : extra;
  await writeFileAtomic(file, metricsText(r, new Date(), full), 0o644);
}
