import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import './sqlitekeep.js';

// Worker body of checkSnapshot (sqlite.ts): PRAGMA quick_check of a private snapshot on another core.
const { file } = workerData as { file: string };
let problems: string[];
try {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.pragma('quick_check') as Record<string, string>[];
    const msgs = rows.map((r) => Object.values(r)[0] ?? '');
    problems = msgs.length === 1 && msgs[0] === 'ok' ? [] : msgs;
  } finally {
    db.close();
  }
} catch (err) {
  problems = [(err as Error).message];
}
parentPort!.postMessage(problems);
