import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseSha256sumLine } from '../fs/hash.js';
import { readManifest } from './manifest.js';

/** What retention and verify know about one user set, read cheaply (no archive is hashed). */
export interface SetSummary {
  /** Why the set cannot be trusted (then it is not complete and never the "newest"); null when it reads cleanly. */
  problem: string | null;
  partial: boolean;
  /** Usernames asked for with --user; null for a full set (every user). */
  selection: string[] | null;
  /** The users the set holds; `clean` when nothing changed while that user's archive was read. */
  users: { username: string; clean: boolean }[];
  size: number;
  /** Archives the manifest lists that are gone or have another size, and the likely cause (when any). */
  damage?: { missing: string[]; resized: string[]; cause: string };
}

/**
 * The likely cause of archives gone from a set whose manifest is still there: only `.gz` files missing is
 * the mark of a `find <backups> -name "*.gz" -mtime +N -delete` cleanup (the app's
 * scripts/deployment/backup_database.sh runs one), which removes archives and leaves the manifest.
 */
function damageCause(missing: string[], resized: string[]): string {
  if (missing.length && !resized.length && missing.every((a) => a.endsWith('.gz'))) {
    return 'only .gz files are gone and the manifest is left: the mark of a `find <backups> -name "*.gz" -mtime +N -delete` style cleanup (the app\'s scripts/deployment/backup_database.sh runs one on data/db/backups)';
  }
  if (missing.length) return 'files were deleted from the set by something other than scitex-data (a cleanup script or by hand)';
  return 'archives were cut short or rewritten after the backup (a full disk, an interrupted copy, or tampering)';
}

/**
 * Reads a set's MANIFEST.json and SHA256SUMS and checks that they agree with each other and with the
 * archives on disk (present, right size). Returns the problem instead of throwing: a damaged set is
 * listed, kept while it may hold the only copy, and never counted as a good one.
 */
export function inspectSet(setDir: string): SetSummary {
  const bad = (problem: string): SetSummary => ({ problem, partial: false, selection: null, users: [], size: 0 });
  let sums: Map<string, string>;
  try {
    const lines = fs.readFileSync(path.join(setDir, 'SHA256SUMS'), 'utf8').split('\n').map(parseSha256sumLine);
    sums = new Map(lines.filter((x) => x !== null).map((x) => [x.name, x.digest]));
  } catch (err) {
    return bad(`cannot read SHA256SUMS (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let m: ReturnType<typeof readManifest>;
  try {
    m = readManifest(setDir);
  } catch (err) {
    return bad((err as Error).message.replace(/\.$/, ''));
  }
  const recorded = sums.get('MANIFEST.json');
  if (recorded !== undefined) {
    const actual = crypto.createHash('sha256').update(fs.readFileSync(path.join(setDir, 'MANIFEST.json'))).digest('hex');
    if (actual !== recorded) return bad('MANIFEST.json does not match SHA256SUMS');
  }
  const users: SetSummary['users'] = [];
  const missing: string[] = [];
  const resized: string[] = [];
  for (const u of m.users) {
    if (typeof u.username !== 'string' || typeof u.sha256 !== 'string' || typeof u.size !== 'number') return bad(`MANIFEST.json has a malformed entry for ${JSON.stringify(u.archive)}`);
    if (sums.get(u.archive) !== u.sha256) return bad(`MANIFEST.json and SHA256SUMS disagree on ${u.archive}`);
    const st = fs.lstatSync(path.join(setDir, u.archive), { throwIfNoEntry: false });
    if (!st?.isFile()) missing.push(u.archive);
    else if (st.size !== u.size) resized.push(`${u.archive} is ${st.size} bytes, the manifest says ${u.size}`);
    users.push({ username: u.username, clean: Array.isArray(u.changed) && u.changed.length === 0 });
  }
  const selection = Array.isArray(m.selection) ? [...m.selection].sort() : null;
  const size = m.users.reduce((s, u) => s + u.size, 0);
  if (missing.length || resized.length) {
    // Every damaged archive is named (not only the first), with the likely cause: list, verify and restore say it.
    const cause = damageCause(missing, resized);
    const what = [missing.length ? `${missing.length} of ${m.users.length} archive(s) missing (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''})` : '', ...resized.slice(0, 2)].filter(Boolean).join('; ');
    return { problem: `${what}: ${cause}`, partial: !!m.partial, selection, users, size, damage: { missing, resized, cause } };
  }
  return { problem: null, partial: !!m.partial, selection, users, size };
}
