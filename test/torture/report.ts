import fs from 'node:fs';

/** Trials per fault class: small in the normal suite (CI), large under `npm run torture`. */
export const TRIALS = Number(process.env.TORTURE_TRIALS ?? 3);

/** Records one fault class's outcome for the README's reliability table (when TORTURE_REPORT is set). */
export function record(klass: string, trials: number, passed: number, guarantee: string): void {
  const file = process.env.TORTURE_REPORT;
  if (file) fs.appendFileSync(file, JSON.stringify({ klass, trials, passed, guarantee }) + '\n');
}

/** Runs `n` trials of `fn`, records the class, and rethrows the first failure after all trials ran. */
export async function trials(klass: string, n: number, guarantee: string, fn: (i: number) => Promise<void> | void): Promise<void> {
  let passed = 0;
  let first: unknown;
  for (let i = 0; i < n; i++) {
    try {
      await fn(i);
      passed++;
    } catch (err) {
      first ??= err;
    }
  }
  record(klass, n, passed, guarantee);
  if (first) throw first;
}
