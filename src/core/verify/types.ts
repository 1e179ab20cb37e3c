/** A check's outcome. */
export type Status = 'pass' | 'warn' | 'fail';

/** One named check: what it found and how to fix it; `fix` is set only where a repair is safe. */
export interface Check {
  name: string;
  status: Status;
  found: string;
  hint?: string;
  /** A safe repair (creates, chmods or appends; never moves, deletes or rewrites data). */
  fix?: { describe: string[]; apply: () => Promise<void> };
  /** Figures for --metrics. */
  metrics?: Record<string, number>;
}

/** Shorthands for building checks. */
export const pass = (name: string, found: string, extra: Partial<Check> = {}): Check => ({ name, status: 'pass', found, ...extra });
/** A warning. */
export const warn = (name: string, found: string, hint: string, extra: Partial<Check> = {}): Check => ({ name, status: 'warn', found, hint, ...extra });
/** A failure. */
export const fail = (name: string, found: string, hint: string, extra: Partial<Check> = {}): Check => ({ name, status: 'fail', found, hint, ...extra });

/** "a, b, c and 4 more" for messages. */
export function firstFew(items: string[], n = 3): string {
  return items.length <= n ? items.join(', ') : `${items.slice(0, n).join(', ')} and ${items.length - n} more`;
}
