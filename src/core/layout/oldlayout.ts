import fs from 'node:fs';
import path from 'node:path';
import { dataDir } from './paths.js';
import { workspaceUsername } from './paths.js';
import { isSqliteFileName } from '../sqlite/rules.js';

/** Names at the top of an old data/ tree that are system data, not users. */
export const OLD_SYSTEM_DIRS = ['backups', 'migrations_backup'] as const;

/** True for `migrations_archive_<timestamp>` folders of the old layout. */
export const isTimestampedArchive = (name: string): boolean => /^migrations_archive_\d{8}_\d{6}$/.test(name);

/** Evidence that `root` still has the old layout, as human-readable findings (empty when none). */
export function findOldLayout(root: string): string[] {
  const data = dataDir(root);
  const found: string[] = [];
  if (fs.existsSync(path.join(root, 'scitex_cloud_dev.db'))) found.push('scitex_cloud_dev.db at the project root');
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(data, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const e of entries) {
    if (e.isFile() && isSqliteFileName(e.name)) found.push(`database file data/${e.name}`);
    else if (e.isDirectory() && ((OLD_SYSTEM_DIRS as readonly string[]).includes(e.name) || isTimestampedArchive(e.name))) found.push(`data/${e.name}/`);
    else if (e.isDirectory() && (e.name === 'users' || e.name === 'db')) {
      // The layout's own folders, unless they are the workspace of a user of that name (migrate moves it).
      if (workspaceUsername(path.join(data, e.name)) === e.name) found.push(`user directory data/${e.name}/`);
    } else if (e.isDirectory()) {
      const p = path.join(data, e.name);
      if (fs.existsSync(path.join(p, 'workspace_info.json')) || fs.existsSync(path.join(p, 'proj', 'workspace_info.json'))) found.push(`user directory data/${e.name}/`);
    }
  }
  return found;
}
