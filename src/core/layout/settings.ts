import fs from 'node:fs';
import path from 'node:path';

/** Django settings directory relative to the project root. */
export const SETTINGS_DIR = 'config/settings';

// A string literal, in either quote style (no escapes: path parts never need them).
const LIT = String.raw`(?:"[^"\\\n]*"|'[^'\\\n]*')`;
// `BASE_DIR / "data" / "x.db"`, with any whitespace (Black splits the expression over lines, inside
// parentheses); `str(BASE_DIR / ...)` contains the same expression.
const SLASH_FORM = new RegExp(String.raw`\bBASE_DIR(?:\s*/\s*${LIT})+`, 'g');
// `os.path.join(BASE_DIR, "data", "x.db")`, on one line or several, with or without a trailing comma.
const JOIN_FORM = new RegExp(String.raw`\bos\.path\.join\(\s*BASE_DIR(?:\s*,\s*${LIT})+\s*,?\s*\)`, 'g');
const LIT_ONE = new RegExp(LIT, 'g');
const NEW_DIRS = ['data', 'db', 'sqlite'];

/** The one database the old app kept at the repository root (migrate moves it into data/db/sqlite/). */
export const ROOT_DATABASE = 'scitex_cloud_dev.db';

/**
 * The rewritten text of one path expression when it names an old SQLite location (the root:
 * `BASE_DIR / "x.db"`, or data/: `BASE_DIR / "data" / "x.db"`), else null. New parts are inserted with the
 * separator that already precedes the file name, so a Black-split expression stays Black-split.
 */
function rewriteExpression(expr: string): string | null {
  const lits = [...expr.matchAll(LIT_ONE)];
  const parts = lits.flatMap((m) => m[0].slice(1, -1).split('/')).filter((p) => p !== '' && p !== '.');
  const file = parts[parts.length - 1];
  const dirs = parts.slice(0, -1);
  if (!file || !/^[\w.-]+\.(?:db|sqlite3?)$/.test(file)) return null;
  // At the root only the old dev database (the one migrate moves): `BASE_DIR / "db.sqlite3"` stays as it is.
  if (!((dirs.length === 0 && file === ROOT_DATABASE) || (dirs.length === 1 && dirs[0] === 'data'))) return null;
  const needed = NEW_DIRS.slice(dirs.length);
  const last = lits[lits.length - 1]!;
  const q = last[0][0]!;
  const inner = last[0].slice(1, -1);
  if (inner.includes('/')) {
    // "data/x.db" in one literal: keep it one literal.
    const litDirs = inner.split('/').slice(0, -1);
    const replaced = `${q}${[...litDirs, ...needed, file].join('/')}${q}`;
    return expr.slice(0, last.index) + replaced + expr.slice(last.index + last[0].length);
  }
  const prev = lits.length > 1 ? lits[lits.length - 2]! : null;
  // The separator before the file literal: from the previous literal, or from BASE_DIR.
  const sepStart = prev ? prev.index + prev[0].length : expr.indexOf('BASE_DIR') + 'BASE_DIR'.length;
  const sep = expr.slice(sepStart, last.index);
  const inserted = needed.map((d) => `${q}${d}${q}${sep}`).join('');
  return expr.slice(0, last.index) + inserted + expr.slice(last.index);
}

/** Old SQLite path expressions in a text, with their offsets and rewritten forms. */
function oldExpressions(text: string): { index: number; expr: string; rewritten: string }[] {
  const out: { index: number; expr: string; rewritten: string }[] = [];
  for (const re of [SLASH_FORM, JOIN_FORM]) {
    for (const m of text.matchAll(re)) {
      const rewritten = rewriteExpression(m[0]);
      if (rewritten !== null) out.push({ index: m.index, expr: m[0], rewritten });
    }
  }
  return out.sort((a, b) => a.index - b.index);
}

/** The path (relative to the root, `/`-separated) each SQLite path expression of a text names, old or new. */
export function sqlitePathsIn(text: string): string[] {
  const out: string[] = [];
  for (const re of [SLASH_FORM, JOIN_FORM]) {
    for (const m of text.matchAll(re)) {
      const parts = [...m[0].matchAll(LIT_ONE)].flatMap((l) => l[0].slice(1, -1).split('/')).filter((p) => p !== '' && p !== '.');
      if (parts.length && /\.(?:db|sqlite3?)$/.test(parts[parts.length - 1]!)) out.push(parts.join('/'));
    }
  }
  return out;
}

/** Rewrites old SQLite paths in a settings file's text to data/db/sqlite/; unchanged text when none. */
export function rewriteSettings(text: string): string {
  let out = '';
  let at = 0;
  for (const e of oldExpressions(text)) {
    if (e.index < at) continue;
    out += text.slice(at, e.index) + e.rewritten;
    at = e.index + e.expr.length;
  }
  return out + text.slice(at);
}

/** Python files in config/settings/, or null when the directory does not exist. */
export function settingsFiles(root: string): string[] | null {
  const dir = path.join(root, SETTINGS_DIR);
  if (!fs.existsSync(dir)) return null;
  return fs.readdirSync(dir).filter((n) => n.endsWith('.py')).sort().map((n) => path.join(SETTINGS_DIR, n));
}

/** Expressions in the settings files that still name an old SQLite location (null: no settings directory). */
export function findOldSettings(root: string): { file: string; line: number; text: string }[] | null {
  const files = settingsFiles(root);
  if (files === null) return null;
  const out: { file: string; line: number; text: string }[] = [];
  for (const f of files) {
    const text = fs.readFileSync(path.join(root, f), 'utf8');
    for (const e of oldExpressions(text)) {
      out.push({ file: f, line: text.slice(0, e.index).split('\n').length, text: e.expr.replace(/\s+/g, ' ') });
    }
  }
  return out;
}

/** A unified diff (`diff -u` style, `context` lines around each change) of two texts, for --dry-run output. */
export function lineDiff(file: string, before: string, after: string, context = 3): string {
  const a = before.split('\n');
  const b = after.split('\n');
  // Longest common subsequence table, from the end (settings files are a few hundred lines).
  const n = a.length;
  const m = b.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const ops: { t: ' ' | '-' | '+'; s: string; ai: number; bi: number }[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({ t: ' ', s: a[i]!, ai: i++, bi: j++ });
    else if (i < n && (j >= m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({ t: '-', s: a[i]!, ai: i++, bi: j });
    else ops.push({ t: '+', s: b[j]!, ai: i, bi: j++ });
  }
  const out = [`--- ${file}`, `+++ ${file}`];
  let k = 0;
  while (k < ops.length) {
    if (ops[k]!.t === ' ') {
      k++;
      continue;
    }
    // One hunk: from `context` lines before this change to `context` lines after the last change that is
    // at most 2*context lines from the next one.
    const start = Math.max(0, k - context);
    let end = k;
    for (let x = k; x < ops.length; x++) {
      if (ops[x]!.t !== ' ') end = x;
      else if (x - end > 2 * context) break;
    }
    const stop = Math.min(ops.length, end + context + 1);
    const hunk = ops.slice(start, stop);
    const aLen = hunk.filter((o) => o.t !== '+').length;
    const bLen = hunk.filter((o) => o.t !== '-').length;
    const aStart = aLen ? hunk.find((o) => o.t !== '+')!.ai + 1 : hunk[0]!.ai;
    const bStart = bLen ? hunk.find((o) => o.t !== '-')!.bi + 1 : hunk[0]!.bi;
    out.push(`@@ -${aStart},${aLen} +${bStart},${bLen} @@`);
    for (const o of hunk) out.push(`${o.t}${o.s}`);
    k = stop;
  }
  return out.join('\n');
}
