import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from '../../errors.js';
import { hasDataBlock, readGitignore, withDataBlock } from './gitignore.js';
import { BACKUP_DIRS, LAYOUT_DIRS } from './paths.js';
import type { Logger } from '../logger.js';
import { findOldLayout } from './oldlayout.js';
import { exists, removeDeadPartials, writeFileAtomic } from '../fs/atomic.js';
import { canChown, ensurePrivateDirSync, mkdirLikeParent, ownershipOf } from '../fs/nofollow.js';

/** Creates an empty file (never through a link) owned like its directory, so the app can manage it. */
function writeFileLikeParent(file: string): void {
  const fd = fs.openSync(file, 'wx', 0o644);
  try {
    const dir = fs.statSync(path.dirname(file));
    if (canChown()) fs.fchownSync(fd, dir.uid, dir.gid);
  } finally {
    fs.closeSync(fd);
  }
}

/** Options of `init`. */
export interface InitOptions {
  dryRun?: boolean;
  /** Used by migrate, which creates the layout next to the old entries it is about to move. */
  allowOldLayout?: boolean;
  /** Leave .gitignore alone (migrate edits it itself, with a backup). */
  skipGitignore?: boolean;
}

/** What `init` did (or, with dryRun, would do). */
export interface InitResult {
  created: string[];
  existing: string[];
  /** Every directory created and every mode or owner change, as the plan and the dry run print them. */
  changes: string[];
  gitignore: 'added' | 'updated' | 'unchanged';
  dryRun: boolean;
}

/** Creates the layout, its .gitkeep files and the .gitignore data block; never overwrites a file. */
export async function init(root: string, log: Logger, opts: InitOptions = {}): Promise<InitResult> {
  const absRoot = path.resolve(root);
  if (!fs.existsSync(absRoot)) throw new UsageError(`The root ${absRoot} does not exist.`, 'Create it or pass --root <dir>.');
  const old = findOldLayout(absRoot);
  if (old.length && !opts.allowOldLayout) {
    throw new UsageError(`${absRoot} has the old layout (${old.slice(0, 3).join(', ')}${old.length > 3 ? ', …' : ''}).`, 'Run `scitex-data migrate --dry-run` to move it into the new layout instead.');
  }
  const result: InitResult = { created: [], existing: [], changes: [], gitignore: 'unchanged', dryRun: !!opts.dryRun };
  for (const rel of ['data', 'data/db', ...LAYOUT_DIRS]) {
    const abs = path.join(absRoot, rel);
    // data/ itself may be the operator's symlink to another volume; below it, the app's user could plant links.
    const st = await (rel === 'data' ? fsp.stat(abs) : fsp.lstat(abs)).catch(() => null);
    if (st && !st.isDirectory()) throw new UsageError(`${rel} exists but is not a directory${st.isSymbolicLink() ? ' (a symlink)' : ''}.`, 'Move it aside, then re-run init.');
    const priv = (BACKUP_DIRS as readonly string[]).includes(rel);
    if (st) {
      result.existing.push(rel + '/');
      // Only the backup directory is ours to tighten; the app's directories keep whatever mode it relies on.
      if (priv && (st.mode & 0o077) !== 0) {
        result.changes.push(`chmod 700 ${rel} (was ${(st.mode & 0o777).toString(8)}: backups hold secrets)`);
        if (!opts.dryRun) ensurePrivateDirSync(abs, path.join(absRoot, 'data'));
      }
      continue;
    }
    result.created.push(rel + '/');
    result.changes.push(describeLayoutMkdir(absRoot, rel));
    if (!opts.dryRun) {
      if (priv) ensurePrivateDirSync(abs, path.join(absRoot, 'data'));
      else mkdirLikeParent(abs, 0o755);
    }
  }
  for (const rel of LAYOUT_DIRS) {
    const keep = path.join(rel, '.gitkeep');
    if (await exists(path.join(absRoot, keep))) {
      result.existing.push(keep);
      continue;
    }
    result.created.push(keep);
    if (!opts.dryRun) writeFileLikeParent(path.join(absRoot, keep));
  }
  const before = readGitignore(absRoot);
  const after = opts.skipGitignore ? before : withDataBlock(before);
  if (after !== before) {
    result.gitignore = hasDataBlock(before) ? 'updated' : 'added';
    if (!opts.dryRun) await writeGitignore(absRoot, after);
  }
  for (const c of result.created) log.debug(`${opts.dryRun ? 'would create' : 'created'} ${c}`);
  return result;
}

/**
 * How a layout directory that does not exist yet will be created, as init and migrate plans print it:
 * the app's directories get their parent's owner and 0755, the backup directory is private.
 */
export function describeLayoutMkdir(root: string, rel: string): string {
  if ((BACKUP_DIRS as readonly string[]).includes(rel)) return `mkdir ${rel} (0700, owned by the user running scitex-data: backups hold secrets)`;
  let parent = path.dirname(rel);
  while (!fs.existsSync(path.join(root, parent)) && parent !== '.') parent = path.dirname(parent);
  const o = ownershipOf(path.join(root, parent)) ?? { uid: 0, gid: 0 };
  return `mkdir ${rel} (0755, owner ${o.uid}:${o.gid} like ${parent}/)`;
}

/** Replaces .gitignore atomically, keeping its mode (and the file behind a symlink). */
export async function writeGitignore(root: string, text: string): Promise<void> {
  let target = path.join(root, '.gitignore');
  let mode = 0o644;
  try {
    target = await fsp.realpath(target);
    mode = (await fsp.stat(target)).mode & 0o7777;
  } catch {
    /* new file */
  }
  await removeDeadPartials(path.dirname(target)); // the temporary name of a run killed while writing it
  await writeFileAtomic(target, text, mode);
}
