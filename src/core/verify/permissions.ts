import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { APP_DIRS, BACKUP_DIRS, dataDir } from '../layout/index.js';
import { ensurePrivateDirSync, openDirNoFollow } from '../fs/nofollow.js';
import { isSqliteFileName, isSideFileName } from '../sqlite/rules.js';
import { fail, pass, firstFew, type Check } from './types.js';

/** Who must be able to use a directory, and for what (x: traverse, wx: create and delete inside). */
interface Need {
  uid: number;
  gid: number;
  bits: number;
}

/** True when uid/gid (the gid of the user's own files) may do `bits` (1 = x, 3 = wx) in a directory. */
function allows(st: fs.Stats, n: Need): boolean {
  if (n.uid === 0) return true;
  const cls = st.uid === n.uid ? 6 : st.gid === n.gid ? 3 : 0;
  return ((st.mode >> cls) & n.bits) === n.bits;
}

/** The app's users of a directory: the owner of data/, and the owners of the databases or workspaces in it. */
function needsOf(root: string, rel: string, dataOwner: fs.Stats): Need[] {
  const needs: Need[] = [{ uid: dataOwner.uid, gid: dataOwner.gid, bits: rel === 'data/db' ? 1 : 3 }];
  const dir = path.join(root, rel);
  if (rel === 'data/db') return needs;
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return needs;
  }
  for (const n of names.slice(0, 1000)) {
    if (n.startsWith('.') || n.startsWith('~')) continue;
    if (rel === 'data/db/sqlite' && !(isSqliteFileName(n) && !isSideFileName(n))) continue;
    const st = fs.lstatSync(path.join(dir, n), { throwIfNoEntry: false });
    if (st && !st.isSymbolicLink() && !needs.some((x) => x.uid === st.uid)) needs.push({ uid: st.uid, gid: st.gid, bits: 3 });
  }
  return needs;
}

/**
 * Directories the app uses must stay usable by it (the app runs as its own user; an old version of this
 * tool made data/db root-owned 0700 and the app could no longer open its database). The backup
 * directory and files are the only private things.
 */
export function appDirCheck(root: string): Check {
  const dataOwner = fs.statSync(path.join(root, 'data'), { throwIfNoEntry: false });
  if (!dataOwner) return pass('permissions.app-directories', 'no data/ directory (see layout.directories)');
  const broken: { rel: string; st: fs.Stats; who: Need[] }[] = [];
  for (const rel of APP_DIRS) {
    const st = fs.lstatSync(path.join(root, rel), { throwIfNoEntry: false });
    if (!st?.isDirectory()) continue;
    const who = needsOf(root, rel, dataOwner).filter((n) => !allows(st, n));
    if (who.length) broken.push({ rel, st, who });
  }
  if (!broken.length) return pass('permissions.app-directories', `${APP_DIRS.join(', ')} are usable by the app's user (uid ${dataOwner.uid}, the owner of data/)`);
  const describe = broken.map((b) => `chown ${dataOwner.uid}:${dataOwner.gid} ${b.rel} && chmod ${((b.st.mode & 0o777) | 0o755).toString(8)} ${b.rel} (now ${b.st.uid}:${b.st.gid} ${(b.st.mode & 0o777).toString(8)})`);
  const apply = async () => {
    for (const b of broken) {
      const fd = openDirNoFollow(path.join(root, b.rel));
      try {
        fs.fchownSync(fd, dataOwner.uid, dataOwner.gid);
        fs.fchmodSync(fd, (b.st.mode & 0o7777) | 0o755);
      } finally {
        fs.closeSync(fd);
      }
    }
  };
  const what = broken.map((b) => `${b.rel} (${b.st.uid}:${b.st.gid} ${(b.st.mode & 0o777).toString(8)}) is not usable by uid ${b.who.map((w) => w.uid).join(', ')}`);
  return fail('permissions.app-directories', firstFew(what, 2), 'The app cannot open its data: run `scitex-data verify --fix` (gives them back to the owner of data/, mode 755).', { fix: { describe, apply } });
}

/** Backup directories are 0700 and backup files 0600: backups hold password hashes and access tokens. */
export function backupPermissionChecks(cfg: ResolvedConfig): Check[] {
  const dirs = [...new Set([...BACKUP_DIRS.map((d) => path.join(cfg.root, d)), cfg.backupDir.value])].filter((d) => fs.lstatSync(d, { throwIfNoEntry: false })?.isDirectory());
  const open = dirs.filter((d) => (fs.lstatSync(d).mode & 0o077) !== 0);
  const out: Check[] = [
    open.length
      ? fail('permissions.backup-directory', `readable by others: ${firstFew(open.map((d) => path.relative(cfg.root, d) || d))}`, 'Run `scitex-data verify --fix` (chmod 700).', {
          fix: { describe: open.map((d) => `chmod 700 ${d}`), apply: async () => { for (const d of open) ensurePrivateDirSync(d, dataDir(cfg.root)); } },
        })
      : pass('permissions.backup-directory', 'the backup directory is private (0700)'),
  ];
  const files: string[] = [];
  const bdir = cfg.backupDir.value;
  for (const n of fs.existsSync(bdir) ? fs.readdirSync(bdir) : []) {
    if (n.startsWith('.')) continue; // .gitkeep, and leftovers of interrupted runs (removed by the next backup)
    const p = path.join(bdir, n);
    const st = fs.lstatSync(p);
    if (st.isFile()) files.push(p);
    else if (st.isDirectory()) for (const m of fs.readdirSync(p)) if (fs.lstatSync(path.join(p, m)).isFile()) files.push(path.join(p, m));
  }
  const loose = files.filter((f) => (fs.lstatSync(f).mode & 0o077) !== 0);
  out.push(
    loose.length
      ? fail('permissions.backup-files', `not 0600: ${firstFew(loose.map((f) => path.relative(bdir, f)))}`, 'Backups hold secrets: run `scitex-data verify --fix` (chmod 600).', {
          fix: { describe: loose.map((f) => `chmod 600 ${f}`), apply: async () => { for (const f of loose) chmodNoFollow(f, 0o600); } },
        })
      : pass('permissions.backup-files', `${files.length} backup file(s) are 0600`),
  );
  return out;
}

/** chmod through an O_NOFOLLOW descriptor: a file swapped for a link since we looked is refused. */
function chmodNoFollow(file: string, mode: number): void {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    fs.fchmodSync(fd, mode);
  } finally {
    fs.closeSync(fd);
  }
}
