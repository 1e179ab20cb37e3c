import fs from 'node:fs';
import path from 'node:path';
import { anchorDir, partialName } from '../fs/index.js';

/** Name of the state file in the backup directory (hidden: the catalog never lists it). */
export const STATE_FILE = '.scitex-data-state.json';

/** The outcome of one run of a command, as the next `verify --metrics` (and `status`) reports it. */
export interface RunRecord {
  result: 'ok' | 'failed';
  exitCode: number;
  /** ISO times. */
  started: string;
  finished: string;
  durationMs: number;
  message: string;
}

/** The state file: the last run of each command (backup, prune, verify, restore ...). */
export interface RunState {
  format: 1;
  lastRun: Record<string, RunRecord>;
}

/** Reads the state file; an absent, unreadable or foreign file reads as empty (it only feeds reports). */
export function readRunState(backupDir: string): RunState {
  try {
    const st = fs.lstatSync(path.join(backupDir, STATE_FILE));
    if (!st.isFile()) return { format: 1, lastRun: {} };
    const parsed = JSON.parse(fs.readFileSync(path.join(backupDir, STATE_FILE), 'utf8')) as RunState;
    if (parsed && parsed.format === 1 && parsed.lastRun && typeof parsed.lastRun === 'object') return parsed;
  } catch {
    /* empty */
  }
  return { format: 1, lastRun: {} };
}

/**
 * Records a command's last run in the backup directory: written atomically (partial name, fsync, rename),
 * 0600, through a descriptor of the directory opened without following links. Synchronous, so that the
 * signal handler can record an interrupted run too. Does nothing when the backup directory does not exist
 * (a first `verify` must not create it); returns whether it wrote. Throws PlantedLinkError on a planted link.
 */
export function recordRun(backupDir: string, command: string, rec: RunRecord, base = path.dirname(backupDir)): boolean {
  if (!fs.existsSync(backupDir)) return false;
  // `base` is data/ when the backup directory is inside it: no link planted below data/ is followed.
  const dir = anchorDir(backupDir, base);
  try {
    const state = readRunState(dir.path);
    state.lastRun[command] = rec;
    const final = path.join(dir.path, STATE_FILE);
    const tmp = partialName(final);
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      try {
        fs.writeSync(fd, JSON.stringify(state, null, 2) + '\n');
        fs.fchmodSync(fd, 0o600);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, final);
    } catch (err) {
      fs.rmSync(tmp, { force: true }); // a full disk must not leave our temp name behind
      throw err;
    }
    const dfd = fs.openSync(dir.path, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
    return true;
  } finally {
    dir.close();
  }
}
