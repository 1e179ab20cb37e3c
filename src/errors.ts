/** Exit codes, documented in the README; only the CLI turns them into process exits. */
export const ExitCode = {
  OK: 0,
  FAILED: 1,
  USAGE: 2,
  PROBLEMS: 3,
  LOCKED: 4,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure an operator can act on: what failed (message) and what to do next (hint). */
export class ScitexError extends Error {
  readonly hint: string | undefined;
  readonly exitCode: ExitCodeValue;
  constructor(message: string, hint?: string, exitCode: ExitCodeValue = ExitCode.FAILED, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ScitexError';
    this.hint = hint;
    this.exitCode = exitCode;
  }
}

/** Bad flags, bad names, bad configuration: exit 2. */
export class UsageError extends ScitexError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, hint, ExitCode.USAGE, options);
    this.name = 'UsageError';
  }
}

/** Another scitex-data run holds the lock: exit 4. */
export class LockedError extends ScitexError {
  constructor(message: string, hint?: string) {
    super(message, hint, ExitCode.LOCKED);
    this.name = 'LockedError';
  }
}

/** Turns an unknown thrown value into a ScitexError, keeping the cause for --debug. */
export function asScitexError(err: unknown): ScitexError {
  if (err instanceof ScitexError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e === 'object' && typeof e.code === 'string') {
    const where = e.path ? ` (${e.path})` : '';
    const hints: Record<string, string> = {
      ENOSPC: 'The disk is full: free space or use --backup-dir on another volume, then re-run.',
      EDQUOT: 'The disk quota is exhausted: free space, then re-run.',
      EACCES: 'Permission denied: run as the user that owns the data directory.',
      EPERM: 'Operation not permitted: run as the user that owns the data directory.',
      ENOENT: 'A path does not exist: check --root.',
      EROFS: 'The filesystem is read-only: remount it read-write or choose another directory.',
    };
    return new ScitexError(`${e.code}: ${e.message.replace(/^[A-Z]+: /, '')}${e.message.includes(String(e.path)) ? '' : where}`, hints[e.code] ?? 'Re-run with --debug for details.', ExitCode.FAILED, { cause: err });
  }
  const msg = err instanceof Error ? err.message : String(err);
  return new ScitexError(msg, 'Re-run with --debug for details.', ExitCode.FAILED, { cause: err });
}
