import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { ScitexError } from '../../errors.js';
import { exists, fsyncDir, partialName, removeDeadPartials, writeFileAtomic } from '../fs/atomic.js';
import { timestamp } from '../time.js';
import { readGitignore, withDataBlock, init, BACKUP_DIRS, dataDir, LAYOUT_DIRS, rewriteSettings } from '../layout/index.js';
import { ensurePrivateDirSync, mkdirsLikeParent } from '../fs/nofollow.js';
import type { Logger } from '../logger.js';
import { Journal, journalPath, readJournal, safetyCopyPath, type JournalState } from './journal.js';
import { moveEntry, sameContent } from './move.js';
import type { Plan, Step } from './types.js';

export { rollbackMigration } from './rollback.js';

/** Called after each journal record (a seam for crash tests). */
export type StepHook = (recordsWritten: number) => void;

/** What a migration run did. */
export interface MigrateResult {
  moved: number;
  edited: { file: string; backup: string }[];
  resumed: boolean;
}

/** Where the journal says we are: none, in progress, or complete. */
export function migrationState(root: string): { state: 'none' | 'in-progress' | 'complete'; journal: JournalState | null } {
  const j = readJournal(root);
  return { state: !j ? 'none' : j.complete ? 'complete' : 'in-progress', journal: j };
}

/** Applies one step idempotently: what is already done (from the filesystem's state) is not done again. */
async function applyStep(root: string, s: Step): Promise<void> {
  const src = path.join(root, s.src);
  const dst = path.join(root, s.dst);
  if (s.what === 'rmdir') {
    if (await exists(src)) {
      const left = (await fsp.readdir(src)).filter((n) => n !== '.gitkeep');
      if (left.length) throw new ScitexError(`${s.src} is not empty after its contents moved (${left.slice(0, 3).join(', ')}).`, 'Something wrote there during the migration: move those files into data/db/backups/ by hand and re-run.');
      await fsp.rm(src, { recursive: true, force: true });
    }
    return;
  }
  const there = (p: string) => fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
  const [srcThere, dstThere] = [there(src), there(dst)];
  if (!srcThere && dstThere) return; // done before an interruption
  if (!srcThere && !dstThere) throw new ScitexError(`Neither ${s.src} nor ${s.dst} exists.`, 'Something else moved it during the migration: find it before re-running.');
  if (srcThere && dstThere) {
    if (s.identical || (await sameContent(src, dst))) {
      await fsp.rm(src, { recursive: true, force: true });
      return;
    }
    throw new ScitexError(`${s.dst} appeared and differs from ${s.src}.`, 'Move one of them aside, then re-run `scitex-data migrate`.');
  }
  await moveEntry(src, dst);
  // Backups hold secrets: the old scripts left them 0644; tighten the mode (contents untouched).
  if ((s.what === 'backup' || s.dst.startsWith('data/db/backups/')) && (await fsp.lstat(dst)).isFile() && path.basename(dst) !== '.gitkeep') await fsp.chmod(dst, 0o600);
}

/** Runs (or resumes) a plan under a journal; the caller holds the lock and has checked conflicts. */
export async function runMigration(cfg: ResolvedConfig, log: Logger, plan: Plan, onStep: StepHook = () => {}): Promise<MigrateResult> {
  const root = cfg.root;
  // A run killed while it replaced .gitignore left its temporary name in the project root: remove it.
  for (const n of await removeDeadPartials(root)) log.debug(`removed leftover of an interrupted run: ${n}`);
  const prior = readJournal(root);
  const resumed = !!prior && !prior.complete;
  if (prior?.complete) await fsp.rename(journalPath(root), `${journalPath(root)}.done-${timestamp()}`);
  const journal = new Journal(root, !resumed);
  let records = 0;
  const durable = () => onStep(++records);
  try {
    if (!resumed) {
      journal.append({ t: 'plan', plan }, true);
      durable();
    }
    const done = resumed ? prior.done : new Set<number>();
    // Users named like a layout folder (data/db, data/users) make way first, each durably recorded:
    // once the layout exists at their old name, a re-run can only learn from the journal that they moved.
    let setAside = 0;
    for (const s of plan.steps.filter((x) => x.aside && !done.has(x.id))) {
      await applyStep(root, s);
      setAside++;
      await fsyncDir(dataDir(root));
      journal.append({ t: 'done', id: s.id }, true);
      durable();
      done.add(s.id);
    }
    // Destination directories first (private); their .gitkeep files come after the moves, so that an
    // old data/backups/.gitkeep moves in rather than colliding with a new one.
    // Created like their parent (the app's owner, 0755); only the backup directory is private.
    for (const d of LAYOUT_DIRS) {
      if ((BACKUP_DIRS as readonly string[]).includes(d)) ensurePrivateDirSync(path.join(root, d), dataDir(root));
      else mkdirsLikeParent(dataDir(root), path.join(root, d));
    }
    let moved = 0;
    const progress = log.progress('migrate', plan.steps.reduce((t, s) => t + (s.crossDevice ? s.size ?? 0 : 0), 0), plan.steps.length);
    for (const s of plan.steps) {
      if (done.has(s.id)) continue;
      await applyStep(root, s).catch((err: unknown) => {
        progress.done(); // a terminal's bar must not swallow the error line
        throw err;
      });
      progress.tick(s.crossDevice ? s.size ?? 0 : 0, 1);
      journal.append({ t: 'done', id: s.id }, !!s.crossDevice);
      durable();
      moved++;
      log.debug(`moved ${s.src} -> ${s.dst || '(removed)'}`);
    }
    progress.done();
    journal.sync();
    await init(root, log, { allowOldLayout: true, skipGitignore: true });
    for (const d of new Set(plan.steps.map((s) => path.dirname(path.join(root, s.dst))))) if (fs.existsSync(d)) await fsyncDir(d);
    await fsyncDir(dataDir(root));
    durable();
    const edited = resumed ? [...prior.edited] : [];
    const ts = timestamp();
    const editedFiles = new Set(edited.map((e) => e.file));
    for (const f of plan.settings.map((e) => e.file)) {
      if (editedFiles.has(f)) continue;
      const abs = path.join(root, f);
      const before = await fsp.readFile(abs, 'utf8');
      const after = rewriteSettings(before);
      if (after === before) continue;
      const backup = await editWithBackup(root, f, before, after, ts);
      journal.append({ t: 'edited', file: f, backup }, true);
      durable();
      edited.push({ file: f, backup });
    }
    if (!editedFiles.has('.gitignore')) {
      const gi = readGitignore(root);
      const next = withDataBlock(gi);
      if (next !== gi) {
        const abs = path.join(root, '.gitignore');
        const backup = fs.existsSync(abs) ? await editWithBackup(root, '.gitignore', gi, next, ts) : (await writeFileAtomic(abs, next, 0o644), '');
        journal.append({ t: 'edited', file: '.gitignore', backup }, true);
        durable();
        edited.push({ file: '.gitignore', backup });
      }
    }
    journal.append({ t: 'complete', at: new Date().toISOString() }, true);
    durable();
    return { moved: moved + setAside, edited, resumed };
  } finally {
    journal.close();
  }
}

/**
 * Keeps the original at safetyCopyPath (private, ignored by git, times kept) then replaces the file atomically;
 * returns the copy's path relative to the root. --rollback puts the copy back.
 */
async function editWithBackup(root: string, rel: string, before: string, after: string, ts: string): Promise<string> {
  const abs = path.join(root, rel);
  const real = await fsp.realpath(abs);
  await removeDeadPartials(path.dirname(real)); // a killed run's temporary name beside the settings file
  const st = await fsp.stat(real);
  const backupRel = safetyCopyPath(rel, ts);
  const backup = path.join(root, backupRel);
  if (!fs.existsSync(backup)) {
    // Private directories below the backup directory, created without following links (data/ is the app's).
    const top = path.join(root, 'data/db/backups');
    for (let d = top, parts = path.relative(top, path.dirname(backup)).split(path.sep); parts.length; ) {
      d = path.join(d, parts.shift()!);
      ensurePrivateDirSync(d, dataDir(root));
    }
    // An exact copy, times included, 0600 like every backup: a rollback gives it back its mode and times.
    await removeDeadPartials(path.dirname(backup));
    const tmp = partialName(backup);
    const fh = await fsp.open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(before);
      await fh.utimes(st.atime, st.mtime);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, backup);
    await fsyncDir(path.dirname(backup));
  }
  await writeFileAtomic(real, after, st.mode & 0o7777);
  return backupRel;
}
