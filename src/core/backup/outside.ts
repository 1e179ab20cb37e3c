import type { WalkEntry } from '../../adapters/walk.js';

const MAX_HOPS = 40;

/**
 * The symlinks of a walked user tree that a restore would refuse (restore/archivecheck.ts and stagecheck.ts):
 * absolute ones, and those that resolve outside the tree, following the tree's own symlinks the way the kernel
 * will once it is restored. A backup leaves them out, with a note, so that every archive it makes restores.
 * Returns rel -> target.
 */
export function outsideSymlinks(entries: WalkEntry[]): Map<string, string> {
  const links = new Map<string, string>();
  for (const e of entries) if (e.type === 'symlink') links.set(e.rel, e.linkTarget ?? '');
  const out = new Map<string, string>();
  for (const [rel, target] of links) if (leaves(rel, links)) out.set(rel, target);
  return out;
}

function leaves(rel: string, links: Map<string, string>): boolean {
  const parts = rel.split('/').slice(0, -1);
  const first = links.get(rel)!;
  if (first === '' || first.startsWith('/')) return true;
  let todo = first.split('/');
  let hops = 0;
  while (todo.length) {
    const c = todo.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (!parts.length) return true;
      parts.pop();
      continue;
    }
    parts.push(c);
    const t = links.get(parts.join('/'));
    if (t === undefined) continue; // not a link of the tree: a directory, a file, or dangling (lexical from here)
    if (++hops > MAX_HOPS || t === '' || t.startsWith('/')) return true;
    parts.pop();
    todo = [...t.split('/'), ...todo];
  }
  return false;
}
