import fs from 'node:fs';
import { scanArchive, type Decrypt } from '../../adapters/tarreader.js';
import { walkTree, type WalkEntry } from '../../adapters/walk.js';

/** How an archive differs from a live user directory (for `restore users --dry-run`). */
export interface TreeDiff {
  /** In the archive but not live: would come back. */
  missing: number;
  /** In both but with another size, mtime (seconds) or mode: would be replaced. */
  changed: number;
  /** Live but not in the archive: would move to the safety copy. */
  extra: number;
  same: number;
  examples: string[];
}

/** Compares an archive's members with what is on disk, reading headers only. */
export async function diffAgainstLive(archive: string, liveDir: string, decrypt?: Decrypt): Promise<TreeDiff> {
  const live = new Map<string, WalkEntry>();
  if (fs.existsSync(liveDir)) for (const e of walkTree(liveDir).entries) live.set(e.rel, e);
  const d: TreeDiff = { missing: 0, changed: 0, extra: 0, same: 0, examples: [] };
  const seen = new Set<string>();
  await scanArchive(archive, (m) => {
    const rel = m.path.replace(/\/+$/, '').split('/').slice(3).join('/');
    seen.add(rel);
    const st = live.get(rel);
    if (!st) {
      d.missing++;
      if (d.examples.length < 10) d.examples.push(`+ ${rel}`);
    } else if (m.type !== 'Directory' && ((st.size !== m.size && m.type !== 'Link' && m.type !== 'SymbolicLink') || Math.floor(st.mtimeMs / 1000) !== Math.floor((m.mtime?.getTime() ?? 0) / 1000) || (m.mode !== undefined && st.mode !== m.mode))) {
      d.changed++;
      if (d.examples.length < 10) d.examples.push(`~ ${rel}`);
    } else d.same++;
    return null;
  }, decrypt);
  for (const rel of live.keys()) {
    if (!seen.has(rel)) {
      d.extra++;
      if (d.examples.length < 10) d.examples.push(`- ${rel}`);
    }
  }
  return d;
}
