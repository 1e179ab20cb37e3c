import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { ScitexError } from '../../errors.js';
import { freeBytes, fsyncDir } from '../fs/atomic.js';
import { dataDir, WORK_DIR_NAME } from '../layout/index.js';
import type { Logger, Progress } from '../logger.js';
import { pool } from '../pool.js';
import { anchorDir, anchorPrivateWorkDir, mkdirsLikeParent, type AnchoredDir } from '../fs/nofollow.js';
import { pruneStaged, sameTree, swapPaths } from './paths.js';
import { checkedExtract, liveOwners, planUsersRestore, previewUsersRestore, type RestoredUser, type UsersRestoreOptions, type UsersRestorePlan, type UsersRestoreResult } from './users.js';

/** Carries out a plan: verify, extract each user into staging, check, then swap in with renames. */
export async function executeUsersRestore(cfg: ResolvedConfig, log: Logger, plan: UsersRestorePlan): Promise<UsersRestoreResult> {
  const { set: setDir, entries: users, targetUsers, paths, ts } = plan;
  const opts = { to: plan.to ?? undefined };
  const planned = plan.users.map((u) => ({ ...u }));
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
      await checkedExtract(setDir, u, cwd, owners, plan.identity);
      progress!.tick(u.bytes, u.files);
    });
    progress.done();
    const stagedOf = (p: RestoredUser) => path.join(staging, String(planned.indexOf(p)), 'data', 'users', p.username);
    // A path the backup lacks is refused before any user is touched.
    if (paths) for (const p of planned) pruneStaged(stagedOf(p), paths);
    // A user whose live directory already equals the backup is left alone: no swap, no safety copy.
    if (!opts.to && !paths) {
      for (const p of planned) {
        if (p.safetyCopy && sameTree(stagedOf(p), at(p.target))) {
          p.unchanged = true;
          p.safetyCopy = null;
          log.info(`${p.username} is unchanged: left as it is, no safety copy`);
        }
      }
    }
    // Everything is staged and checked: only now touch live data, one rename pair per user.
    if (planned.some((p) => p.safetyCopy)) await fsp.mkdir(path.join(work, 'safety'), { recursive: true, mode: 0o700 });
    for (const p of planned) {
      if (p.unchanged) continue;
      if (paths && !opts.to) {
        swapPaths(stagedOf(p), usersFd.path, p.username, paths, p.safetyCopy ? path.join(work, 'safety', path.basename(p.safetyCopy)) : null);
        log.info(`restored ${paths.join(', ')} of ${p.username}${p.safetyCopy ? ` (replaced paths kept at ${p.safetyCopy})` : ''}`);
        continue;
      }
      if (p.safetyCopy) await fsp.rename(at(p.target), at(p.safetyCopy));
      await fsp.rename(stagedOf(p), at(p.target));
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

/** Plans and carries out a users restore (or, with dryRun, only previews it): for callers without a prompt. */
export async function restoreUsers(cfg: ResolvedConfig, log: Logger, opts: UsersRestoreOptions & { dryRun?: boolean }): Promise<UsersRestoreResult> {
  const plan = await planUsersRestore(cfg, log, opts);
  return opts.dryRun ? previewUsersRestore(plan) : executeUsersRestore(cfg, log, plan);
}
