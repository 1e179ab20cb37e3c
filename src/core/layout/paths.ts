import fs from 'node:fs';
import { lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../errors.js';

/** The directories of the new layout, relative to the project root, in creation order. */
export const LAYOUT_DIRS = ['data/db/sqlite', 'data/db/backups', 'data/db/migrations_archive', 'data/users'] as const;

/**
 * The only layout directory scitex-data keeps private (0700, owned by whoever runs the backup). The others
 * belong to the app, which runs as its own user: they keep the app's owner and the design's 0755.
 */
export const BACKUP_DIRS = ['data/db/backups'] as const;

/** Layout directories the app itself writes: usable by the owner of the databases and workspaces. */
export const APP_DIRS = ['data/db', 'data/db/sqlite', 'data/users'] as const;

/** Entries under data/ that the app uses in place and that are never users. */
export const APP_ENTRIES = ['db', 'users', 'ssh_keys', 'anonymous', 'visitor'] as const;

/** `<root>/data` */
export const dataDir = (root: string): string => path.join(path.resolve(root), 'data');
/** `<root>/data/db` */
export const dbDir = (root: string): string => path.join(dataDir(root), 'db');
/** `<root>/data/db/sqlite`: the SQLite fallback databases. */
export const sqliteDir = (root: string): string => path.join(dbDir(root), 'sqlite');
/** `<root>/data/db/backups`: the default backup directory. */
export const backupsDir = (root: string): string => path.join(dbDir(root), 'backups');
/** `<root>/data/db/migrations_archive`: archived Django migrations. */
export const migrationsArchiveDir = (root: string): string => path.join(dbDir(root), 'migrations_archive');
/** `<root>/data/users`: one workspace per user. */
export const usersDir = (root: string): string => path.join(dataDir(root), 'users');

const USERNAME_RE = /^[\p{L}\p{N}_.@+-]+$/u;
const MAX_USERNAME = 150;

/** Why a username is not acceptable, or null when it is (Django's `^[\w.@+-]+\Z`, NFKC, <= 150). */
export function usernameProblem(name: string): string | null {
  if (typeof name !== 'string' || name.length === 0) return 'it is empty';
  if (name.includes('\0')) return 'it contains a NUL byte';
  if ([...name].length > MAX_USERNAME) return `it is longer than ${MAX_USERNAME} characters`;
  if (name === '.' || name === '..') return 'it is a relative path segment';
  if (!USERNAME_RE.test(name)) return "it contains characters outside Django's rule (letters, digits, . @ + - _)";
  // Django stores usernames NFKC-normalised, so any other form cannot name a real user.
  if (name.normalize('NFKC') !== name) return 'it is not NFKC-normalised as Django stores usernames';
  return null;
}

/** Returns the username unchanged, or throws a UsageError saying why it is refused. */
export function validateUsername(name: string): string {
  const problem = usernameProblem(name);
  if (problem) {
    throw new UsageError(`Refusing username ${JSON.stringify(name)}: ${problem}.`, "Usernames follow Django's rule: letters, digits and . @ + - _, up to 150 characters.");
  }
  return name;
}

/** Throws when data/users is a symlink: a restore or migration would write somewhere else than it says. */
export function assertUsersDirNotSymlink(root: string): void {
  const dir = usersDir(root);
  let st: import('node:fs').Stats;
  try {
    st = lstatSync(dir);
  } catch {
    return;
  }
  if (st.isSymbolicLink()) {
    throw new UsageError(`${dir} is a symlink (to ${readlinkSync(dir)}); refusing to write through it.`, 'Mount the other volume at data/users instead, or pass --root for the tree it points into.');
  }
}

/**
 * Name of scitex-data's own working folder inside data/users (staging, safety copies): on the same
 * filesystem as the workspaces, so swaps are renames. A "~" can never be in a username, and the leading
 * dot keeps it out of the app's `for d in data/users/*` loops (scripts/backup_workspaces.sh).
 */
export const WORK_DIR_NAME = '.~scitex-data';

/** Where versions before 0.2 kept it; still never taken for a user. */
export const LEGACY_WORK_DIR_NAME = '~scitex-data';

/** The `username` recorded in a directory's workspace_info.json (top or proj/), or undefined when none is readable. */
export function workspaceUsername(dir: string): string | undefined {
  for (const f of [path.join(dir, 'workspace_info.json'), path.join(dir, 'proj', 'workspace_info.json')]) {
    try {
      const st = fs.lstatSync(f);
      if (!st.isFile() || st.size > 1 << 20) continue; // a FIFO or a huge file planted there is no evidence
      const name = (JSON.parse(fs.readFileSync(f, 'utf8')) as { username?: unknown }).username;
      if (typeof name === 'string') return name;
    } catch {
      /* absent or unreadable: no evidence */
    }
  }
  return undefined;
}
