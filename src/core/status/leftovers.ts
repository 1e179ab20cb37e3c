import fs from 'node:fs';
import path from 'node:path';
import { SQLITE_SIDE_SUFFIXES } from '../../adapters/sqlite.js';
import { walkTree } from '../../adapters/walk.js';
import { pgTarget, type ResolvedConfig } from '../config/index.js';
import { anchorDir, fsyncDir, openDirNoFollow } from '../fs/index.js';
import { dataDir, sqliteDir, usersDir, WORK_DIR_NAME } from '../layout/index.js';
import type { Logger } from '../logger.js';
import { maintenance } from '../restore/index.js';
import { parseTimestamp } from '../time.js';

/** Something a restore kept aside: a user's safety copy, a SQLite pre-restore file family, a PostgreSQL pre-restore database. */
export interface Leftover {
  kind: 'safety-copy' | 'sqlite' | 'postgres';
  name: string;
  /** The file or directory (null for a database). */
  path: string | null;
  /** Side files kept with a SQLite copy. */
  sideFiles: string[];
  /** When the restore that left it ran (from its name); null when the name carries no time. */
  time: Date | null;
  size: number;
}

/** What is left over, and what could not be looked at. */
export interface Leftovers {
  items: Leftover[];
  /** Why some place was not searched (e.g. PostgreSQL not reachable). */
  notes: string[];
}

const PRE_RE = /[._]pre_restore_(\d{8}_\d{6})(?:_\d+)?(\.db)?$/;
const timeOf = (name: string): Date | null => {
  const m = PRE_RE.exec(name);
  return m ? parseTimestamp(m[1]!) : null;
};

/** Our work directory under data/users, only when it is a real directory of ours (anything else is not ours to read). */
function workDir(root: string): string | null {
  const dir = path.join(usersDir(root), WORK_DIR_NAME);
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  const me = process.geteuid?.() ?? st?.uid;
  return st?.isDirectory() && st.uid === me ? dir : null;
}

/** The directories that may hold SQLite pre-restore copies: data/db/sqlite and the configured database's own. */
function sqliteDirs(cfg: ResolvedConfig): string[] {
  const dirs = new Set([sqliteDir(cfg.root)]);
  if (cfg.database.kind === 'sqlite') dirs.add(path.dirname(cfg.database.path));
  return [...dirs].filter((d) => fs.lstatSync(d, { throwIfNoEntry: false })?.isDirectory());
}

/** Finds every leftover of earlier restores, with its size; PostgreSQL only when `pg` and reachable. */
export async function findLeftovers(cfg: ResolvedConfig, opts: { pg?: boolean } = {}): Promise<Leftovers> {
  const items: Leftover[] = [];
  const notes: string[] = [];
  const work = workDir(cfg.root);
  const safety = work && path.join(work, 'safety');
  if (safety && fs.lstatSync(safety, { throwIfNoEntry: false })?.isDirectory()) {
    for (const n of fs.readdirSync(safety).sort()) {
      const p = path.join(safety, n);
      const st = fs.lstatSync(p);
      // Inside our private 0700 directory: the app's user cannot plant anything here, the walk is safe.
      const size = st.isDirectory() ? walkTree(p, { keepEntries: false }).bytes : st.size;
      items.push({ kind: 'safety-copy', name: n, path: p, sideFiles: [], time: timeOf(n), size });
    }
  }
  for (const dir of sqliteDirs(cfg)) {
    const names = fs.readdirSync(dir);
    for (const n of names.filter((x) => PRE_RE.test(x) && x.endsWith('.db')).sort()) {
      const p = path.join(dir, n);
      const sides = SQLITE_SIDE_SUFFIXES.map((s) => n + s).filter((s) => names.includes(s)).map((s) => path.join(dir, s));
      const size = [p, ...sides].reduce((t, f) => t + (fs.lstatSync(f, { throwIfNoEntry: false })?.size ?? 0), 0);
      items.push({ kind: 'sqlite', name: n, path: p, sideFiles: sides, time: timeOf(n), size });
    }
  }
  if (opts.pg && cfg.database.kind === 'postgres') {
    try {
      const c = await maintenance(pgTarget(cfg.database));
      try {
        const live = cfg.database.name.value;
        const rows = (await c.query<{ datname: string; size: string }>("SELECT datname, pg_database_size(oid)::text AS size FROM pg_database WHERE datname LIKE '%\\_pre\\_restore\\_%' ORDER BY datname")).rows;
        for (const r of rows) {
          const prefix = r.datname.replace(/_pre_restore_.*$/, '');
          // Ours: the live name itself, or (names over 63 bytes) its truncation that fills the 63 bytes exactly.
          const ours = prefix === live || (r.datname.length === 63 && live.startsWith(prefix));
          if (!ours || !PRE_RE.test(r.datname)) continue;
          items.push({ kind: 'postgres', name: r.datname, path: null, sideFiles: [], time: timeOf(r.datname), size: Number(r.size) });
        }
      } finally {
        await c.end();
      }
    } catch (err) {
      notes.push(`PostgreSQL pre-restore databases not listed: ${(err as Error).message}`);
    }
  }
  return { items, notes };
}

/** The leftovers older than `olderThanMs` (undated ones are never chosen: we cannot tell their age). */
export function oldLeftovers(all: Leftover[], olderThanMs: number, now = new Date()): Leftover[] {
  return all.filter((l) => l.time && now.getTime() - l.time.getTime() >= olderThanMs);
}

/**
 * Removes leftovers: a safety copy through our anchored work directory, a SQLite family by unlinking its
 * names in the anchored directory (unlink never follows a link), a database with DROP DATABASE.
 */
export async function removeLeftovers(cfg: ResolvedConfig, doomed: Leftover[], log: Logger): Promise<string[]> {
  const removed: string[] = [];
  const copies = doomed.filter((l) => l.kind === 'safety-copy');
  if (copies.length) {
    const users = anchorDir(usersDir(cfg.root), dataDir(cfg.root));
    try {
      const fd = openDirNoFollow(path.join(users.path, WORK_DIR_NAME));
      try {
        const st = fs.fstatSync(fd);
        if (st.uid !== (process.geteuid?.() ?? st.uid)) throw new Error(`${WORK_DIR_NAME} is not ours`);
        const safety = `/proc/${process.pid}/fd/${fd}/safety`;
        const sfd = openDirNoFollow(safety);
        try {
          for (const l of copies) {
            log.debug(`removing ${l.path}`);
            fs.rmSync(path.join(`/proc/${process.pid}/fd/${sfd}`, l.name), { recursive: true, force: true });
            removed.push(l.path!);
          }
          await fsyncDir(`/proc/${process.pid}/fd/${sfd}`);
        } finally {
          fs.closeSync(sfd);
        }
        try {
          fs.rmdirSync(safety); // only when empty
        } catch {
          /* other copies remain */
        }
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      users.close();
    }
  }
  for (const l of doomed.filter((x) => x.kind === 'sqlite')) {
    const dir = anchorDir(path.dirname(l.path!), dataDir(cfg.root));
    try {
      for (const f of [...l.sideFiles, l.path!]) {
        log.debug(`removing ${f}`);
        fs.rmSync(path.join(dir.path, path.basename(f)), { force: true });
        removed.push(f);
      }
      await fsyncDir(dir.path);
    } finally {
      dir.close();
    }
  }
  const dbs = doomed.filter((x) => x.kind === 'postgres');
  if (dbs.length && cfg.database.kind === 'postgres') {
    const c = await maintenance(pgTarget(cfg.database));
    try {
      for (const l of dbs) {
        log.debug(`dropping ${l.name}`);
        await c.query(`DROP DATABASE IF EXISTS "${l.name.replace(/"/g, '""')}"`);
        removed.push(l.name);
      }
    } finally {
      await c.end();
    }
  }
  return removed;
}
