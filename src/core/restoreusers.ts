import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { extractArchive, RefusedArchive } from '../adapters/tarreader.js';
import { memberChecker } from './archivecheck.js';
import type { ResolvedConfig } from './config.js';
import { ScitexError, UsageError } from './errors.js';
import { exists, freeBytes, fsyncDir, parseSha256sumLine, sha256File, timestamp, uniquePath } from './fsafe.js';
import { assertUsersDirNotSymlink, usersDir, validateUsername } from './layout.js';
import type { Logger } from './logger.js';
import { WORK_DIR_NAME } from './backupusers.js';
import { listUserSets, readManifest, type Manifest, type ManifestUser } from './userset.js';
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
  const manifest = readManifest(setDir);
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

/** Verifies each archive against both SHA256SUMS and the manifest before anything is extracted. */
async function verifyArchives(setDir: string, users: ManifestUser[]): Promise<void> {
  let sums: Map<string, string>;
  try {
    sums = new Map(fs.readFileSync(path.join(setDir, 'SHA256SUMS'), 'utf8').split('\n').map(parseSha256sumLine).filter((x) => x !== null).map((x) => [x.name, x.digest]));
  } catch {
    throw new ScitexError(`${setDir} has no SHA256SUMS: the set is incomplete.`, 'Use another set (`scitex-data list users`). Nothing was changed.');
  }
  for (const u of users) {
    const recorded = sums.get(u.archive);
    const actual = await sha256File(path.join(setDir, u.archive)).catch(() => 'missing');
    if (!recorded || recorded !== u.sha256 || actual !== recorded) {
      throw new ScitexError(`${u.archive} in ${path.basename(setDir)} does not match its recorded checksum${actual === 'missing' ? ' (the file is missing)' : ''}: damaged or tampered with.`, 'Nothing was changed. Restore from an older set with --from or --at.');
    }
  }
}

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
  await verifyArchives(setDir, users);
  if (opts.dryRun) {
    for (const p of planned) p.diff = await diffAgainstLive(p.archive, p.target);
    return { set: setDir, users: planned, dryRun: true };
  }
  await fsp.mkdir(targetUsers, { recursive: true });
  const staging = path.join(work, `staging_${ts}`);
  // Staging left by an interrupted restore is garbage (the archive is still there): clear it.
  for (const n of await fsp.readdir(work).catch(() => [] as string[])) if (n.startsWith('staging_')) await fsp.rm(path.join(work, n), { recursive: true, force: true });
  await fsp.mkdir(staging, { recursive: true, mode: 0o700 });
  await fsp.chmod(work, 0o700);
  try {
    const need = users.reduce((s, u) => s + u.bytes, 0);
    const free = await freeBytes(staging);
    if (need > free) throw new ScitexError(`Restoring needs ${need} bytes but only ${free} are free under ${targetUsers}.`, 'Free space, or restore fewer users (--user) or elsewhere (--to). Nothing was changed.');
    for (const [i, u] of users.entries()) {
      log.info(`extracting ${u.archive} into staging`);
      const check = memberChecker(u.username, { maxBytes: u.bytes, maxFiles: u.files });
      try {
        await extractArchive(planned[i]!.archive, staging, check);
      } catch (err) {
        if (err instanceof RefusedArchive || /decompression/i.test((err as Error).message)) throw new ScitexError(`Refusing ${u.archive}: ${(err as Error).message}.`, 'The archive is hostile or damaged; nothing live was touched. Use another set.', 1, { cause: err });
        throw new ScitexError(`Extracting ${u.archive} failed: ${(err as Error).message}.`, 'Nothing live was touched. Check free space and the archive (`scitex-data verify --backups`).', 1, { cause: err });
      }
      if (!(await exists(path.join(staging, 'data', 'users', u.username)))) throw new ScitexError(`${u.archive} holds nothing for ${u.username}.`, 'Nothing live was touched. Use another set.');
    }
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
    await fsp.rm(staging, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }).catch((err: unknown) => log.warn(`Could not remove the staging directory ${staging} (${(err as Error).message}); remove it by hand.`));
    await fsp.rmdir(work).catch(() => {}); // only when no safety copies remain in it
  }
}
