import fs from 'node:fs';
import path from 'node:path';
import { walkTree, type WalkEntry } from '../../adapters/walk.js';
import { UsageError } from '../../errors.js';
import { anchored, canChown, openDirNoFollow, PlantedLinkError } from '../fs/index.js';

/**
 * Restoring single paths of a user (`restore users --user alice --path proj/paper-1`): the archive is
 * checked and staged whole exactly as for a whole-user restore, then only the named paths move into the
 * live directory, each through descriptors opened component by component without following links.
 */

/** Validates --path values (relative, no NUL or control characters, no "", "." or ".." segment); returns them normalized, nested ones folded. */
export function validateRestorePaths(paths: string[]): string[] {
  const out: string[] = [];
  for (const raw of paths) {
    const bad = (why: string) => new UsageError(`Refusing --path ${JSON.stringify(raw)}: ${why}.`, 'Give a path relative to the user directory, e.g. --path proj/paper-1 (see `scitex-data ls <set> <user>`).');
    if (raw.includes('\0')) throw bad('it contains a NUL byte');
    if (/[\x00-\x1f\x7f]/.test(raw)) throw bad('it contains control characters');
    if (raw.startsWith('/')) throw bad('it is absolute');
    const p = raw.replace(/\/+$/, '');
    if (!p) throw bad('it is empty (restore the whole user without --path)');
    if (p.split('/').some((s) => s === '' || s === '.' || s === '..')) throw bad('it has an empty, "." or ".." segment');
    if (Buffer.byteLength(p) > 4096) throw bad('it is longer than 4096 bytes');
    out.push(p);
  }
  const uniq = [...new Set(out)].sort();
  return uniq.filter((p) => !uniq.some((q) => q !== p && p.startsWith(q + '/')));
}

/**
 * Checks a path against the live user directory without following links: every directory on the way
 * must be a real directory (a symlink there would steer the swap elsewhere: refused, exit 2). Returns
 * whether the path itself exists (it may be anything: it is moved aside, never followed).
 */
export function livePathState(userDir: string, rel: string): boolean {
  const parts = rel.split('/');
  let p = userDir;
  for (const [i, c] of parts.entries()) {
    p = path.join(p, c);
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) return false;
    if (i < parts.length - 1 && !st.isDirectory()) {
      throw new UsageError(`Refusing --path ${JSON.stringify(rel)}: ${path.join(userDir, ...parts.slice(0, i + 1))} in the live tree is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}.`, 'Nothing was changed. Inspect it (someone with write access to data/users put it there), remove it, then re-run.');
    }
  }
  return true;
}

/** Keeps only `paths` (and the directories leading to them) in a staged user tree; throws when a path is not in the backup. */
export function pruneStaged(userDir: string, paths: string[]): void {
  for (const p of paths) {
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const st = fs.lstatSync(path.join(userDir, ...parts.slice(0, i)), { throwIfNoEntry: false });
      if (!st) throw new UsageError(`The backup has no ${JSON.stringify(p)} for this user.`, 'Nothing was changed. See what it holds: `scitex-data ls <set> <user>`.');
      if (i < parts.length && !st.isDirectory()) throw new UsageError(`Refusing --path ${JSON.stringify(p)}: ${parts.slice(0, i).join('/')} is a symlink or file in the backup.`, 'Nothing was changed. Name the path without going through a link.');
    }
  }
  const visit = (rel: string) => {
    for (const n of fs.readdirSync(path.join(userDir, rel))) {
      const r = rel ? `${rel}/${n}` : n;
      if (paths.some((p) => p === r)) continue;
      if (paths.some((p) => p.startsWith(r + '/'))) visit(r);
      else fs.rmSync(path.join(userDir, r), { recursive: true, force: true });
    }
  };
  visit('');
}

/**
 * Moves each staged path into the live user directory (`usersDir` is the anchored data/users): opens the
 * user's directory and every directory on the way with O_NOFOLLOW (missing ones are created like their
 * staged counterpart), moves what is there now into `safetyDir` (mirrored), then renames the staged one in.
 */
export function swapPaths(stagedUser: string, usersDir: string, username: string, paths: string[], safetyDir: string | null): string[] {
  const moved: string[] = [];
  const open = (p: string): number => {
    try {
      return openDirNoFollow(p);
    } catch (err) {
      if (err instanceof PlantedLinkError) throw new UsageError(err.message, err.hint);
      throw err;
    }
  };
  const user = open(path.join(usersDir, username));
  try {
    for (const rel of paths) {
      const parts = rel.split('/');
      const name = parts.pop()!;
      const fds: number[] = [];
      let fd = user;
      try {
        for (const [i, c] of parts.entries()) {
          const next = anchored(fd, c);
          if (!fs.lstatSync(next, { throwIfNoEntry: false })) {
            const model = fs.lstatSync(path.join(stagedUser, ...parts.slice(0, i + 1)));
            fs.mkdirSync(next, { mode: model.mode & 0o7777 });
            const nfd = open(next);
            fs.fchmodSync(nfd, model.mode & 0o7777);
            if (canChown()) fs.fchownSync(nfd, model.uid, model.gid);
            fs.closeSync(nfd);
          }
          fd = open(next);
          fds.push(fd);
        }
        const dest = anchored(fd, name);
        if (fs.lstatSync(dest, { throwIfNoEntry: false })) {
          if (!safetyDir) throw new UsageError(`${path.join(username, rel)} already exists.`, 'Choose an empty --to directory.');
          const aside = path.join(safetyDir, rel);
          fs.mkdirSync(path.dirname(aside), { recursive: true, mode: 0o700 });
          fs.renameSync(dest, aside);
        }
        fs.renameSync(path.join(stagedUser, rel), dest);
        moved.push(rel);
      } finally {
        for (const f of fds) fs.closeSync(f);
      }
    }
  } finally {
    fs.closeSync(user);
  }
  return moved;
}

const sig = (e: WalkEntry) => `${e.type} ${e.mode} ${e.uid}:${e.gid} ${e.type === 'dir' ? '' : `${e.size} ${Math.floor(e.mtimeMs / 1000)}`} ${e.linkTarget ?? ''}`;

/** True when two files hold the same bytes (read in chunks, never following a link). */
function sameBytes(a: string, b: string): boolean {
  const fa = fs.openSync(a, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const fb = fs.openSync(b, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const ba = Buffer.alloc(1 << 20);
      const bb = Buffer.alloc(1 << 20);
      for (;;) {
        const na = fs.readSync(fa, ba, 0, ba.length, null);
        const nb = fs.readSync(fb, bb, 0, bb.length, null);
        if (na !== nb || !ba.subarray(0, na).equals(bb.subarray(0, nb))) return false;
        if (na === 0) return true;
      }
    } finally {
      fs.closeSync(fb);
    }
  } finally {
    fs.closeSync(fa);
  }
}

/**
 * True when the live user directory already equals the staged one: same entries, types, modes, owners,
 * sizes, file mtimes, link targets and bytes (directory mtimes aside). Such a user needs no swap and no
 * safety copy. Any doubt (an entry that cannot be read) counts as a change.
 */
export function sameTree(staged: string, live: string): boolean {
  try {
    const a = walkTree(staged);
    const b = walkTree(live);
    if (a.entries.length !== b.entries.length || a.skipped.length || b.skipped.length) return false;
    const mb = new Map(b.entries.map((e) => [e.rel, e]));
    for (const e of a.entries) {
      const o = mb.get(e.rel);
      if (!o || sig(o) !== sig(e)) return false;
    }
    for (const e of a.entries) if (e.type === 'file' && !sameBytes(path.join(staged, e.rel), path.join(live, e.rel))) return false;
    return true;
  } catch {
    return false;
  }
}
