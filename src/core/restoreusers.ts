import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { extractWithGnuTar, RefusedArchive, scanArchive } from '../adapters/tarreader.js';
import { memberChecker } from './archivecheck.js';
import type { ResolvedConfig } from './config.js';
import { ScitexError, UsageError } from './errors.js';
import { exists, freeBytes, fsyncDir, parseSha256sumLine, sha256File, timestamp, uniquePath } from './fsafe.js';
import { assertUsersDirNotSymlink, usersDir, validateUsername } from './layout.js';
import type { Logger, Progress } from './logger.js';
import { pool, WORK_DIR_NAME } from './backupusers.js';
import { listUserSets, readManifest, type Manifest, type ManifestUser } from './userset.js';
import { diffAgainstLive, type TreeDiff } from './userdiff.js';
import { ownBackup } from './origin.js';

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
 * One read of the archive: its checksum, and every member header checked (paths, types, links, sizes)
 * before a single byte is extracted. Throws a one-line ScitexError naming what is wrong.
 */
async function validateArchive(setDir: string, u: ManifestUser): Promise<void> {
  const file = path.join(setDir, u.archive);
  if (!fs.existsSync(file)) throw new ScitexError(`${u.archive} is missing from ${path.basename(setDir)}.`, 'Nothing was changed. Restore from another set with --from or --at.');
  let digest: string;
  try {
    digest = await scanArchive(file, memberChecker(u.username, { maxBytes: u.bytes, maxFiles: u.files }));
  } catch (err) {
    const digestNow = await sha256File(file).catch(() => '');
    if (digestNow !== u.sha256) throw checksumError(setDir, u);
    if (err instanceof RefusedArchive || /decompression/i.test((err as Error).message)) throw new ScitexError(`Refusing ${u.archive}: ${(err as Error).message}.`, 'The archive is hostile or damaged; nothing live was touched. Use another set.', 1, { cause: err });
    throw new ScitexError(`Reading ${u.archive} failed: ${(err as Error).message}.`, 'Nothing live was touched. Check the archive (`scitex-data verify --backups`).', 1, { cause: err });
  }
  if (digest !== u.sha256) throw checksumError(setDir, u);
}

const checksumError = (setDir: string, u: ManifestUser) =>
  new ScitexError(`${u.archive} in ${path.basename(setDir)} does not match its recorded checksum: damaged or tampered with.`, 'Nothing was changed. Restore from an older set with --from or --at.');

/** Restores users: verify, extract each into staging, check, then swap in with renames. */
export async function restoreUsers(cfg: ResolvedConfig, log: Logger, opts: UsersRestoreOptions): Promise<UsersRestoreResult> {
  if (!opts.to) assertUsersDirNotSymlink(cfg.root);
  const { setDir, users } = await selectSet(cfg, opts);
  const targetUsers = opts.to ? path.join(path.resolve(cfg.root, opts.to), 'data', 'users') : usersDir(cfg.root);
  const ts = timestamp();
  const work = path.join(targetUsers, WORK_DIR_NAME);
  const planned: RestoredUser[] = [];
  for (const u of users) {
    const target = path.join(targetUsers, u.username);
    const live = await exists(target);
    if (live && opts.to) throw new UsageError(`${target} already exists.`, 'Choose an empty --to directory.');
    planned.push({ username: u.username, archive: path.join(setDir, u.archive), target, safetyCopy: live ? await uniquePath(path.join(work, 'safety', `${u.username}.pre_restore_${ts}`)) : null });
  }
  expectedChecksums(setDir, users);
  // Said once, with the plan (the CLI plans before it restores).
  for (const u of opts.planOnly || opts.dryRun ? users : []) {
    if (u.changed.length) log.warn(`${u.archive} was taken while ${u.changed.length} file(s) changed (e.g. ${u.changed[0]}): those files may hold a mix of states; an older set (--at) has consistent copies.`);
  }
  if (opts.planOnly) return { set: setDir, users: planned, dryRun: true };
  if (opts.dryRun) {
    for (const [i, p] of planned.entries()) {
      await validateArchive(setDir, users[i]!);
      p.diff = await diffAgainstLive(p.archive, p.target);
    }
    return { set: setDir, users: planned, dryRun: true };
  }
  await fsp.mkdir(targetUsers, { recursive: true });
  // Unique per run: a killed run's orphaned tar may still be writing into its own staging directory.
  const staging = path.join(work, `staging_${ts}_${process.pid}`);
  // Staging left by an interrupted restore is garbage (the archive is still there): clear it.
  for (const n of await fsp.readdir(work).catch(() => [] as string[])) {
    if (n.startsWith('staging_')) await fsp.rm(path.join(work, n), { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }).catch(() => log.warn(`Could not remove ${path.join(work, n)} yet (an interrupted run may still be writing into it); remove it later.`));
  }
  await fsp.mkdir(staging, { recursive: true, mode: 0o700 });
  // The parents exist before two tar processes run at once, so neither races the other creating them.
  await fsp.mkdir(path.join(staging, 'data', 'users'), { recursive: true, mode: 0o700 });
  await fsp.chmod(work, 0o700);
  let progress: Progress | undefined;
  try {
    const need = users.reduce((s, u) => s + u.bytes, 0);
    const free = await freeBytes(staging);
    if (need > free) throw new ScitexError(`Restoring needs ${need} bytes but only ${free} are free under ${targetUsers}.`, 'Free space, or restore fewer users (--user) or elsewhere (--to). Nothing was changed.');
    // Each user: validate (checksum + every member) in one read, then extract with GNU tar into
    // staging; two users at a time, since decompression is CPU-bound.
    progress = log.progress('restore', users.reduce((t, u) => t + u.bytes, 0), users.reduce((t, u) => t + u.files, 0));
    await pool([...users.keys()], 2, async (i) => {
      const u = users[i]!;
      await validateArchive(setDir, u);
      log.info(`extracting ${u.archive} into staging`);
      try {
        await extractWithGnuTar(planned[i]!.archive, staging);
      } catch (err) {
        throw new ScitexError(`Extracting ${u.archive} failed: ${(err as Error).message}.`, 'Nothing live was touched. Check free space and the archive (`scitex-data verify --backups`).', 1, { cause: err });
      }
      if (!(await exists(path.join(staging, 'data', 'users', u.username)))) throw new ScitexError(`${u.archive} holds nothing for ${u.username}.`, 'Nothing live was touched. Use another set.');
      progress!.tick(u.bytes, u.files);
    });
    progress.done();
    // Everything is staged and checked: only now touch live data, one rename pair per user.
    if (planned.some((p) => p.safetyCopy)) await fsp.mkdir(path.join(work, 'safety'), { recursive: true, mode: 0o700 });
    for (const p of planned) {
      if (p.safetyCopy) await fsp.rename(p.target, p.safetyCopy);
      await fsp.rename(path.join(staging, 'data', 'users', p.username), p.target);
      log.info(`restored ${p.username}${p.safetyCopy ? ` (previous copy kept at ${p.safetyCopy})` : ''}`);
    }
    await fsyncDir(targetUsers);
    return { set: setDir, users: planned, dryRun: false };
  } finally {
    progress?.done(); // also on failure, so a terminal's bar never swallows the error line
    await fsp.rm(staging, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }).catch((err: unknown) => log.warn(`Could not remove the staging directory ${staging} (${(err as Error).message}); remove it by hand.`));
    await fsp.rmdir(work).catch(() => {}); // only when no safety copies remain in it
  }
}
