import fs from 'node:fs';
import path from 'node:path';
import { dataDir } from '../layout.js';
import type { Plan } from './types.js';

/** A record of the journal (one JSON object per line). */
export type Record_ =
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

/** Reads the journal; null when there is none. A torn last line (power loss mid-append) is ignored. */
export function readJournal(root: string): JournalState | null {
  let text: string;
  try {
    text = fs.readFileSync(journalPath(root), 'utf8');
  } catch {
    return null;
  }
  let state: JournalState | null = null;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let r: Record_;
    try {
      r = JSON.parse(line) as Record_;
    } catch {
      continue;
    }
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
    this.fd = fs.openSync(journalPath(root), fresh ? 'w' : 'a', 0o600);
    if (fresh) fs.fsyncSync(fs.openSync(dataDir(root), 'r'));
  }
  /** Appends a record; `durable` fsyncs at once, otherwise every 64 records (a re-run re-derives the rest from disk). */
  append(r: Record_, durable = false): void {
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
