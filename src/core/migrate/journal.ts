import fs from 'node:fs';
import path from 'node:path';
import { ScitexError } from '../../errors.js';
import { dataDir } from '../layout/index.js';
import type { Plan } from './types.js';

/** A record of the journal (one JSON object per line). */
export type JournalRecord =
  | { t: 'plan'; plan: Plan }
  | { t: 'done'; id: number }
  | { t: 'edited'; file: string; backup: string }
  | { t: 'complete'; at: string }
  | { t: 'undone'; id: number }
  | { t: 'rolledback'; at: string };

/** State read back from a journal. */
export interface JournalState {
  plan: Plan;
  done: Set<number>;
  undone: Set<number>;
  edited: { file: string; backup: string }[];
  complete: boolean;
}

/** The journal's path: under data/, so it moves with nothing and survives with the tree. */
export const journalPath = (root: string): string => path.join(dataDir(root), '.scitex-data-migrate.journal');

const SRC = /^(scitex_cloud_dev\.db(-wal|-shm|-journal)?|data\/[^/]+|data\/backups\/[^/]+)$/;
const DST = /^(|data\/db\/(sqlite|backups|migrations_archive)\/[^/]+|data\/users\/[^/]+|data\/\.scitex-data-aside-[^/]+)$/;
const EDITED = /^(\.gitignore|config\/settings\/[^/]+\.py)$/;
/**
 * Where migrate keeps the original of a file it edits: under the backup directory, which the data block
 * ignores and which is private, so `git status` shows only the edited files and no copy of a settings file
 * (which may hold secrets) is readable by others. Older runs wrote `<file>.scitex-data-bak-<ts>` next to it.
 */
export const safetyCopyPath = (file: string, ts: string): string => `data/db/backups/pre-migrate_${ts}/${file}`;
const isSafetyCopyOf = (backup: string, file: string): boolean => /^data\/db\/backups\/pre-migrate_\d{8}_\d{6}\//.test(backup) ? backup.replace(/^data\/db\/backups\/pre-migrate_\d{8}_\d{6}\//, '') === file : backup.startsWith(`${file}.scitex-data-bak-`);
const clean = (p: string) => typeof p === 'string' && !p.split('/').some((x) => x === '..' || x === '.');

/** Why a journal's record cannot have been written by migrate (it names a path migrate never moves or edits). */
function recordProblem(r: JournalRecord): string | null {
  if (r.t === 'plan') {
    for (const s of r.plan.steps ?? []) {
      if (!clean(s.src) || !clean(s.dst) || !SRC.test(s.src) || !DST.test(s.dst) || (s.from !== undefined && !SRC.test(s.from))) return `a move ${JSON.stringify(s.src)} -> ${JSON.stringify(s.dst)}`;
    }
  } else if (r.t === 'edited' && (!clean(r.file) || !EDITED.test(r.file) || (r.backup !== '' && !isSafetyCopyOf(r.backup, r.file)) || !clean(r.backup))) {
    return `an edit of ${JSON.stringify(r.file)}`;
  }
  return null;
}

/**
 * Throws unless the journal is a regular file with one link, owned by whoever runs scitex-data: data/ is
 * writable by the app, and a journal planted there would make a root run move or truncate any path.
 */
function assertOwnJournal(st: fs.Stats, file: string): void {
  const me = process.getuid?.() ?? st.uid;
  if (!st.isFile() || st.nlink !== 1 || st.uid !== me) {
    throw new ScitexError(
      `${file} is ${!st.isFile() ? 'not a regular file' : st.nlink !== 1 ? 'hard-linked elsewhere' : `owned by uid ${st.uid}, not by the user running scitex-data (uid ${me})`}: refusing to trust or write it.`,
      'Run scitex-data as the user that started the migration, or inspect the file and remove it.',
    );
  }
}

/** Reads the journal; null when there is none. A torn last line (power loss mid-append) is ignored. */
export function readJournal(root: string): JournalState | null {
  let text: string;
  let fd: number;
  try {
    fd = fs.openSync(journalPath(root), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ScitexError(`Cannot read ${journalPath(root)} (${(err as NodeJS.ErrnoException).code}): refusing to trust it.`, 'A symlink there is not ours: inspect it and remove it.');
  }
  try {
    assertOwnJournal(fs.fstatSync(fd), journalPath(root));
    text = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  let state: JournalState | null = null;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let r: JournalRecord;
    try {
      r = JSON.parse(line) as JournalRecord;
    } catch {
      continue;
    }
    const problem = recordProblem(r);
    if (problem) throw new ScitexError(`${journalPath(root)} holds ${problem}, which migrate never makes: refusing to trust it.`, 'Inspect the journal; remove it only if no migration is half done.');
    if (r.t === 'plan') state = { plan: r.plan, done: new Set(), undone: new Set(), edited: [], complete: false };
    else if (!state) continue;
    else if (r.t === 'done') state.done.add(r.id);
    else if (r.t === 'undone') state.undone.add(r.id);
    else if (r.t === 'edited') state.edited.push({ file: r.file, backup: r.backup });
    else if (r.t === 'complete') state.complete = true;
  }
  return state;
}

/** An append-only journal writer; `sync` makes everything appended so far durable. */
export class Journal {
  private fd: number;
  private pending = 0;
  constructor(readonly root: string, fresh: boolean) {
    const file = journalPath(root);
    const { O_WRONLY, O_APPEND, O_NOFOLLOW, O_CREAT, O_EXCL } = fs.constants;
    // Never through a link: a fresh journal is a new file (whatever was at its name is unlinked, not truncated).
    if (fresh) fs.rmSync(file, { force: true });
    this.fd = fs.openSync(file, fresh ? O_WRONLY | O_CREAT | O_EXCL : O_WRONLY | O_APPEND | O_NOFOLLOW, 0o600);
    try {
      assertOwnJournal(fs.fstatSync(this.fd), file);
    } catch (err) {
      fs.closeSync(this.fd);
      throw err;
    }
    if (fresh) {
      const dir = fs.openSync(dataDir(root), 'r');
      fs.fsyncSync(dir);
      fs.closeSync(dir);
    }
  }
  /** Appends a record; `durable` fsyncs at once, otherwise every 64 records (a re-run re-derives the rest from disk). */
  append(r: JournalRecord, durable = false): void {
    fs.writeSync(this.fd, JSON.stringify(r) + '\n');
    if (durable || ++this.pending >= 64) this.sync();
  }
  sync(): void {
    fs.fsyncSync(this.fd);
    this.pending = 0;
  }
  close(): void {
    this.sync();
    fs.closeSync(this.fd);
  }
}
