/** Terminal state the progress bars change, restored on every way out (success, error, signal). */

/** cli-progress turns line wrapping off (`ESC[?7l`) and hides the cursor while a bar is drawn. */
const RESTORE = '\x1b[?7h\x1b[?25h';

interface Bar {
  stop(): void;
}

const active = new Set<Bar>();
let touched = false;

/** Records a bar that is being drawn on stderr (a terminal). */
export function barStarted(bar: Bar): void {
  active.add(bar);
  touched = true;
}

/** Forgets a bar once stopped. */
export function barStopped(bar: Bar): void {
  active.delete(bar);
}

/** True while a bar is on screen: a line written now must first clear it. */
export const barShown = (): boolean => active.size > 0;

/**
 * Stops every bar still drawn (a run that failed mid-way never reached its done()), so the final lines
 * start on a clean line, and gives the terminal its wrapping and cursor back.
 */
export function settleTerminal(): void {
  for (const b of [...active]) {
    try {
      b.stop();
    } catch {
      /* a bar that cannot stop is cleared below */
    }
    active.delete(b);
  }
  if (touched && process.stderr.isTTY) {
    try {
      process.stderr.write('\r\x1b[2K' + RESTORE);
    } catch {
      /* the terminal went away */
    }
    touched = false;
  }
}

process.on('exit', settleTerminal);
