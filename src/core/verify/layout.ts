import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedConfig } from '../config/index.js';
import { gitignoreViolations, readGitignore, withDataBlockLast, writeGitignore, APP_ENTRIES, dataDir, LAYOUT_DIRS, usernameProblem, usersDir, findOldLayout, findOldSettings, LEGACY_WORK_DIR_NAME, WORK_DIR_NAME } from '../layout/index.js';
import { appDirCheck, backupPermissionChecks } from './permissions.js';
import { classifyEntry, databaseUsernames, hasWorkspaceInfo } from '../migrate/index.js';
import { checkDatabase } from '../../adapters/sqlite.js';
import { fail, pass, firstFew, warn, type Check } from './types.js';

/** The layout checks of `verify`: directories, old leftovers, settings, .gitignore, SQLite, permissions, users. */
export async function layoutChecks(cfg: ResolvedConfig, opts: { usePostgres?: boolean } = {}): Promise<Check[]> {
  const root = cfg.root;
  const checks: Check[] = [];
  const missingDirs = LAYOUT_DIRS.filter((d) => !fs.existsSync(path.join(root, d)));
  checks.push(
    missingDirs.length
      ? fail('layout.directories', `missing: ${firstFew(missingDirs)}`, 'Run `scitex-data verify --fix` (or `scitex-data init`).', {
          fix: { describe: missingDirs.map((d) => `create ${d}/`), apply: async () => { for (const d of missingDirs) await fsp.mkdir(path.join(root, d), { recursive: true, mode: 0o700 }); } },
        })
      : pass('layout.directories', 'data/db/{sqlite,backups,migrations_archive} and data/users exist'),
  );
  const missingKeep = LAYOUT_DIRS.map((d) => `${d}/.gitkeep`).filter((f) => !fs.existsSync(path.join(root, f)));
  checks.push(
    missingKeep.length
      ? fail('layout.gitkeep', `missing: ${firstFew(missingKeep)}`, 'Run `scitex-data verify --fix`.', {
          fix: { describe: missingKeep.map((f) => `create ${f}`), apply: async () => { for (const f of missingKeep) { await fsp.mkdir(path.dirname(path.join(root, f)), { recursive: true, mode: 0o700 }); await fsp.writeFile(path.join(root, f), '', { flag: 'a' }); } } },
        })
      : pass('layout.gitkeep', 'every layout directory has its .gitkeep'),
  );
  const old = [...findOldLayout(root), ...(await usersByEvidence(cfg, opts.usePostgres ?? false))];
  checks.push(old.length ? fail('layout.old-entries', `old layout left: ${firstFew(old)}`, 'Run `scitex-data migrate --dry-run`, then `scitex-data migrate`.') : pass('layout.old-entries', 'no database files, backups or users left at the top of data/ or the root'));
  checks.push(unknownEntries(root, old));
  checks.push(settingsCheck(root));
  checks.push(gitignoreCheck(root));
  checks.push(...sqliteChecks(root));
  checks.push(appDirCheck(root), ...backupPermissionChecks(cfg));
  checks.push(workspaceInfoCheck(root));
  return checks;
}

/**
 * Users migrate would move that findOldLayout cannot see (no workspace_info.json, named only in auth_user):
 * decided by migrate's own rule (classifyEntry), so verify never calls one of them "not used by the app".
 */
async function usersByEvidence(cfg: ResolvedConfig, usePostgres: boolean): Promise<string[]> {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dataDir(cfg.root), { withFileTypes: true });
  } catch {
    return [];
  }
  const candidates = entries.filter((e) => e.isDirectory() && !(APP_ENTRIES as readonly string[]).includes(e.name) && !e.name.startsWith('.') && !hasWorkspaceInfo(path.join(dataDir(cfg.root), e.name)));
  if (!candidates.length) return [];
  const dbUsers = await databaseUsernames(cfg, usePostgres, []);
  const out: string[] = [];
  for (const e of candidates) {
    const kind = classifyEntry(e.name, path.join(dataDir(cfg.root), e.name), dbUsers);
    if (kind === 'user') out.push(`user directory data/${e.name}/ (auth_user names "${e.name}")`);
    else if (kind === 'ambiguous') out.push(`data/${e.name}/ (the app's folder or user "${e.name}": migrate asks for --user or --system)`);
  }
  return out;
}

function unknownEntries(root: string, old: string[]): Check {
  let names: string[] = [];
  try {
    names = fs.readdirSync(dataDir(root));
  } catch {
    return fail('layout.unknown-entries', 'data/ does not exist', 'Check --root, or run `scitex-data init`.');
  }
  const known = new Set<string>([...APP_ENTRIES, '.gitkeep', '.scitex-data.lock', '.scitex-data.lock.info']);
  const unknown = names.filter((n) => !known.has(n) && !n.startsWith('.scitex-data') && !old.some((o) => o.includes(`data/${n}`)));
  return unknown.length
    ? warn('layout.unknown-entries', `not used by the app: ${firstFew(unknown.map((n) => `data/${n}`))}`, 'The app references nothing else under data/: move these elsewhere, or classify them with `scitex-data migrate --user NAME`.')
    : pass('layout.unknown-entries', 'nothing unknown under data/');
}

function settingsCheck(root: string): Check {
  const found = findOldSettings(root);
  if (found === null) return pass('settings.sqlite-paths', 'no config/settings/ directory here');
  return found.length
    ? fail('settings.sqlite-paths', `old SQLite paths in ${firstFew(found.map((f) => `${f.file}:${f.line}`))}`, 'Run `scitex-data migrate` (it updates settings), or point them at BASE_DIR / "data" / "db" / "sqlite".')
    : pass('settings.sqlite-paths', 'config/settings/ points SQLite at data/db/sqlite/');
}

function gitignoreCheck(root: string): Check {
  const text = readGitignore(root);
  const v = gitignoreViolations(text);
  const fix = { describe: ['move (or append) the scitex-data block to the end of .gitignore'], apply: () => writeGitignore(root, withDataBlockLast(text)) };
  if (!v.length) return pass('gitignore.rules', 'by git\'s rules: databases, backups and users ignored; .gitkeep files trackable');
  const wrong = v.map((x) => `${x.path} is ${x.actual ? 'ignored' : 'not ignored'}`);
  const trap = /^\s*\/?data\/\*\*\/\s*$/m.test(text) ? ' (a data/**/ rule excludes the directories, so no .gitkeep below them can be tracked)' : '';
  return fail('gitignore.rules', `${firstFew(wrong, 2)}${trap}`, 'Run `scitex-data verify --fix` to append the data block, which overrides such rules.', { fix });
}

function sqliteChecks(root: string): Check[] {
  const dir = path.join(root, 'data/db/sqlite');
  let dbs: string[] = [];
  try {
    dbs = fs.readdirSync(dir).filter((n) => n.endsWith('.db'));
  } catch {
    return [];
  }
  if (!dbs.length) return [pass('db.sqlite', 'no SQLite database in data/db/sqlite/')];
  const bad = dbs.map((n) => ({ n, p: checkDatabase(path.join(dir, n)) })).filter((x) => x.p.length);
  return [bad.length ? fail('db.sqlite', `${firstFew(bad.map((b) => `${b.n}: ${b.p[0]}`))}`, 'Restore it from a backup: `scitex-data restore db`.') : pass('db.sqlite', `${dbs.length} database(s) pass PRAGMA quick_check`)];
}

function workspaceInfoCheck(root: string): Check {
  let names: string[] = [];
  try {
    names = fs.readdirSync(usersDir(root)).filter((n) => n !== '.gitkeep' && n !== WORK_DIR_NAME && n !== LEGACY_WORK_DIR_NAME);
  } catch {
    return pass('users.workspace-info', 'no data/users/ directory');
  }
  const wrong: string[] = [];
  const invalid: string[] = [];
  for (const n of names) {
    if (usernameProblem(n)) invalid.push(n);
    for (const rel of ['workspace_info.json', 'proj/workspace_info.json']) {
      let info: { username?: unknown };
      try {
        info = JSON.parse(fs.readFileSync(path.join(usersDir(root), n, rel), 'utf8')) as { username?: unknown };
      } catch {
        continue;
      }
      if (info.username !== undefined && info.username !== n) wrong.push(`${n}/${rel} names ${JSON.stringify(info.username)}`);
    }
  }
  if (wrong.length) return fail('users.workspace-info', firstFew(wrong), 'A workspace in the wrong directory: move it to data/users/<the named user>/ or correct the file.');
  if (invalid.length) return warn('users.workspace-info', `not valid usernames: ${firstFew(invalid)}`, 'These directories are not backed up; rename or remove them.');
  return pass('users.workspace-info', `${names.length} user director${names.length === 1 ? 'y' : 'ies'}; every workspace_info.json names its own directory`);
}
