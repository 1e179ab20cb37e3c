import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ToolFailure } from '../../adapters/proc.js';
import { ChecksumMismatch, extractArchive, RefusedArchive, type Member } from '../../adapters/tarreader.js';
import { memberChecker } from './archivecheck.js';
import { checkStaged, type OwnerPolicy } from './stagecheck.js';
import type { ResolvedConfig } from '../config/index.js';
import { ScitexError, UsageError } from '../../errors.js';
import { exists, freeBytes, fsyncDir, uniquePath } from '../fs/atomic.js';
import { parseSha256sumLine } from '../fs/hash.js';
import { timestamp } from '../time.js';
import { assertUsersDirNotSymlink, dataDir, usersDir, validateUsername, WORK_DIR_NAME } from '../layout/index.js';
import type { Logger, Progress } from '../logger.js';
import { pool } from '../pool.js';
import { anchorDir, anchorPrivateWorkDir, mkdirsLikeParent, type AnchoredDir } from '../fs/nofollow.js';
import { readManifest, type Manifest, type ManifestUser, listUserSets, ownBackup } from '../catalog/index.js';
import { diffAgainstLive, type TreeDiff } from './userdiff.js';

/** Options of `restore users`. */
export interface UsersRestoreOptions {
  usernames?: string[];
  /** A set directory (users_<ts>) or one archive inside it. */
  from?: string;
  /** Timestamp of the set (YYYYMMDD_HHMMSS). */
  at?: string;
  /** Extract under this directory instead of the live data/users. */
  to?: string;
  dryRun?: boolean;
  /** Only resolve the set and the targets (no checksum pass, no diff): for printing a plan before asking. */
  planOnly?: boolean;
}

/** One restored (or, in a dry run, restorable) user. */
export interface RestoredUser {
  username: string;
  archive: string;
  target: string;
  safetyCopy: string | null;
  diff?: TreeDiff;
}

/** What `restore users` did or would do. */
export interface UsersRestoreResult {
  set: string;
  users: RestoredUser[];
  dryRun: boolean;
}

/** Finds the set and the users to restore from it. */
async function selectSet(cfg: ResolvedConfig, opts: UsersRestoreOptions): Promise<{ setDir: string; manifest: Manifest; users: ManifestUser[] }> {
  const wanted = opts.usernames?.length ? [...new Set(opts.usernames.map(validateUsername))] : null;
  let setDir: string;
  let onlyArchive: string | null = null;
  if (opts.from) {
    const p = path.resolve(cfg.root, opts.from);
    const st = await fsp.stat(p).catch(() => null);
    if (!st) throw new UsageError(`${p} does not exist.`, 'Run `scitex-data list users` to see the sets.');
    if (st.isFile()) {
      setDir = path.dirname(p);
      onlyArchive = path.basename(p);
    } else setDir = p;
  } else {
    const sets = await listUserSets(cfg.backupDir.value);
    const fits = (dir: string) => {
      try {
        const m = readManifest(dir);
        return wanted ? wanted.every((u) => m.users.some((x) => x.username === u)) : !m.selection;
      } catch {
        return false;
      }
    };
    const pick = opts.at ? sets.find((s) => s.timestamp === opts.at) : sets.find((s) => fits(s.path));
    if (!pick) {
      throw new UsageError(
        opts.at ? `No user backup set taken at ${opts.at} in ${cfg.backupDir.value}.` : `No user backup set${wanted ? ` holding ${wanted.join(', ')}` : ''} in ${cfg.backupDir.value}.`,
        'Run `scitex-data list users` to see the sets.',
      );
    }
    setDir = pick.path;
  }
  const manifest = readManifest(ownBackup(cfg, setDir, !!opts.from));
  let users = manifest.users;
  if (onlyArchive) users = users.filter((u) => u.archive === onlyArchive);
  if (wanted) {
    const missing = wanted.filter((w) => !users.some((u) => u.username === w));
    if (missing.length) throw new UsageError(`The set ${path.basename(setDir)} has no archive for ${missing.join(', ')}.`, 'Pick another set with --from or --at (`scitex-data list users`).');
    users = users.filter((u) => wanted.includes(u.username));
  }
  if (!users.length) throw new UsageError(`Nothing to restore from ${setDir}.`, 'Check --from and --user.');
  for (const u of users) validateUsername(u.username);
  return { setDir, manifest, users };
}

/** The checksum each archive must have: SHA256SUMS and the manifest must agree, or the set was tampered with. */
function expectedChecksums(setDir: string, users: ManifestUser[]): Map<string, string> {
  let sums: Map<string, string>;
  try {
    sums = new Map(fs.readFileSync(path.join(setDir, 'SHA256SUMS'), 'utf8').split('\n').map(parseSha256sumLine).filter((x) => x !== null).map((x) => [x.name, x.digest]));
  } catch {
    throw new ScitexError(`${setDir} has no SHA256SUMS: the set is incomplete.`, 'Use another set (`scitex-data list users`). Nothing was changed.');
  }
  for (const u of users) {
    if (sums.get(u.archive) !== u.sha256) throw new ScitexError(`${u.archive} in ${path.basename(setDir)}: SHA256SUMS and MANIFEST.json disagree: the set was tampered with.`, 'Nothing was changed. Restore from another set with --from or --at.');
  }
  return sums;
}

/**
 * Checks one archive: its SHA-256 first, then every member header through the strict reader, then
 * (when `cwd` is given) GNU tar extracts it there and the result is compared with what was checked.
 * Throws a one-line ScitexError naming what is wrong; nothing outside `cwd` is written.
 */
async function checkedExtract(setDir: string, u: ManifestUser, cwd: string | null, owners: OwnerPolicy | null): Promise<void> {
  const file = path.join(setDir, u.archive);
  if (!fs.existsSync(file)) throw new ScitexError(`${u.archive} is missing from ${path.basename(setDir)}.`, 'Nothing was changed. Restore from another set with --from or --at.');
  const members = new Map<string, Member>();
  const hostile = 'The archive is hostile or damaged; nothing live was touched. Use another set.';
  try {
    await extractArchive(file, { sha256: u.sha256, cwd, check: memberChecker(u.username, { maxBytes: u.bytes, maxFiles: u.files }, members) });
  } catch (err) {
    if (err instanceof ChecksumMismatch) throw checksumError(setDir, u);
    if (err instanceof RefusedArchive) throw new ScitexError(`Refusing ${u.archive}: ${err.message}.`, hostile, 1, { cause: err });
    if (err instanceof ToolFailure) throw new ScitexError(`Extracting ${u.archive} failed: GNU tar: ${err.detail}.`, 'Nothing live was touched. Check free space and the archive (`scitex-data verify --backups`).', 1, { cause: err });
    throw new ScitexError(`Reading ${u.archive} failed: ${(err as Error).message}.`, 'Nothing live was touched. Check the archive (`scitex-data verify --backups`).', 1, { cause: err });
  }
  if (!cwd) return;
  if (!members.has(`data/users/${u.username}`)) throw new ScitexError(`Refusing ${u.archive}: it has no entry for data/users/${u.username}/ itself, so its owner and mode are unknown.`, hostile);
  let refused: string | null;
  try {
    refused = checkStaged(cwd, u.username, members, owners);
  } catch (err) {
    // GNU tar made something the walk cannot even name or stat: not what the headers said.
    refused = `the extracted tree cannot be checked (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  if (refused) throw new ScitexError(`Refusing ${u.archive}: ${refused}.`, hostile);
}

/** Owners of data/, data/users and every live workspace: who may own a restored workspace (root runs). */
function liveOwners(root: string): OwnerPolicy | null {
  if (process.getuid?.() !== 0) return null;
  const owners: OwnerPolicy = { uids: new Set(), gids: new Set() };
  const add = (p: string) => {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      owners.uids.add(st.uid);
      owners.gids.add(st.gid);
    }
  };
  add(path.join(root, 'data'));
  add(usersDir(root));
  const live = fs.lstatSync(usersDir(root), { throwIfNoEntry: false })?.isDirectory() ? fs.readdirSync(usersDir(root), { withFileTypes: true }) : [];
  for (const n of live) if (n.isDirectory() && n.name !== WORK_DIR_NAME) add(path.join(usersDir(root), n.name));
  return owners;
}

const checksumError = (setDir: string, u: ManifestUser) =>
  new ScitexError(`${u.archive} in ${path.basename(setDir)} does not match its recorded checksum: damaged or tampered with.`, 'Nothing was changed. Restore from an older set with --from or --at.');

/** Restores users: verify, extract each into staging, check, then swap in with renames. */
export async function restoreUsers(cfg: ResolvedConfig, log: Logger, opts: UsersRestoreOptions): Promise<UsersRestoreResult> {
  if (!opts.to) assertUsersDirNotSymlink(cfg.root);
  const { setDir, users } = await selectSet(cfg, opts);
  const targetUsers = opts.to ? path.join(path.resolve(cfg.root, opts.to), 'data', 'users') : usersDir(cfg.root);
  const ts = timestamp();
  const workShown = path.join(targetUsers, WORK_DIR_NAME);
  const planned: RestoredUser[] = [];
  for (const u of users) {
    const target = path.join(targetUsers, u.username);
    const live = await exists(target);
    if (live && opts.to) throw new UsageError(`${target} already exists.`, 'Choose an empty --to directory.');
    planned.push({ username: u.username, archive: path.join(setDir, u.archive), target, safetyCopy: live ? await uniquePath(path.join(workShown, 'safety', `${u.username}.pre_restore_${ts}`)) : null });
  }
  expectedChecksums(setDir, users);
  // Said once, with the plan (the CLI plans before it restores).
  for (const u of opts.planOnly || opts.dryRun ? users : []) {
    if (u.changed.length) log.warn(`${u.archive} was taken while ${u.changed.length} file(s) changed (e.g. ${u.changed[0]}): those files may hold a mix of states; an older set (--at) has consistent copies.`);
  }
  if (opts.planOnly) return { set: setDir, users: planned, dryRun: true };
  if (opts.dryRun) {
    for (const [i, p] of planned.entries()) {
      await checkedExtract(setDir, users[i]!, null, null);
      p.diff = await diffAgainstLive(p.archive, p.target);
    }
    return { set: setDir, users: planned, dryRun: true };
  }
  // Everything below happens through descriptors of data/users and of our work directory, opened
  // without following links: the app's user can swap either for a symlink at any instant.
  mkdirsLikeParent(opts.to ? path.resolve(cfg.root, opts.to) : dataDir(cfg.root), targetUsers);
  const usersFd = anchorDir(targetUsers, opts.to ? path.resolve(cfg.root, opts.to) : dataDir(cfg.root));
  let workFd: AnchoredDir;
  try {
    workFd = anchorPrivateWorkDir(usersFd, WORK_DIR_NAME);
  } catch (err) {
    usersFd.close();
    throw err;
  }
  const work = workFd.path;
  /** The anchored name of a path below data/users (plans and messages keep the real one). */
  const at = (p: string) => path.join(usersFd.path, path.relative(targetUsers, p));
  // Unique per run: a killed run's orphaned tar may still be writing into its own staging directory.
  const staging = path.join(work, `staging_${ts}_${process.pid}`);
  // Staging left by an interrupted restore is garbage (the archive is still there): clear it.
  for (const n of await fsp.readdir(work).catch(() => [] as string[])) {
    if (n.startsWith('staging_')) await fsp.rm(path.join(work, n), { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }).catch(() => log.warn(`Could not remove ${path.join(targetUsers, WORK_DIR_NAME, n)} yet (an interrupted run may still be writing into it); remove it later.`));
  }
  await fsp.mkdir(staging, { recursive: true, mode: 0o700 });
  const owners = liveOwners(cfg.root);
  let progress: Progress | undefined;
  try {
    const need = users.reduce((s, u) => s + u.bytes, 0);
    const free = await freeBytes(staging);
    if (need > free) throw new ScitexError(`Restoring needs ${need} bytes but only ${free} are free under ${targetUsers}.`, 'Free space, or restore fewer users (--user) or elsewhere (--to). Nothing was changed.');
    // Each user: checksum, then one decompression feeding the strict reader and GNU tar, into a
    // staging directory of its own (so one archive's stray member can never land in another user's
    // tree), then the staged result is compared with the checked headers. Two users at a time.
    progress = log.progress('restore', users.reduce((t, u) => t + u.bytes, 0), users.reduce((t, u) => t + u.files, 0));
    await pool([...users.keys()], 2, async (i) => {
      const u = users[i]!;
      const cwd = path.join(staging, String(i));
      await fsp.mkdir(path.join(cwd, 'data', 'users'), { recursive: true, mode: 0o700 });
      log.info(`extracting ${u.archive} into staging`);
      await checkedExtract(setDir, u, cwd, owners);
      progress!.tick(u.bytes, u.files);
    });
    progress.done();
    // Everything is staged and checked: only now touch live data, one rename pair per user.
    if (planned.some((p) => p.safetyCopy)) await fsp.mkdir(path.join(work, 'safety'), { recursive: true, mode: 0o700 });
    for (const p of planned) {
      if (p.safetyCopy) await fsp.rename(at(p.target), at(p.safetyCopy));
      await fsp.rename(path.join(staging, String(planned.indexOf(p)), 'data', 'users', p.username), at(p.target));
      log.info(`restored ${p.username}${p.safetyCopy ? ` (previous copy kept at ${p.safetyCopy})` : ''}`);
    }
    await fsyncDir(usersFd.path);
    return { set: setDir, users: planned, dryRun: false };
  } finally {
    progress?.done(); // also on failure, so a terminal's bar never swallows the error line
    await fsp.rm(staging, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }).catch((err: unknown) => log.warn(`Could not remove the staging directory ${path.join(targetUsers, WORK_DIR_NAME, path.basename(staging))} (${(err as Error).message}); remove it by hand.`));
    workFd.close();
    await fsp.rmdir(path.join(usersFd.path, WORK_DIR_NAME)).catch(() => {}); // only when no safety copies remain in it
    usersFd.close();
  }
}
