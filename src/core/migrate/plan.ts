import fs from 'node:fs';
import path from 'node:path';
import { walkTree } from '../../adapters/walk.js';
import type { ResolvedConfig } from '../config/index.js';
import { sha256File } from '../fs/hash.js';
import { hasDataBlock, readGitignore, withDataBlock, describeLayoutMkdir, dataDir, LAYOUT_DIRS, usernameProblem, lineDiff, rewriteSettings, settingsFiles, sqlitePathsIn, workspaceUsername, ROOT_DATABASE } from '../layout/index.js';
import { databaseMoveProblems, databaseOf, isSideFileName, isSqliteFileName } from '../sqlite/rules.js';
import { SQLITE_SIDE_SUFFIXES } from '../../adapters/sqlite.js';
import { timestamp } from '../time.js';
import { classifyEntry, databaseUsernames, hasWorkspaceInfo, looksLikeLayout, looksLikeWorkspace } from './evidence.js';
import type { ClassifyOptions, Plan, Step } from './types.js';

const IN_PLACE = new Set(['ssh_keys', 'anonymous', 'visitor']);
const isOwnEntry = (n: string) => n === '.gitkeep' || n.startsWith('.scitex-data');
/** Folders the new layout creates at the top of data/ (db, users): a user with such a name must make way first. */
const LAYOUT_TOP = [...new Set(LAYOUT_DIRS.map((d) => d.split('/')[1]!))];
/** The temporary name of a set-aside user (hidden, ours: no later plan mistakes it for a user). */
const asideName = (name: string): string => `data/.scitex-data-aside-${name}`;

/** Bytes below a path (lstat only). */
function sizeOf(abs: string): number {
  const st = fs.lstatSync(abs);
  return st.isDirectory() ? walkTree(abs).bytes : st.size;
}

/** Device of the nearest existing ancestor (where a new entry would be created). */
function deviceOf(abs: string): number {
  let p = abs;
  while (!fs.existsSync(p)) p = path.dirname(p);
  return fs.statSync(p).dev;
}

/** Builds the plan for moving an old tree into the new layout; changes nothing. */
export async function planMigration(cfg: ResolvedConfig, opts: ClassifyOptions = {}): Promise<Plan> {
  const root = cfg.root;
  const data = dataDir(root);
  const plan: Plan = { version: 1, created: new Date().toISOString(), steps: [], left: [], unknown: [], settings: [], gitignore: 'unchanged', conflicts: [], warnings: [], users: [] };
  const explicitUsers = new Set(opts.users ?? []);
  const explicitSystem = new Set(opts.system ?? []);
  for (const u of explicitUsers) {
    const p = usernameProblem(u);
    if (p) plan.conflicts.push(`--user ${JSON.stringify(u)} is refused: ${p}.`);
    else if (!fs.existsSync(path.join(data, u))) plan.conflicts.push(`--user ${u}: there is no data/${u}.`);
  }
  const dbUsers = await databaseUsernames(cfg, opts.usePostgres !== false, plan.warnings);
  const add = (what: Step['what'], src: string, dst: string) => plan.steps.push({ id: plan.steps.length, what, src, dst, size: null });

  // Databases: data/*.db and the old root-level dev database, each with its side files.
  const rootDev = ROOT_DATABASE;
  for (const f of [rootDev, ...SQLITE_SIDE_SUFFIXES.map((s) => rootDev + s)]) if (fs.existsSync(path.join(root, f))) add('database', f, `data/db/sqlite/${f}`);
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(data, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  } catch {
    plan.conflicts.push(`${data} does not exist: check --root.`);
    return plan;
  }
  if (fs.lstatSync(path.join(data, 'users'), { throwIfNoEntry: false })?.isSymbolicLink()) plan.conflicts.push(`data/users is a symlink (to ${fs.readlinkSync(path.join(data, 'users'))}): mount the volume at data/users instead; users would be moved through the link.`);
  for (const d of ['data/db', 'data/db/sqlite', 'data/db/backups', 'data/db/migrations_archive']) {
    // The layout is created and filled through these paths: a link would carry databases and backups elsewhere.
    if (fs.lstatSync(path.join(root, d), { throwIfNoEntry: false })?.isSymbolicLink()) plan.conflicts.push(`${d} is a symlink (to ${fs.readlinkSync(path.join(root, d))}): databases and backups would be moved through it; replace it with a directory.`);
  }
  const setAside = layoutNamedUsers(data, explicitUsers, explicitSystem, dbUsers, plan);
  for (const n of setAside) {
    add('user', `data/${n}`, asideName(n));
    plan.steps[plan.steps.length - 1]!.aside = true;
    add('user', asideName(n), `data/users/${n}`);
    plan.steps[plan.steps.length - 1]!.from = `data/${n}`;
    plan.users.push(n);
  }
  for (const e of entries) {
    const n = e.name;
    const abs = path.join(data, n);
    if (n.startsWith('.scitex-data-aside-')) plan.conflicts.push(`data/${n} holds a user set aside by an interrupted migration or rollback: finish it with \`scitex-data migrate --rollback\`, or rename it back to data/${n.slice('.scitex-data-aside-'.length)}.`);
    if (isOwnEntry(n) || LAYOUT_TOP.includes(n)) continue;
    if (e.isFile() && isSqliteFileName(n)) {
      add('database', `data/${n}`, `data/db/sqlite/${n}`);
      continue;
    }
    if (!e.isDirectory()) {
      plan.unknown.push({ entry: `data/${n}`, reason: 'a file the app does not use; move it elsewhere if it matters' });
      continue;
    }
    const kind = classifyEntry(n, abs, dbUsers, explicitUsers, explicitSystem);
    if (kind === 'ambiguous') {
      plan.conflicts.push(`data/${n} could be the app's ${n}/ folder or the workspace of user "${n}" (${hasWorkspaceInfo(abs) ? 'it has a workspace_info.json' : 'the name is in auth_user'}): re-run with --user ${n} or --system ${n}.`);
    } else if (kind === 'user') {
      const problem = usernameProblem(n);
      if (problem) plan.unknown.push({ entry: `data/${n}/`, reason: `not a valid username (${problem}); left in place` });
      else {
        add('user', `data/${n}`, `data/users/${n}`);
        plan.users.push(n);
      }
    } else if (kind === 'system') {
      if (IN_PLACE.has(n)) plan.left.push({ entry: `data/${n}/`, reason: 'used by the app in place' });
      else if (n === 'backups') {
        for (const c of fs.readdirSync(abs).sort()) {
          add('backup', `data/backups/${c}`, `data/db/backups/${c}`);
          plan.steps[plan.steps.length - 1]!.mode = fs.lstatSync(path.join(abs, c)).mode & 0o7777;
        }
        add('rmdir', 'data/backups', '');
        // --rollback recreates the folder as it was (mode and owner), not as root's umask would make it.
        const st = fs.lstatSync(abs);
        Object.assign(plan.steps[plan.steps.length - 1]!, { mode: st.mode & 0o7777, owner: [st.uid, st.gid] });
      } else add('migrations', `data/${n}`, `data/db/migrations_archive/${n}`);
    } else {
      plan.unknown.push({ entry: `data/${n}/`, reason: `no evidence it is a user (no workspace_info.json, not in auth_user): if it is one, re-run with --user ${n}; otherwise move it out of data/` });
    }
  }
  keepOtherDatabase(root, plan);
  await checkSteps(cfg, plan, !!opts.sizes);
  plan.layoutCreated = ['data/db', ...LAYOUT_DIRS].filter((d) => !fs.existsSync(path.join(root, d)) || setAside.some((n) => d === `data/${n}` || d.startsWith(`data/${n}/`)));
  if (!opts.noSettings) {
    for (const f of settingsFiles(root) ?? []) {
      const before = fs.readFileSync(path.join(root, f), 'utf8');
      const after = rewriteSettings(before);
      if (after !== before) plan.settings.push({ file: f, diff: lineDiff(f, before, after) });
    }
  }
  const gi = readGitignore(root);
  if (withDataBlock(gi) !== gi) plan.gitignore = hasDataBlock(gi) ? 'updated' : 'added';
  plan.modeChanges = modeChanges(root, plan);
  return plan;
}

/**
 * Two old databases that would land on the same name (the root-level scitex_cloud_dev.db and
 * data/scitex_cloud_dev.db): the one the settings name stays the live database; the other moves, with its
 * side files, into data/db/backups/ as `<name>_from-<root|data>_<ts>.db`, and the plan says so. When the
 * settings name neither (or both), the one written last is the live one. --rollback gives both back.
 */
function keepOtherDatabase(root: string, plan: Plan): void {
  const mains = plan.steps.filter((s) => s.what === 'database' && !isSideFileName(s.src));
  const named = new Set((settingsFiles(root) ?? []).flatMap((f) => sqlitePathsIn(fs.readFileSync(path.join(root, f), 'utf8'))));
  const ts = timestamp();
  for (const dst of new Set(mains.map((s) => s.dst))) {
    const rivals = mains.filter((s) => s.dst === dst);
    if (rivals.length < 2) continue;
    const byName = rivals.filter((s) => named.has(s.src));
    const written = (s: Step) => Math.max(...[s.src, ...SQLITE_SIDE_SUFFIXES.map((x) => s.src + x)].map((p) => fs.lstatSync(path.join(root, p), { throwIfNoEntry: false })?.mtimeMs ?? 0));
    const live = byName.length === 1 ? byName[0]! : [...rivals].sort((a, b) => written(b) - written(a))[0]!;
    const why = byName.length === 1 ? 'the settings name it' : `the settings name ${byName.length ? 'both' : 'neither'}, and it was written last`;
    for (const other of rivals.filter((s) => s !== live)) {
      const where = other.src.includes('/') ? path.dirname(other.src).replace(/\//g, '-') : 'root';
      const kept = `data/db/backups/${path.basename(other.src, '.db')}_from-${where}_${ts}.db`;
      for (const s of plan.steps.filter((x) => x.what === 'database' && databaseOf(x.src) === other.src)) {
        s.dst = kept + s.src.slice(other.src.length);
        s.mode = fs.lstatSync(path.join(root, s.src)).mode & 0o7777; // made private as a backup; --rollback restores it
      }
      plan.warnings.push(`${other.src} and ${live.src} would both become ${dst}: ${live.src} stays the live database (${why}); ${other.src} is kept as ${kept} with its side files (--rollback gives both back).`);
    }
  }
}

/** Every directory the run creates and every mode it changes: the app runs as its own user and relies on them. */
function modeChanges(root: string, plan: Plan): string[] {
  const creates = ['data/db', ...LAYOUT_DIRS].filter((d) => plan.layoutCreated?.includes(d) || !fs.existsSync(path.join(root, d)));
  const out = creates.map((d) => describeLayoutMkdir(root, d));
  const backups = plan.steps.filter((s) => s.what === 'backup').length;
  if (backups) out.push(`chmod 600 the ${backups} moved backup entr${backups === 1 ? 'y' : 'ies'}' files (backups hold secrets); nothing else changes mode or owner`);
  return out;
}

/**
 * Which of data/db and data/users are the workspace of a user of that name (evidence as for any user:
 * --user, a workspace_info.json naming them, or auth_user plus a workspace's shape), and not the layout.
 * Both at once is ambiguous and stops the plan.
 */
function layoutNamedUsers(data: string, explicitUsers: Set<string>, explicitSystem: Set<string>, dbUsers: Set<string>, plan: Plan): string[] {
  const out: string[] = [];
  for (const n of LAYOUT_TOP) {
    const abs = path.join(data, n);
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st?.isDirectory() || explicitSystem.has(n)) continue;
    const named = workspaceUsername(abs) === n;
    if (!explicitUsers.has(n) && !named && !(dbUsers.has(n) && looksLikeWorkspace(abs))) continue;
    if (!explicitUsers.has(n) && looksLikeLayout(n, abs)) {
      plan.conflicts.push(`data/${n} could be the new layout's ${n}/ folder or the workspace of user "${n}" (${named ? 'its workspace_info.json names that user' : 'the name is in auth_user'}): re-run with --user ${n} or --system ${n}.`);
    } else if (st.dev !== fs.lstatSync(data).dev) {
      plan.conflicts.push(`data/${n} is a mount point holding the workspace of user "${n}": it cannot be moved to data/users/${n} by renaming; unmount it and move it by hand.`);
    } else out.push(n);
  }
  return out;
}

/** Fills sizes, flags conflicts, cross-device moves, free space and databases in use. */
async function checkSteps(cfg: ResolvedConfig, plan: Plan, sizes: boolean): Promise<void> {
  const root = cfg.root;
  const seen = new Map<string, string>();
  const needByDev = new Map<number, number>();
  // Paths below a set-aside user are empty when the layout is created there: what is there now is theirs.
  const asides = plan.steps.filter((s) => s.aside).map((s) => s.src);
  const replaced = (rel: string) => asides.some((a) => rel === a || rel.startsWith(a + '/'));
  for (const s of plan.steps) {
    if (s.what === 'rmdir') continue;
    const src = path.join(root, s.from ?? s.src);
    const dst = path.join(root, s.dst);
    const dstDir = replaced(path.dirname(s.dst)) ? dataDir(root) : path.dirname(dst);
    if (seen.has(s.dst)) plan.conflicts.push(`${s.src} and ${seen.get(s.dst)} would both become ${s.dst}.`);
    seen.set(s.dst, s.src);
    s.crossDevice = fs.lstatSync(src).dev !== deviceOf(dstDir);
    if (sizes || s.crossDevice) s.size = sizeOf(src);
    if (s.crossDevice) needByDev.set(deviceOf(dstDir), (needByDev.get(deviceOf(dstDir)) ?? 0) + (s.size ?? 0));
    if (!replaced(s.dst) && (fs.existsSync(dst) || isBrokenLink(dst))) {
      const a = fs.lstatSync(src);
      const b = fs.lstatSync(dst);
      if (a.isFile() && b.isFile() && a.size === b.size && (await sha256File(src)) === (await sha256File(dst))) s.identical = true;
      else plan.conflicts.push(`${s.dst} already exists and differs from ${s.src}: move one of them aside, then re-run.`);
    }
    if (s.what === 'database' && !isSideFileName(s.src)) plan.conflicts.push(...databaseMoveProblems(root, s.src, s.dst));
  }
  for (const [dev, need] of needByDev) {
    const probe = plan.steps.find((s) => s.crossDevice && deviceOf(path.dirname(path.join(root, s.dst))) === dev)!;
    let p = path.dirname(path.join(root, probe.dst));
    while (!fs.existsSync(p)) p = path.dirname(p);
    const st = fs.statfsSync(p);
    const free = Number(st.bavail) * Number(st.bsize);
    if (need > free) plan.conflicts.push(`Copying across filesystems needs ${need} bytes on ${p} but only ${free} are free.`);
  }
}

function isBrokenLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}
