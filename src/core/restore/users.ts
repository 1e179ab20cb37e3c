import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { ToolFailure } from '../../adapters/proc.js';
import { ChecksumMismatch, extractArchive, RefusedArchive, type Member } from '../../adapters/tarreader.js';
import { memberChecker } from './archivecheck.js';
import { checkStaged, type OwnerPolicy } from './stagecheck.js';
import type { ResolvedConfig } from '../config/index.js';
import { ScitexError, UsageError } from '../../errors.js';
import { exists, uniquePath } from '../fs/atomic.js';
import { parseSha256sumLine } from '../fs/hash.js';
import { timestamp } from '../time.js';
import { assertUsersDirNotSymlink, usersDir, validateUsername, WORK_DIR_NAME } from '../layout/index.js';
import type { Logger } from '../logger.js';
import { readManifest, type Manifest, type ManifestUser, listUserSets, ownBackup } from '../catalog/index.js';
import { diffAgainstLive, type TreeDiff } from './userdiff.js';
import { livePathState, validateRestorePaths } from './paths.js';
import { decryptionOf } from '../seal/index.js';

/** Options of `restore users`. */
export interface UsersRestoreOptions {
  usernames?: string[];
  /** A set directory (users_<ts>) or one archive inside it. */
  from?: string;
  /** Timestamp of the set (YYYYMMDD_HHMMSS). */
  at?: string;
  /** Extract under this directory instead of the live data/users. */
  to?: string;
  /** Restore only these paths of each user (relative to the user directory); needs `usernames`. */
  paths?: string[];
  /** age secret key file, for a sealed (locally encrypted) set. */
  identity?: string;
}

/** One restored (or, in a dry run, restorable) user. */
export interface RestoredUser {
  username: string;
  archive: string;
  target: string;
  safetyCopy: string | null;
  diff?: TreeDiff;
  /** With --path: the paths restored, and whether each exists live now (it then goes to the safety copy). */
  paths?: { path: string; live: boolean }[];
  /** The live directory already equals the backup: nothing was swapped and no safety copy made. */
  unchanged?: boolean;
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
export async function checkedExtract(setDir: string, u: ManifestUser, cwd: string | null, owners: OwnerPolicy | null, identity?: string): Promise<void> {
  const file = path.join(setDir, u.archive);
  const decrypt = decryptionOf(file, u, identity);
  if (!fs.existsSync(file)) throw new ScitexError(`${u.archive} is missing from ${path.basename(setDir)}.`, 'Nothing was changed. Restore from another set with --from or --at.');
  const members = new Map<string, Member>();
  const hostile = 'The archive is hostile or damaged; nothing live was touched. Use another set.';
  try {
    await extractArchive(file, { sha256: u.sha256, cwd, check: memberChecker(u.username, { maxBytes: u.bytes, maxFiles: u.files }, members), decrypt });
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
export function liveOwners(root: string): OwnerPolicy | null {
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

/** What a users restore will do, computed once: the set, each user's target and safety-copy name. */
export interface UsersRestorePlan {
  set: string;
  /** The manifest entries of the users, in the order of `users`. */
  entries: ManifestUser[];
  users: RestoredUser[];
  /** The data/users the users land in (live, or under --to). */
  targetUsers: string;
  /** --path restores: the validated paths. */
  paths: string[] | null;
  to: string | null;
  /** The run's timestamp, used by the safety-copy names the plan announces and by staging. */
  ts: string;
  /** age secret key file, for a sealed set. */
  identity?: string;
}

/** Plans a users restore without reading any archive (for the prompt, --json and the dry run). */
export async function planUsersRestore(cfg: ResolvedConfig, log: Logger, opts: UsersRestoreOptions): Promise<UsersRestorePlan> {
  if (!opts.to) assertUsersDirNotSymlink(cfg.root);
  const paths = opts.paths?.length ? validateRestorePaths(opts.paths) : null;
  if (paths && !opts.usernames?.length) throw new UsageError('--path needs --user: name whose files to restore.', 'E.g. restore users --user alice --path proj/paper-1.');
  const { setDir, users, manifest } = await selectSet(cfg, opts);
  const targetUsers = opts.to ? path.join(path.resolve(cfg.root, opts.to), 'data', 'users') : usersDir(cfg.root);
  const ts = timestamp();
  const workShown = path.join(targetUsers, WORK_DIR_NAME);
  const planned: RestoredUser[] = [];
  for (const u of users) {
    const target = path.join(targetUsers, u.username);
    const live = await exists(target);
    if (live && opts.to) throw new UsageError(`${target} already exists.`, 'Choose an empty --to directory.');
    if (paths && !opts.to && !fs.lstatSync(target, { throwIfNoEntry: false })?.isDirectory()) throw new UsageError(`${target} is not a live directory, so there is nothing to restore single paths into.`, 'Restore the whole user (without --path), or use --to.');
    const state = paths && !opts.to ? paths.map((p) => ({ path: p, live: livePathState(target, p) })) : paths?.map((p) => ({ path: p, live: false }));
    const aside = state ? state.some((x) => x.live) : live;
    planned.push({ username: u.username, archive: path.join(setDir, u.archive), target, safetyCopy: aside ? await uniquePath(path.join(workShown, 'safety', `${u.username}.pre_restore_${ts}`)) : null, ...(state ? { paths: state } : {}) });
  }
  expectedChecksums(setDir, users);
  // A sealed set without a key is refused now, before any prompt or staging.
  for (const u of users) decryptionOf(path.join(setDir, u.archive), u, opts.identity);
  // Said once, with the plan (the CLI plans before it restores).
  for (const u of users) {
    const left = (manifest.skipped ?? []).filter((x) => x.user === u.username && typeof x.target === 'string');
    if (left.length) log.warn(`${path.basename(setDir)} left out ${left.length} symlink(s) of ${u.username} that point outside the workspace (recreate them by hand if needed): ${left.slice(0, 5).map((x) => `${x.path} -> ${x.target}`).join(', ')}${left.length > 5 ? ', …' : ''}.`);
    if (u.changed.length) log.warn(`${u.archive} was taken while ${u.changed.length} file(s) changed (e.g. ${u.changed[0]}): those files may hold a mix of states; an older set (--at) has consistent copies.`);
  }
  return { set: setDir, entries: users, users: planned, targetUsers, paths, to: opts.to ?? null, ts, identity: opts.identity };
}

/** The dry run of a plan: every archive checked as a real restore would, and what would change. */
export async function previewUsersRestore(plan: UsersRestorePlan): Promise<UsersRestoreResult> {
  const { set: setDir, entries: users, paths } = plan;
  const planned = plan.users.map((u) => ({ ...u }));
  for (const [i, p] of planned.entries()) {
    await checkedExtract(setDir, users[i]!, null, null, plan.identity);
    if (paths) continue;
    p.diff = await diffAgainstLive(p.archive, p.target, decryptionOf(p.archive, users[i], plan.identity));
    if (!p.diff.missing && !p.diff.changed && !p.diff.extra && p.safetyCopy) {
      p.unchanged = true;
      p.safetyCopy = null;
    }
  }
  return { set: setDir, users: planned, dryRun: true };
}
