import fs from 'node:fs';
import path from 'node:path';
import { pgConnect } from '../../adapters/postgres.js';
import { pgTarget } from '../config/index.js';
import { authUsernames } from '../../adapters/sqlite.js';
import type { ResolvedConfig } from '../config/index.js';
import { dataDir } from '../layout/index.js';
import { isSqliteFileName } from '../sqlite/rules.js';

/** Folders the old app kept at the top of data/ (system data, unless the evidence says a user has that name). */
export const SYSTEM_NAMES: ReadonlySet<string> = new Set(['backups', 'migrations_backup', 'ssh_keys', 'anonymous', 'visitor']);
const isOldSystemName = (n: string): boolean => SYSTEM_NAMES.has(n) || /^migrations_archive_\d{8}_\d{6}$/.test(n);

/** What a directory at the top of an old data/ is: one rule for migrate and verify. */
export type EntryKind = 'user' | 'system' | 'unknown' | 'ambiguous';

/**
 * Classifies directory `n` of data/ (at `abs`) from the evidence: --user/--system, a workspace_info.json, or
 * auth_user (from databaseUsernames) for a name that is not a system folder or that holds a workspace.
 * A system-named folder with user evidence that also holds what that folder holds is ambiguous.
 */
export function classifyEntry(n: string, abs: string, dbUsers: ReadonlySet<string>, explicitUsers: ReadonlySet<string> = new Set(), explicitSystem: ReadonlySet<string> = new Set()): EntryKind {
  const isSystemName = isOldSystemName(n);
  const userEvidence = hasWorkspaceInfo(abs) || (dbUsers.has(n) && (!isSystemName || looksLikeWorkspace(abs)));
  if (explicitUsers.has(n)) return 'user';
  if (explicitSystem.has(n)) return isSystemName ? 'system' : 'unknown';
  if (isSystemName) return userEvidence ? (looksLikeSystem(n, abs) ? 'ambiguous' : 'user') : 'system';
  return userEvidence ? 'user' : 'unknown';
}

/** Usernames from every auth_user table we can read: the old tree's SQLite files, and PostgreSQL if configured. */
export async function databaseUsernames(cfg: ResolvedConfig, usePostgres: boolean, warnings: string[]): Promise<Set<string>> {
  const names = new Set<string>();
  const files = [path.join(cfg.root, 'scitex_cloud_dev.db')];
  try {
    for (const n of fs.readdirSync(dataDir(cfg.root))) if (n.endsWith('.db')) files.push(path.join(dataDir(cfg.root), n));
  } catch {
    /* no data/ */
  }
  for (const d of ['data/db/sqlite']) {
    try {
      for (const n of fs.readdirSync(path.join(cfg.root, d))) if (n.endsWith('.db')) files.push(path.join(cfg.root, d, n));
    } catch {
      /* absent */
    }
  }
  for (const f of files) if (fs.existsSync(f)) for (const u of authUsernames(f)) names.add(u);
  if (usePostgres && cfg.database.kind === 'postgres') {
    try {
      const c = await pgConnect(pgTarget(cfg.database));
      try {
        for (const r of (await c.query<{ username: string }>('SELECT username FROM auth_user')).rows) names.add(r.username);
      } finally {
        await c.end();
      }
    } catch (err) {
      warnings.push(`Could not read auth_user from PostgreSQL (${(err as Error).message}); users are decided from workspace_info.json, SQLite and --user only.`);
    }
  }
  return names;
}

/** True when a directory carries a workspace_info.json (at its top or in proj/, the layouts that existed). */
export function hasWorkspaceInfo(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'workspace_info.json')) || fs.existsSync(path.join(dir, 'proj', 'workspace_info.json'));
}

/**
 * True when data/db or data/users holds what the new layout puts there (so it is not only a user's workspace):
 * SQLite files, backups, archived migrations or .gitkeep files in data/db's folders; workspaces in data/users.
 */
export function looksLikeLayout(name: string, dir: string): boolean {
  const list = (d: string) => {
    try {
      return fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return [];
    }
  };
  if (name === 'db') {
    return (
      list(path.join(dir, 'sqlite')).some((e) => isSqliteFileName(e.name) || e.name === '.gitkeep') ||
      list(path.join(dir, 'backups')).some((e) => e.isFile()) ||
      list(path.join(dir, 'migrations_archive')).length > 0
    );
  }
  return list(dir).some((e) => e.name === '.gitkeep' || (e.isDirectory() && e.name !== 'proj' && e.name !== 'projects' && hasWorkspaceInfo(path.join(dir, e.name))));
}

/** True when a directory looks like a user workspace (workspace_info.json, proj/ or projects/). */
export function looksLikeWorkspace(dir: string): boolean {
  return hasWorkspaceInfo(dir) || fs.existsSync(path.join(dir, 'proj')) || fs.existsSync(path.join(dir, 'projects'));
}

/** True when a system-named directory holds what that system folder holds (backups, migrations, keys, sessions). */
export function looksLikeSystem(name: string, dir: string): boolean {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  const real = entries.filter((e) => e.name !== '.gitkeep');
  if (!real.length) return true;
  if (name === 'backups') return real.some((e) => e.isFile() && (/\.(sql|dump|db)(\.gz)?$/.test(e.name) || isSqliteFileName(e.name)));
  if (name === 'migrations_backup' || name.startsWith('migrations_archive')) return real.some((e) => e.name.endsWith('.py') || (e.isDirectory() && /migrations/.test(e.name)));
  if (name === 'ssh_keys') return real.some((e) => e.isDirectory() && /^user_\d+$/.test(e.name));
  return !looksLikeWorkspace(dir); // anonymous/ and visitor/ hold session folders, never workspaces
}
