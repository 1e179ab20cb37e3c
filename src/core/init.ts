import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from './errors.js';
import { hasDataBlock, readGitignore, withDataBlock } from './gitignore.js';
import { LAYOUT_DIRS, PRIVATE_DIRS } from './layout.js';
import type { Logger } from './logger.js';
import { findOldLayout } from './oldlayout.js';
import { exists, writeFileAtomic } from './fsafe.js';

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
  const result: InitResult = { created: [], existing: [], gitignore: 'unchanged', dryRun: !!opts.dryRun };
  const dirs = ['data', 'data/db', ...LAYOUT_DIRS];
  for (const rel of dirs) {
    const abs = path.join(absRoot, rel);
    if (await exists(abs)) {
      const st = await fsp.stat(abs);
      if (!st.isDirectory()) throw new UsageError(`${rel} exists but is not a directory.`, 'Move it aside, then re-run init.');
      result.existing.push(rel + '/');
      continue;
    }
    result.created.push(rel + '/');
    if (!opts.dryRun) await fsp.mkdir(abs, { mode: 0o755 });
  }
  for (const rel of PRIVATE_DIRS) {
    // Database and backup directories are private whatever the umask (0700), also when they existed.
    if (!opts.dryRun) await fsp.chmod(path.join(absRoot, rel), 0o700);
  }
  for (const rel of LAYOUT_DIRS) {
    const keep = path.join(rel, '.gitkeep');
    if (await exists(path.join(absRoot, keep))) {
      result.existing.push(keep);
      continue;
    }
    result.created.push(keep);
    if (!opts.dryRun) await fsp.writeFile(path.join(absRoot, keep), '', { flag: 'wx', mode: 0o644 });
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
  await writeFileAtomic(target, text, mode);
}
