import fs from 'node:fs';
import path from 'node:path';
import ignore from 'ignore';

const BEGIN = '# >>> scitex-data: data directory layout (managed by `scitex-data init`) >>>';
const END = '# <<< scitex-data <<<';

/**
 * The data block. It ignores everything under data/ except the skeleton and its .gitkeep files, and
 * re-includes each skeleton directory explicitly, so that an earlier `data/**\/` or `data/` rule
 * (which in git makes a re-included child untrackable) is overridden, while unknown entries such
 * as data/ssh_keys stay ignored.
 */
export const DATA_BLOCK_LINES = [
  BEGIN,
  '/data/*',
  '!/data/db/',
  '!/data/users/',
  '/data/db/*',
  '!/data/db/sqlite/',
  '!/data/db/backups/',
  '!/data/db/migrations_archive/',
  '/data/db/sqlite/*',
  '!/data/db/sqlite/.gitkeep',
  '/data/db/backups/*',
  '!/data/db/backups/.gitkeep',
  '/data/db/migrations_archive/*',
  '!/data/db/migrations_archive/.gitkeep',
  '/data/users/*',
  '!/data/users/.gitkeep',
  END,
];

/** Paths and whether git must ignore them, relative to the root: the intent of the data block. */
export const GITIGNORE_INTENT: { path: string; ignored: boolean }[] = [
  { path: 'data/db/sqlite/.gitkeep', ignored: false },
  { path: 'data/db/backups/.gitkeep', ignored: false },
  { path: 'data/db/migrations_archive/.gitkeep', ignored: false },
  { path: 'data/users/.gitkeep', ignored: false },
  { path: 'data/db/sqlite/scitex_cloud_dev.db', ignored: true },
  { path: 'data/db/sqlite/scitex_cloud_prod.db-wal', ignored: true },
  { path: 'data/db/backups/scitex_cloud_prod_20250101_000000.dump', ignored: true },
  { path: 'data/db/migrations_archive/old_migrations/0001_initial.py', ignored: true },
  { path: 'data/users/alice/workspace_info.json', ignored: true },
  { path: 'data/users/alice/proj/p/.git/config', ignored: true },
];

/** The text of the block, newline-terminated. */
export const dataBlock = (): string => DATA_BLOCK_LINES.join('\n') + '\n';

/** True when the text already contains our marked block. */
export const hasDataBlock = (text: string): boolean => text.includes(BEGIN) && text.includes(END);

/** Returns the .gitignore text with our block appended (or refreshed in place), other lines kept. */
export function withDataBlock(text: string): string {
  if (hasDataBlock(text)) {
    const start = text.indexOf(BEGIN);
    const end = text.indexOf(END, start) + END.length;
    const rest = text.slice(end).replace(/^\r?\n/, '');
    return text.slice(0, start) + dataBlock() + rest;
  }
  const sep = text === '' || text.endsWith('\n') ? '' : '\n';
  return text + sep + (text === '' ? '' : '\n') + dataBlock();
}

/** The text with our block removed (wherever it is) and appended at the end, so no later rule overrides it. */
export function withDataBlockLast(text: string): string {
  if (!hasDataBlock(text)) return withDataBlock(text);
  const start = text.indexOf(BEGIN);
  const end = text.indexOf(END, start) + END.length;
  const without = (text.slice(0, start) + text.slice(end).replace(/^\r?\n/, '')).replace(/\n{2,}$/, '\n');
  return withDataBlock(without);
}

/** Paths whose ignore status (by git's rules, parents included) differs from the intent. */
export function gitignoreViolations(gitignoreText: string): { path: string; expected: boolean; actual: boolean }[] {
  const ig = ignore().add(gitignoreText);
  return GITIGNORE_INTENT.map((t) => ({ path: t.path, expected: t.ignored, actual: ig.ignores(t.path) })).filter((r) => r.expected !== r.actual);
}

/** Reads `<root>/.gitignore`, '' when absent. */
export function readGitignore(root: string): string {
  try {
    return fs.readFileSync(path.join(root, '.gitignore'), 'utf8');
  } catch {
    return '';
  }
}
