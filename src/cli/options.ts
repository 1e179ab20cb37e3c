import { InvalidArgumentError, Option } from 'commander';
import { parseDuration, type RetentionPolicy } from '../index.js';

/** Parses a non-negative integer flag value. */
export function intArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number.');
  return n;
}

/** Collects a repeatable flag into an array. */
export const collect = (value: string, prev: string[] = []): string[] => [...prev, value];

/** --backup-dir, shared by every command that reads or writes backups. */
export const backupDirOption = () => new Option('--backup-dir <dir>', 'backup directory (default data/db/backups, or $SCITEX_DATA_BACKUP_DIR)');

/** --identity: the age secret key that reads sealed backups (a file name; the key itself never on a command line). */
export const identityOption = () => new Option('--identity <file>', 'age secret key file, to read encrypted backups (sealed local ones, encrypted off-site copies)');

/** Parses a span flag value (30d, 12h, 2w, 6m, 1y). */
export function durationArg(value: string): number {
  const ms = parseDuration(value);
  if (ms === null) throw new InvalidArgumentError('expected a span like 30d, 12h, 2w, 6m or 1y.');
  return ms;
}
/** --python, global: the interpreter that evaluates the app's settings (a missing path forces the emulation). */
export const pythonOption = () =>
  new Option('--python <path>', "Python that evaluates the app's settings (default $SCITEX_DATA_PYTHON, .venv/bin/python, python3)");

/** The --keep-* retention flags. */
export const keepOptions = () => [
  new Option('--keep-last <n>', 'keep the newest N backups').argParser(intArg),
  new Option('--keep-within <span>', 'keep every backup younger than this (e.g. 14d, 36h, 2w, 6m, 1y)').argParser(durationArg),
  new Option('--keep-daily <n>', 'keep the newest backup of each of the last N days').argParser(intArg),
  new Option('--keep-weekly <n>', 'keep the newest backup of each of the last N weeks').argParser(intArg),
  new Option('--keep-monthly <n>', 'keep the newest backup of each of the last N months').argParser(intArg),
];

/** Retention policy from parsed --keep-* flags. */
export const policyFrom = (o: { keepLast?: number; keepWithin?: number; keepDaily?: number; keepWeekly?: number; keepMonthly?: number }): RetentionPolicy => ({ last: o.keepLast, within: o.keepWithin, daily: o.keepDaily, weekly: o.keepWeekly, monthly: o.keepMonthly });
