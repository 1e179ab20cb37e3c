import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { ScitexError } from '../../errors.js';
import { fsyncDir, partialName } from '../fs/atomic.js';
import { timestamp } from '../time.js';
import { dataDir } from '../layout/index.js';
import type { Logger } from '../logger.js';
import { databaseMoveProblems, databaseOf, familyMoves, isSideFileName, presentSideFiles } from '../sqlite/rules.js';
import { Journal, journalPath, readJournal } from './journal.js';
import { moveEntry } from './move.js';
import type { Plan, Step } from './types.js';

const there = (p: string) => fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
const isMainDb = (s: Step) => s.what === 'database' && !isSideFileName(s.src);

/** Puts an interrupted or completed migration back to the old layout, step by step in reverse. */
export async function rollbackMigration(cfg: ResolvedConfig, log: Logger, opts: { dryRun?: boolean; onRecord?: (records: number) => void } = {}): Promise<{ undone: number; restored: string[] }> {
  const root = cfg.root;
  const j = readJournal(root);
  if (!j) throw new ScitexError('There is no migration to roll back (no journal in data/).', 'Nothing was changed.', 2);
  const abs = (rel: string) => path.join(root, rel);
  const recorded = j.plan.steps.filter((s) => j.done.has(s.id) && !j.undone.has(s.id)).reverse();
  // Steps not recorded as done may still have happened (the journal is fsynced in batches): check the disk.
  // Set-aside users are recorded durably before anything else moves: until all are, nothing else can have moved
  // (and data/users/<x> may then be a folder inside the workspace of user "users", not a moved entry).
  const asidesDone = j.plan.steps.every((s) => !s.aside || j.done.has(s.id));
  const unrecorded = j.plan.steps
    .filter((s) => !j.done.has(s.id) && !j.undone.has(s.id) && s.what !== 'rmdir' && (asidesDone || s.aside) && there(abs(s.dst)) && !there(abs(s.src)))
    .reverse();
  const todo = [...unrecorded, ...recorded];
  // Set-aside users go back last: the layout folder that took their name must be gone first.
  const asides = todo.filter((s) => s.aside);
  const rest = todo.filter((s) => !s.aside);
  const problems = [...todo.filter(isMainDb).flatMap((s) => databaseMoveProblems(root, s.dst, s.src)), ...rollbackProblems(root, j.plan, todo, j.edited.flatMap((e) => (e.backup ? [e.backup] : [])))];
  if (problems.length) {
    throw new ScitexError(`Rollback stopped before moving anything: ${problems[0]}${problems.length > 1 ? ` (${problems.length - 1} more problem(s) after it)` : ''}`, 'Nothing was changed.');
  }
  const restored = j.edited.map((e) => e.file);
  if (opts.dryRun) return { undone: todo.length, restored };
  const mains = new Set(j.plan.steps.filter(isMainDb).map((s) => s.src));
  const journal = new Journal(root, false);
  let records = 0;
  try {
    for (const e of [...j.edited].reverse()) {
      const file = abs(e.file);
      if (e.backup && fs.existsSync(abs(e.backup))) {
        await putBack(abs(e.backup), await fsp.realpath(file).catch(() => file));
        // Its folders in the backup directory go too, when empty: a created data/db/backups must be removable.
        for (let d = path.dirname(e.backup); d.startsWith('data/db/backups/'); d = path.dirname(d)) await fsp.rmdir(abs(d)).catch(() => undefined);
      } else if (!e.backup && fs.existsSync(file)) {
        await fsp.rm(file); // the migration created it (there was no .gitignore before)
      }
    }
    const undo = async (s: Step) => {
      if (s.what === 'database' && isSideFileName(s.src) && mains.has(databaseOf(s.src))) {
        // Moves with its database (below), never on its own: a kill between the two must not part them.
      } else if (isMainDb(s) && !s.identical) {
        for (const { from, to } of familyMoves(abs(s.dst), abs(s.src))) await moveBack(from, to);
        // A database kept as a backup was made private: its family gets its modes back.
        for (const m of j.plan.steps.filter((x) => x.what === 'database' && x.mode !== undefined && databaseOf(x.src) === s.src)) await chmodNoFollow(abs(m.src), m.mode!);
      } else if (s.aside) await moveBack(abs(s.dst), abs(s.src));
      else await undoStep(root, s);
      journal.append({ t: 'undone', id: s.id });
      opts.onRecord?.(++records);
      log.debug(`moved back ${s.dst} -> ${s.src}`);
    };
    for (const s of rest) await undo(s);
    if (rest.length) journal.sync();
    await removeCreated(root, j.plan.layoutCreated ?? []);
    for (const s of asides) await undo(s);
    journal.append({ t: 'rolledback', at: new Date().toISOString() }, true);
  } finally {
    journal.close();
  }
  await fsp.rename(journalPath(root), `${journalPath(root)}.rolledback-${timestamp()}`);
  await fsyncDir(dataDir(root));
  return { undone: todo.length, restored };
}

/**
 * Puts the original of an edited file back from its safety copy, with the mode the file has (the copy is
 * private) and the copy's times. The copy sits under data/, which may be another filesystem than the
 * settings: then it is copied in atomically and removed.
 */
async function putBack(copy: string, file: string): Promise<void> {
  const mode = (await fsp.stat(file).catch(() => fsp.stat(copy))).mode & 0o7777;
  try {
    await chmodNoFollow(copy, mode);
    await fsp.rename(copy, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    const st = await fsp.stat(copy);
    const tmp = partialName(file);
    await fsp.copyFile(copy, tmp, fs.constants.COPYFILE_EXCL);
    await fsp.chmod(tmp, mode);
    await fsp.utimes(tmp, st.atime, st.mtime);
    await fsp.rename(tmp, file);
    await fsp.rm(copy);
  }
  await fsyncDir(path.dirname(file));
}

/** chmod through an O_NOFOLLOW descriptor (absent: nothing to do). */
async function chmodNoFollow(p: string, mode: number): Promise<void> {
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return;
  }
  try {
    fs.fchmodSync(fd, mode);
  } finally {
    fs.closeSync(fd);
  }
}

/** Moves one entry back unless that already happened; refuses to put it over something else. */
async function moveBack(from: string, to: string): Promise<void> {
  if (!there(from)) return;
  if (there(to)) throw new ScitexError(`${to} exists while ${from} still has to move back there.`, 'Something else wrote there since the migration: move one of them aside, then re-run `scitex-data migrate --rollback`.');
  await moveEntry(from, to);
}

/** Undoes one non-database step (idempotent). */
async function undoStep(root: string, s: Step): Promise<void> {
  const src = path.join(root, s.src);
  const dst = path.join(root, s.dst);
  if (s.what === 'rmdir') {
    if (!there(src)) {
      await fsp.mkdir(src, { mode: 0o700 });
      if (s.owner && process.getuid?.() === 0) await fsp.lchown(src, s.owner[0], s.owner[1]);
      await fsp.chmod(src, s.mode ?? 0o755);
    }
  }
  else if (s.identical) {
    if (!fs.existsSync(src)) await fsp.copyFile(dst, src);
  } else if (there(dst) && !there(src)) {
    await moveEntry(dst, src);
    if (s.mode !== undefined && (await fsp.lstat(src)).isFile()) await fsp.chmod(src, s.mode);
  }
}

/**
 * What stops the rollback before anything moves: an entry back at its old place, or, for a set-aside user,
 * anything in the layout folder that took their name but the migration's own folders, .gitkeep files and
 * entries this rollback moves away (with side files).
 */
function rollbackProblems(root: string, plan: Plan, todo: Step[], safetyCopies: string[] = []): string[] {
  const leaving = new Set<string>(safetyCopies); // the settings' own safety copies are put back first
  for (const s of todo) {
    leaving.add(s.dst);
    if (isMainDb(s)) for (const p of presentSideFiles(path.join(root, s.dst))) leaving.add(path.relative(root, p));
  }
  const created = new Set(plan.layoutCreated ?? []);
  const problems: string[] = [];
  for (const s of todo) {
    // Something at the old place again (the app recreated it) would be left there while the moved entry
    // stayed in the new layout: a "successful" rollback that gave nothing back.
    if (!s.aside && !s.identical && s.what !== 'rmdir' && there(path.join(root, s.src)) && there(path.join(root, s.dst))) {
      problems.push(`${s.src} exists again while ${s.dst} is to move back there; move one of them aside first.`);
    }
    // data/ is the app's: a folder swapped for a link would make this run move whatever it points at.
    if (s.dst && there(path.join(root, path.dirname(s.dst))) && !realDirChain(root, path.dirname(s.dst))) problems.push(`${path.dirname(s.dst)} is reached through a symlink: replace it with the directory it was.`);
  }
  const visit = (rel: string, user: string) => {
    const st = fs.lstatSync(path.join(root, rel), { throwIfNoEntry: false });
    if (!st || leaving.has(rel) || isBookkeeping(path.join(root, path.dirname(rel)), path.basename(rel))) return;
    const holdsOurs = safetyCopies.some((b) => b.startsWith(rel + '/'));
    if (st.isDirectory() && (created.has(rel) || holdsOurs)) {
      for (const n of fs.readdirSync(path.join(root, rel))) visit(`${rel}/${n}`, user);
    } else if (!(path.basename(rel) === '.gitkeep' && st.isFile() && st.size === 0 && created.has(path.dirname(rel)))) {
      problems.push(`${rel} appeared after the migration: user "${user}" cannot get data/${user} back; move it out of data/${user} first.`);
    }
  };
  for (const s of todo.filter((x) => x.aside)) visit(s.src, path.basename(s.src));
  return problems;
}

/** Removes the layout folders the migration created, deepest first, when only its .gitkeep files are left. */
async function removeCreated(root: string, created: string[]): Promise<void> {
  for (const rel of [...created].sort((a, b) => b.split('/').length - a.split('/').length)) {
    const dir = path.join(root, rel);
    if (!realDirChain(root, rel)) continue; // never through a symlink
    // Our own bookkeeping (run state, retention policy, the backup directory's lock) goes with the folder.
    const names = fs.readdirSync(dir);
    const ours = names.filter((n) => isBookkeeping(dir, n));
    const keep = fs.lstatSync(path.join(dir, '.gitkeep'), { throwIfNoEntry: false });
    const gitkeep = keep?.isFile() && keep.size === 0 ? ['.gitkeep'] : [];
    if (names.length === ours.length + gitkeep.length) for (const n of [...ours, ...gitkeep]) await fsp.unlink(path.join(dir, n));
    try {
      await fsp.rmdir(dir);
      await fsyncDir(path.dirname(dir));
    } catch {
      // Not empty (the app wrote there since), gone, or a mount point: it stays. A set-aside user who needs
      // the name back is refused by moveBack with a one-line error.
    }
  }
}

/** A plain file of scitex-data's own (`.scitex-data…`: run state, retention policy, a lock), not the app's data. */
function isBookkeeping(dir: string, name: string): boolean {
  return name.startsWith('.scitex-data') && !!fs.lstatSync(path.join(dir, name), { throwIfNoEntry: false })?.isFile();
}

/** True when every component of `rel` below `root` is a real directory (no symlink anywhere on the way). */
function realDirChain(root: string, rel: string): boolean {
  let p = root;
  for (const part of rel.split('/')) {
    p = path.join(p, part);
    if (!fs.lstatSync(p, { throwIfNoEntry: false })?.isDirectory()) return false;
  }
  return true;
}
