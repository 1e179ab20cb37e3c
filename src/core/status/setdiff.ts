import path from 'node:path';
import { UsageError } from '../../errors.js';
import { findBackup, readManifest, type Manifest } from '../catalog/index.js';
import { archiveEntries, liveEntries, liveUsers, type Entry } from './contents.js';

/** How one user's tree differs between two sides (a set, or the live tree). */
export interface UserDiff {
  username: string;
  /** 'only-old' / 'only-new': the user exists on one side only; 'same': identical archive or tree. */
  state: 'changed' | 'same' | 'only-old' | 'only-new';
  added: string[];
  removed: string[];
  changed: string[];
}

/** The diff of two sides, per user. */
export interface SetDiff {
  from: string;
  to: string;
  users: UserDiff[];
}

const sig = (e: Entry) => `${e.type} ${e.type === 'dir' || e.type === 'hardlink' ? 0 : e.size} ${e.type === 'dir' ? 0 : e.mtime} ${e.type === 'symlink' || e.type === 'hardlink' ? '' : e.mode.toString(8)} ${e.type === 'symlink' ? e.linkTarget : ''}`;

/** Compares two entry lists by path: added, removed, and changed (type, size, mtime in seconds, mode, link target). */
export function diffEntries(username: string, a: Entry[], b: Entry[]): UserDiff {
  // A hard link in an archive is a plain file on disk (the live walk cannot tell which name came first).
  const norm = (xs: Entry[]) => new Map(xs.filter((e) => e.rel !== '').map((e) => [e.rel, e.type === 'hardlink' ? 'file-link' : sig(e)]));
  const ma = norm(a);
  const mb = norm(b);
  const d: UserDiff = { username, state: 'same', added: [], removed: [], changed: [] };
  for (const [rel, s] of mb) {
    const old = ma.get(rel);
    if (old === undefined) d.added.push(rel);
    else if (old !== s && old !== 'file-link' && s !== 'file-link') d.changed.push(rel);
  }
  for (const rel of ma.keys()) if (!mb.has(rel)) d.removed.push(rel);
  if (d.added.length || d.removed.length || d.changed.length) d.state = 'changed';
  return d;
}

/**
 * Diffs two user sets (`to` given) or a set against the live data/users, reading archive headers only.
 * Archives with the same checksum are the same without being read.
 */
export async function diffSets(root: string, dir: string, from: string, to: string | null, opts: { users?: string[]; identity?: string } = {}): Promise<SetDiff> {
  const a = await findBackup(dir, from);
  if (a.kind !== 'users') throw new UsageError(`${a.name} is not a user set.`, 'diff compares user sets (users_<timestamp>) with each other or with the live tree.');
  const ma = readManifest(a.path);
  let mb: Manifest | null = null;
  let bPath = '';
  if (to) {
    const b = await findBackup(dir, to);
    if (b.kind !== 'users') throw new UsageError(`${b.name} is not a user set.`);
    mb = readManifest(b.path);
    bPath = b.path;
  }
  const names = new Set([...ma.users.map((u) => u.username), ...(mb ? mb.users.map((u) => u.username) : liveUsers(root))]);
  const wanted = opts.users?.length ? [...names].filter((n) => opts.users!.includes(n)) : [...names];
  const out: UserDiff[] = [];
  for (const name of wanted.sort()) {
    const ua = ma.users.find((u) => u.username === name);
    const ub = mb?.users.find((u) => u.username === name);
    const inB = mb ? !!ub : liveUsers(root).includes(name);
    if (!ua) out.push({ username: name, state: 'only-new', added: [], removed: [], changed: [] });
    else if (!inB) out.push({ username: name, state: 'only-old', added: [], removed: [], changed: [] });
    else if (ub && ub.sha256 === ua.sha256) out.push({ username: name, state: 'same', added: [], removed: [], changed: [] });
    else out.push(diffEntries(name, await archiveEntries(a.path, ua, opts.identity), ub ? await archiveEntries(bPath, ub, opts.identity) : liveEntries(root, name)));
  }
  return { from: a.name, to: mb ? path.basename(bPath) : 'live data/users', users: out };
}
