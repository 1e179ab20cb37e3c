import fs from 'node:fs';
import path from 'node:path';
import { anchorDir, dataDir, PARTIAL_MARK, removeScratch, sqliteDir } from '../index.js';
import { settleTerminal } from './terminal.js';

/** Exit codes of a run stopped by a signal (the shell's 128 + signal number). */
export const SIGNAL_EXIT = { SIGINT: 130, SIGTERM: 143 } as const;

/** What the signal handler needs to know about the command running now. */
export interface CurrentRun {
  command: string;
  json: boolean;
  root: string;
  /** The backup directory once the configuration is resolved. */
  backupDir?: string;
  /** Called with the interruption's exit code and message (records the run, runs --on-failure). */
  finish?: (exitCode: number, message: string) => void;
  /** Set once the run printed its final output: a late signal must not print a second document. */
  printed?: boolean;
}

let current: CurrentRun | undefined;

/** Registers the run the handler reports on. */
export function setCurrentRun(r: CurrentRun | undefined): void {
  current = r;
}

/** Children of this process (pg_dump, tar, zstd ...), from /proc. */
function childPids(): number[] {
  const pids: number[] = [];
  try {
    for (const t of fs.readdirSync(`/proc/${process.pid}/task`)) {
      const text = fs.readFileSync(`/proc/${process.pid}/task/${t}/children`, 'utf8');
      for (const p of text.split(/\s+/).filter(Boolean)) pids.push(Number(p));
    }
  } catch {
    /* not Linux, or the task list changed: best effort */
  }
  return pids;
}

/**
 * Removes the partial files and directories this process started (their names carry our pid) in the
 * directories scitex-data writes temporaries into. Each directory is opened without following links and
 * its entries removed through that descriptor, so a planted link never redirects the removal.
 */
function removeOurPartials(root: string, dirs: string[]): string[] {
  const mark = `${PARTIAL_MARK}${process.pid}-`;
  const removed: string[] = [];
  for (const dir of new Set(dirs)) {
    let d;
    try {
      // No link below data/ is followed (the app's user writes there); data/ itself is opened without following.
      d = anchorDir(dir, dataDir(root));
    } catch {
      continue;
    }
    try {
      for (const n of fs.readdirSync(d.path)) {
        if (!n.startsWith('.') || !n.includes(mark)) continue;
        // A child killed a moment ago may still be creating a file inside: retry ENOTEMPTY.
        fs.rmSync(path.join(d.path, n), { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
        removed.push(path.join(dir, n));
      }
    } catch {
      /* keep going: the next run removes what is left */
    } finally {
      d.close();
    }
  }
  return removed;
}

function onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
  // Everything below is synchronous: no other part of the run moves (or publishes) meanwhile.
  const code = SIGNAL_EXIT[signal];
  settleTerminal();
  for (const pid of childPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  // Scratch directories holding plaintext (decrypted backups) go first, whatever the command.
  const scratch = removeScratch();
  const r = current;
  if (!r) process.exit(code);
  const dirs = [dataDir(r.root), sqliteDir(r.root), ...(r.backupDir ? [r.backupDir] : [])];
  const removed = [...scratch, ...removeOurPartials(r.root, dirs)];
  const what = r.command.startsWith('backup') ? 'no unfinished backup was published' : 'what it had started is left for a re-run to finish or undo';
  const message = `${r.command} interrupted by ${signal}: ${what}; ${removed.length ? `${removed.length} partial file(s) removed` : 'no partial files left'}.`;
  if (!r.printed) {
    r.printed = true;
    if (r.json) process.stdout.write(JSON.stringify({ ok: false, command: r.command, exitCode: code, error: { message, hint: 'Re-run the command.' }, warnings: [] }, null, 2) + '\n');
    else process.stderr.write(`interrupted: ${message}\n`);
  }
  try {
    r.finish?.(code, message);
  } catch {
    /* reporting must not keep a stopped run alive */
  }
  removeOurPartials(r.root, dirs);
  process.exit(code);
}

/** Installs the SIGINT/SIGTERM handlers (once). */
export function handleSignals(): void {
  process.once('SIGINT', () => onSignal('SIGINT'));
  process.once('SIGTERM', () => onSignal('SIGTERM'));
}
