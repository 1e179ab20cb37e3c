import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CHUNK } from '../../adapters/sink.js';
import { ARCHIVE_EXT, writeArchive, type Compression } from '../../adapters/tarwriter.js';
import { walkTree } from '../../adapters/walk.js';
import type { ResolvedConfig } from '../config/index.js';
import { ScitexError, UsageError } from '../../errors.js';
import { ensurePrivateDir, fsyncDir, fsyncFile, partialName, writeFileAtomic } from '../fs/atomic.js';
import { parseTimestamp, timestamp } from '../time.js';
import { sha256sumLine } from '../fs/hash.js';
import { dataDir, usernameProblem, usersDir, validateUsername, LEGACY_WORK_DIR_NAME, WORK_DIR_NAME } from '../layout/index.js';
import type { Logger, Progress } from '../logger.js';
import { originOf, MANIFEST_FORMAT, readManifest, type Manifest, type ManifestUser, listUserSets } from '../catalog/index.js';
import type { Artifact } from './publish.js';
import { pool } from '../pool.js';
import { outsideSymlinks } from './outside.js';
import { SEALED_EXT } from '../seal/index.js';

export type { Compression };

/** Options of `backup users`. */
export interface UsersBackupOptions {
  usernames?: string[];
  compression?: Compression;
  level?: number;
  /** How many users to archive at once (default: the number of cores). */
  jobs?: number;
  /** Seal (encrypt) each archive to these age recipients: only ciphertext is published (`backup --encrypt-local`). */
  seal?: string[];
}

/** What `backup users` wrote. */
export interface UsersBackupResult {
  set: string;
  artifacts: Artifact[];
  partial: boolean;
  reused: number;
  users: ManifestUser[];
}

/** Default compression levels: chosen by `npm run bench` for speed at a size close to gzip -6. */
export const DEFAULT_LEVEL: Record<Compression, number> = { gzip: 5, zstd: 3, none: 0 };

/** The user directories under data/users: validated names; anything else is reported, not archived. */
export async function listUserDirs(root: string, log: Logger): Promise<string[]> {
  const dir = usersDir(root);
  if (fs.lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink()) log.warn(`${dir} is a symlink to ${fs.readlinkSync(dir)}; backing up what it points to.`);
  let entries: fs.Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new ScitexError(`Cannot read ${dir} (${(err as NodeJS.ErrnoException).code}).`, 'Check --root, or run `scitex-data init` / `scitex-data migrate` first.', 2, { cause: err });
  }
  const out: string[] = [];
  for (const e of entries) {
    if (e.name === '.gitkeep' || e.name === WORK_DIR_NAME || e.name === LEGACY_WORK_DIR_NAME) continue;
    const problem = usernameProblem(e.name);
    if (!e.isDirectory() || problem) {
      log.warn(`data/users/${e.name} is ${problem ? `not a valid username (${problem})` : 'not a directory'}; not backed up.`);
      continue;
    }
    out.push(e.name);
  }
  return out.sort();
}

/**
 * Checks a users backup before anything is written (by it or by the database backup that runs first):
 * the level, the tool the compression needs, the users directory and every named user.
 */
export async function checkUsersBackup(root: string, opts: UsersBackupOptions): Promise<void> {
  const compression = opts.compression ?? 'gzip';
  const level = opts.level ?? DEFAULT_LEVEL[compression];
  if (compression === 'gzip' && (level < 0 || level > 9)) throw new UsageError(`--level ${level} is out of range for gzip.`, 'Use 1 (fastest) to 9 (smallest).');
  if (compression === 'zstd' && (level < 1 || level > 19)) throw new UsageError(`--level ${level} is out of range for zstd.`, 'Use 1 (fastest) to 19 (smallest).');
  if (compression === 'zstd' && spawnSync('zstd', ['--version'], { stdio: 'ignore' }).error) throw new UsageError('zstd is not installed.', 'Install it (Debian: apt-get install zstd) or use --compression gzip.');
  const dir = usersDir(root);
  try {
    await fsp.access(dir, fs.constants.R_OK | fs.constants.X_OK);
  } catch (err) {
    throw new ScitexError(`Cannot read ${dir} (${(err as NodeJS.ErrnoException).code}).`, 'Check --root, or run `scitex-data init` / `scitex-data migrate` first.', 2, { cause: err });
  }
  for (const n of new Set((opts.usernames ?? []).map(validateUsername))) {
    const st = await fsp.lstat(path.join(dir, n)).catch(() => null);
    if (!st?.isDirectory()) throw new UsageError(`There is no user directory data/users/${n}.`, 'Run `scitex-data list` or check the name; nothing was backed up.');
  }
}

/** Archives users into a new set `users_<ts>/` in the backup directory; the caller holds the lock. */
export async function backupUsers(cfg: ResolvedConfig, log: Logger, opts: UsersBackupOptions = {}): Promise<UsersBackupResult> {
  await checkUsersBackup(cfg.root, opts);
  const compression = opts.compression ?? 'gzip';
  const level = opts.level ?? DEFAULT_LEVEL[compression];
  const root = cfg.root;
  const all = await listUserDirs(root, log);
  let names = all;
  if (opts.usernames?.length) {
    names = [...new Set(opts.usernames.map(validateUsername))];
    for (const n of names) if (!all.includes(n)) throw new UsageError(`There is no user directory data/users/${n}.`, 'Run `scitex-data list` or check the name.');
  }
  const backupDir = cfg.backupDir.value;
  await ensurePrivateDir(backupDir, dataDir(cfg.root));
  const seal = opts.seal?.length ? [...opts.seal].sort() : undefined;
  const previous = await previousArchives(backupDir, compression, level, seal);
  // Two runs within one second (tests, a manual run after cron) take the next free second, and never a
  // name older than a set a run just bumped ahead (a newer set must sort after the older ones).
  let at = Date.now();
  const bumped = fs.readdirSync(backupDir).map((n) => (n.startsWith('users_') ? parseTimestamp(n.slice(6))?.getTime() : undefined)).filter((t): t is number => t !== undefined && t >= at - 1000 && t < at + 60_000);
  if (bumped.length) at = Math.max(at, Math.max(...bumped) + 1000);
  while (fs.existsSync(path.join(backupDir, `users_${timestamp(new Date(at))}`))) at += 1000;
  const ts = timestamp(new Date(at));
  const final = path.join(backupDir, `users_${ts}`);
  const work = partialName(final);
  await fsp.mkdir(work, { mode: 0o700 });
  const users: ManifestUser[] = [];
  const skipped: Manifest['skipped'] = [];
  const artifacts: Artifact[] = [];
  // On a terminal, a first lstat-only pass gives the totals for an honest bar with an ETA.
  let totalBytes = 0;
  let totalFiles = 0;
  if (log.showsProgress) {
    for (const n of names) {
      const t = walkTree(path.join(usersDir(root), n), { keepEntries: false });
      totalBytes += t.bytes;
      totalFiles += t.files;
    }
  }
  const progress = log.progress('users', totalBytes, totalFiles);
  try {
    await pool(names, opts.jobs ?? Math.max(1, os.availableParallelism()), async (username) => {
      const started = Date.now();
      const u = await archiveUser(root, username, work, { compression, level, prev: previous.get(username), log, skipped, progress, seal });
      if (!u) return;
      users.push(u);
      artifacts.push({ kind: 'users', path: path.join(final, u.archive), size: u.size, sha256: u.sha256, durationMs: Date.now() - started, database: username });
    });
    progress.done();
    users.sort((a, b) => a.username.localeCompare(b.username));
    const partial = users.some((u) => u.changed.length > 0);
    const manifest: Manifest = { format: MANIFEST_FORMAT, timestamp: ts, created: new Date().toISOString(), compression, level, partial, ...(opts.usernames?.length ? { selection: names } : {}), users, skipped, origin: originOf(cfg), ...(seal ? { sealed: { recipients: seal } } : {}) };
    // Archives are flushed together, once all are written: one fsync per archive inside the pool stalled
    // both workers on a busy disk (wall time above CPU time in the bench); nothing is published before this.
    await Promise.all(users.filter((u) => !u.reused).map((u) => fsyncFile(path.join(work, u.archive))));
    await writeFileAtomic(path.join(work, 'MANIFEST.json'), JSON.stringify(manifest, null, 2) + '\n');
    // SHA256SUMS last inside the set: `sha256sum -c SHA256SUMS` works without scitex-data.
    await writeFileAtomic(path.join(work, 'SHA256SUMS'), users.map((u) => sha256sumLine(u.sha256, u.archive)).join(''));
    await fsyncDir(work);
    await fsp.rename(work, final);
    await fsyncDir(backupDir);
    for (const u of users) log.info(`users ${path.join(final, u.archive)} ${u.size} bytes${u.reused ? ' (unchanged, linked)' : ''}${u.changed.length ? ` PARTIAL: changed while read: ${u.changed.slice(0, 3).join(', ')}` : ''}`);
    for (const s of skipped) log.info(`note: skipped ${s.reason} data/users/${s.user}/${s.path}`);
    return { set: final, artifacts: artifacts.sort((a, b) => a.path.localeCompare(b.path)), partial, reused: users.filter((u) => u.reused).length, users };
  } catch (err) {
    progress.done();
    await fsp.rm(work, { recursive: true, force: true });
    throw err;
  }
}

/** For each user, the newest archive made with the same settings (sealed to the same recipients), with its fingerprint. */
async function previousArchives(backupDir: string, compression: Compression, level: number, seal: string[] | undefined): Promise<Map<string, Previous>> {
  const out = new Map<string, Previous>();
  for (const set of await listUserSets(backupDir)) {
    let m: Manifest;
    try {
      m = readManifest(set.path);
    } catch {
      continue;
    }
    if (m.compression !== compression || m.level !== level || (m.sealed?.recipients ?? []).join() !== (seal ?? []).join()) continue;
    for (const u of m.users) {
      if (out.has(u.username) || u.changed.length) continue;
      // A sealed archive without its plaintext checksum cannot be restored: linking it would carry that forward.
      if (seal && !/^[0-9a-f]{64}$/.test(u.plainSha256 ?? '')) continue;
      // Judged by the archive itself too, not only by the manifest's record: ciphertext is never linked under a
      // plaintext name, nor plaintext into a sealed set.
      if (u.archive.endsWith(SEALED_EXT) !== !!seal) continue;
      const outside = (m.skipped ?? []).filter((x) => x.user === u.username && typeof x.target === 'string').map((x) => x.path).sort().join('\0');
      out.set(u.username, { file: path.join(set.path, u.archive), entry: u, outside });
    }
  }
  return out;
}

/** A user's newest earlier archive, and the outside-pointing symlinks it left out ('\0'-joined, sorted). */
interface Previous {
  file: string;
  entry: ManifestUser;
  outside: string;
}

/** How one user is archived. */
interface ArchiveJob {
  compression: Compression;
  level: number;
  prev: Previous | undefined;
  log: Logger;
  skipped: Manifest['skipped'];
  progress: Progress;
  seal: string[] | undefined;
}

async function archiveUser(root: string, username: string, work: string, job: ArchiveJob): Promise<ManifestUser | null> {
  const { compression, level, prev, log, skipped, progress, seal } = job;
  const dir = path.join(usersDir(root), username);
  const archive = username + ARCHIVE_EXT[compression] + (seal ? SEALED_EXT : '');
  const out = path.join(work, archive);
  for (let attempt = 1; ; attempt++) {
    let walk: ReturnType<typeof walkTree>;
    try {
      walk = walkTree(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt > 1) throw err;
      // The user was deleted while we ran: nothing to archive, and not an error.
      log.warn(`user ${username}: the directory disappeared during the backup; not in this set.`);
      return null;
    }
    // Links a restore would refuse (absolute, or leaving the workspace) stay out: every archive made restores.
    const outside = outsideSymlinks(walk.entries);
    if (outside.size) walk = { ...walk, entries: walk.entries.filter((e) => !outside.has(e.rel)) };
    if (attempt === 1) {
      for (const s of walk.skipped) skipped.push({ user: username, path: s.rel, reason: s.reason });
      for (const [rel, target] of outside) skipped.push({ user: username, path: rel, reason: `symlink to ${target}, outside the workspace`, target });
    }
    const base = { username, archive, files: walk.files, bytes: walk.bytes, fingerprint: walk.fingerprint };
    // Same fingerprint and the same links left out: an archive made before links were left out is not reused.
    if (prev && prev.entry.fingerprint === walk.fingerprint && prev.outside === [...outside.keys()].sort().join('\0') && (await linkIfIntact(prev, out, username, log))) {
      progress.tick(walk.bytes, walk.files);
      return { ...base, size: prev.entry.size, sha256: prev.entry.sha256, ...(seal ? { plainSha256: prev.entry.plainSha256, plainSize: prev.entry.plainSize } : {}), reused: true, changed: [] };
    }
    await fsp.rm(out, { force: true });
    // Sealed: age encrypts as the archive is written (the plaintext archive never reaches the disk).
    const r = await writeArchive(dir, walk.entries, `data/users/${username}`, out, compression, level, (n, f) => attempt === 1 && progress.tick(n, f), seal);
    if (r.changed.length === 0 || attempt === 2) {
      if (r.changed.length) log.warn(`user ${username}: ${r.changed.length} file(s) changed while read, also on retry: ${r.changed.slice(0, 5).join(', ')}; the set is marked partial.`);
      return { ...base, size: r.size, sha256: r.sha256, ...(r.plain ? { plainSha256: r.plain.sha256, plainSize: r.plain.size } : {}), reused: false, changed: r.changed };
    }
    log.warn(`user ${username}: ${r.changed.slice(0, 5).join(', ')} changed while read; retrying this user once.`);
  }
}

/**
 * Shares the previous archive of an unchanged user (a hard link costs no space and keeps this set
 * complete on its own, also after the older set is pruned), but only once the linked bytes are proven
 * to still match the recorded SHA-256: a bit flip in an old archive must not be carried into every later
 * set. The cost is one read of each linked archive (see the bench); changed users are not hashed twice.
 */
async function linkIfIntact(prev: { file: string; entry: ManifestUser }, out: string, username: string, log: Logger): Promise<boolean> {
  const st = await fsp.stat(prev.file).catch(() => null);
  let problem = !st ? 'is missing' : st.size !== prev.entry.size ? `has ${st.size} bytes, not the recorded ${prev.entry.size}` : '';
  if (!problem) {
    await fsp.link(prev.file, out).catch(async () => fsp.copyFile(prev.file, out));
    // Hash the new name: it is the very inode this set will claim.
    if ((await hashFile(out)) === prev.entry.sha256) return true;
    await fsp.rm(out, { force: true });
    problem = 'no longer matches its recorded SHA-256';
  }
  log.warn(`DAMAGED BACKUP: ${prev.file} ${problem}; the set ${path.basename(path.dirname(prev.file))} cannot restore ${username}. A fresh archive is written instead of linking it.`);
  return false;
}

/** SHA-256 of a file through one reused buffer: re-proving every linked archive keeps memory flat. */
async function hashFile(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  const buf = Buffer.allocUnsafe(CHUNK);
  const fh = await fsp.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    for (let n; (n = (await fh.read(buf, 0, CHUNK)).bytesRead) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}
