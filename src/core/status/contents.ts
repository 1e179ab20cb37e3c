import fs from 'node:fs';
import path from 'node:path';
import { runTool } from '../../adapters/proc.js';
import { tableCounts } from '../../adapters/sqlite.js';
import { scanArchive, type Member } from '../../adapters/tarreader.js';
import { walkTree } from '../../adapters/walk.js';
import { ScitexError, UsageError } from '../../errors.js';
import { findBackup, readManifest, recordedChecksum, type BackupEntry, type ManifestUser } from '../catalog/index.js';
import { usersDir, validateUsername, WORK_DIR_NAME } from '../layout/index.js';
import { memberChecker } from '../restore/index.js';
import os from 'node:os';
import { decryptionOf, withPlainFile } from '../seal/index.js';

/** One member of a user archive, relative to the user's directory ('' is the directory itself). */
export interface Entry {
  rel: string;
  type: 'dir' | 'file' | 'symlink' | 'hardlink';
  size: number;
  mode: number;
  mtime: number;
  linkTarget?: string;
}

const TYPE: Record<string, Entry['type']> = { Directory: 'dir', File: 'file', OldFile: 'file', ContiguousFile: 'file', SymbolicLink: 'symlink', Link: 'hardlink' };

/**
 * Reads one user's archive headers through the strict reader and the restore's member checks (never
 * extracting): a hostile or damaged archive is refused with the reason, exactly as a restore would.
 */
export async function archiveEntries(setDir: string, u: ManifestUser, identity?: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const check = memberChecker(u.username, { maxBytes: u.bytes, maxFiles: u.files });
  let sha: string;
  const file = path.join(setDir, u.archive);
  const decrypt = decryptionOf(file, u, identity);
  try {
    sha = await scanArchive(file, (m: Member) => {
      const refused = check(m);
      if (refused) return refused;
      const rel = m.path.replace(/\/+$/, '').split('/').slice(3).join('/');
      out.push({ rel, type: TYPE[m.type] ?? 'file', size: m.type === 'Link' ? 0 : m.size, mode: (m.mode ?? 0) & 0o7777, mtime: Math.floor((m.mtime?.getTime() ?? 0) / 1000), linkTarget: m.linkpath });
      return null;
    }, decrypt);
  } catch (err) {
    throw new ScitexError(`Cannot read ${u.archive} in ${path.basename(setDir)}: ${(err as Error).message}.`, 'Check the set with `scitex-data verify --backups`; use another set.', 1, { cause: err });
  }
  if (sha !== u.sha256) throw new ScitexError(`${u.archive} in ${path.basename(setDir)} does not match its recorded checksum.`, 'The archive is damaged or was tampered with; use another set.');
  return out;
}

/** The live tree of one user as entries (lstat only, never following links); empty when absent. */
export function liveEntries(root: string, username: string): Entry[] {
  const dir = path.join(usersDir(root), validateUsername(username));
  if (!fs.lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return [];
  return walkTree(dir).entries.map((e) => ({ rel: e.rel, type: e.type === 'dir' ? 'dir' : e.type === 'symlink' ? 'symlink' : 'file', size: e.type === 'file' ? e.size : 0, mode: e.mode, mtime: Math.floor(e.mtimeMs / 1000), linkTarget: e.linkTarget }));
}

/** The live users (directories under data/users, not our work folder). */
export function liveUsers(root: string): string[] {
  const dir = usersDir(root);
  if (!fs.lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.') && d.name !== WORK_DIR_NAME).map((d) => d.name).sort();
}

/** What a backup holds: for a set, its users (and with `user`, that user's files); for a database file, its tables. */
export interface Contents {
  backup: BackupEntry;
  checksumRecorded: boolean;
  users?: { username: string; archive: string; size: number; files: number; bytes: number; reused: boolean; changed: number }[];
  entries?: Entry[];
  tables?: { name: string; rows: number | null }[];
}

/** Lists a backup's contents without extracting or restoring anything. */
export async function backupContents(dir: string, name: string, opts: { user?: string; prefix?: string; identity?: string } = {}): Promise<Contents> {
  // `users_<ts>/alice.tar.gz` (a user's archive, as `list` and restore --from name it) means that set and user.
  const parts = name.replace(/\/+$/, '').split('/');
  const archive = parts.length > 1 && /\.tar(\.gz|\.zst)?(\.age)?$/.test(parts[parts.length - 1]!) ? parts.pop()! : null;
  const e = await findBackup(dir, archive ? parts.join('/') : name);
  if (e.kind === 'users') {
    const m = readManifest(e.path);
    if (archive) {
      const owner = m.users.find((u) => u.archive === archive);
      if (!owner) throw new UsageError(`${e.name} has no archive ${archive}.`, `It holds: ${m.users.map((x) => x.archive).join(', ') || 'nothing'}.`);
      opts = { ...opts, user: opts.user ?? owner.username };
    }
    const users = m.users.map((u) => ({ username: u.username, archive: u.archive, size: u.size, files: u.files, bytes: u.bytes, reused: u.reused, changed: u.changed?.length ?? 0 }));
    if (!opts.user) return { backup: e, checksumRecorded: e.checksum, users };
    const u = m.users.find((x) => x.username === opts.user);
    if (!u) throw new UsageError(`${e.name} has no archive for ${opts.user}.`, `It holds: ${m.users.map((x) => x.username).join(', ') || 'nobody'}.`);
    let entries = await archiveEntries(e.path, u, opts.identity);
    if (opts.prefix) {
      const p = opts.prefix.replace(/\/+$/, '');
      entries = entries.filter((x) => x.rel === p || x.rel.startsWith(p + '/'));
    }
    return { backup: e, checksumRecorded: e.checksum, users: users.filter((x) => x.username === u.username), entries };
  }
  if (opts.user) throw new UsageError(`${e.name} is a database backup; it holds no user files.`);
  const checksumRecorded = recordedChecksum(e.path) !== null;
  // A sealed file is read through a checked decrypted copy in a private temporary directory.
  return withPlainFile(e.path, opts.identity, os.tmpdir(), async (file) => {
    if (file.endsWith('.db')) {
      const counts = tableCounts(file);
      return { backup: e, checksumRecorded, tables: Object.entries(counts).map(([n, rows]) => ({ name: n, rows })) };
    }
    if (file.endsWith('.dump')) {
      const toc = (await runTool('pg_restore', ['--list', file])).stdout;
      const tables = toc.split('\n').map((l) => /; \d+ \d+ TABLE (?:DATA )?(\S+) (\S+) /.exec(l)).filter((x) => x !== null).map((x) => `${x[1]}.${x[2]}`);
      return { backup: e, checksumRecorded, tables: [...new Set(tables)].sort().map((n) => ({ name: n, rows: null })) };
    }
    return { backup: e, checksumRecorded };
  });
}
