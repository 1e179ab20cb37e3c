import fs from 'node:fs';
import path from 'node:path';

/** Django settings directory relative to the project root. */
export const SETTINGS_DIR = 'config/settings';

// `BASE_DIR / "data" / "scitex_cloud_prod.db"` (old data/ location) and `BASE_DIR / "scitex_cloud_dev.db"`
// (old root location), in either quote style; the new form names data/db/sqlite.
const OLD_IN_DATA = /(BASE_DIR\s*\/\s*)(["'])data\2(\s*\/\s*)(["'])([\w.-]+\.(?:db|sqlite3))\4/g;
const OLD_AT_ROOT = /(BASE_DIR\s*\/\s*)(["'])([\w.-]+\.(?:db|sqlite3))\2/g;

/** Rewrites old SQLite paths in a settings file's text to data/db/sqlite/; unchanged text when none. */
export function rewriteSettings(text: string): string {
  return text
    .replace(OLD_IN_DATA, (_m, base: string, q: string, sep: string, _q2: string, file: string) => `${base}${q}data${q}${sep}${q}db${q}${sep}${q}sqlite${q}${sep}${q}${file}${q}`)
    .replace(OLD_AT_ROOT, (_m, base: string, q: string, file: string) => `${base}${q}data${q} / ${q}db${q} / ${q}sqlite${q} / ${q}${file}${q}`);
}

/** Python files in config/settings/, or null when the directory does not exist. */
export function settingsFiles(root: string): string[] | null {
  const dir = path.join(root, SETTINGS_DIR);
  if (!fs.existsSync(dir)) return null;
  return fs.readdirSync(dir).filter((n) => n.endsWith('.py')).sort().map((n) => path.join(SETTINGS_DIR, n));
}

/** Lines of the settings files that still name an old SQLite location (null: no settings directory). */
export function findOldSettings(root: string): { file: string; line: number; text: string }[] | null {
  const files = settingsFiles(root);
  if (files === null) return null;
  const out: { file: string; line: number; text: string }[] = [];
  for (const f of files) {
    const lines = fs.readFileSync(path.join(root, f), 'utf8').split('\n');
    lines.forEach((l, i) => {
      if (rewriteSettings(l) !== l) out.push({ file: f, line: i + 1, text: l.trim() });
    });
  }
  return out;
}

/** A line-by-line diff of two texts (only changed lines, with numbers), for --dry-run output. */
export function lineDiff(file: string, before: string, after: string): string {
  const a = before.split('\n');
  const b = after.split('\n');
  const out = [`--- ${file}`, `+++ ${file}`];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      out.push(`@@ line ${i + 1} @@`);
      if (a[i] !== undefined) out.push(`-${a[i]}`);
      if (b[i] !== undefined) out.push(`+${b[i]}`);
    }
  }
  return out.join('\n');
}
