import fs from 'node:fs';
import path from 'node:path';
import type { Member } from '../../adapters/tarreader.js';

/** Who may own a restored workspace directory (root runs only): uids and gids that already own app data here. */
export interface OwnerPolicy {
  uids: Set<number>;
  gids: Set<number>;
}

const MAX_LINKS = 40;

/**
 * Checks what GNU tar really extracted into `cwd` (one user's private staging directory) against the
 * members the strict reader accepted: the same paths, types, sizes, modes, link targets (and owners
 * when root extracted), nothing else anywhere under `cwd`, no inode shared with a file outside the
 * tree, no symlink whose real resolution leaves the workspace, and a workspace owned by someone who
 * owns app data here. This is the check by the parser that extracts: whatever GNU tar made of the
 * headers is what is compared. Returns a refusal reason or null. Never follows a symlink.
 */
export function checkStaged(cwd: string, username: string, members: Map<string, Member>, owners: OwnerPolicy | null): string | null {
  const top = `data/users/${username}`;
  const asRoot = process.getuid?.() === 0;
  for (const [dir, only] of [['', 'data'], ['data', 'users'], ['data/users', username]] as const) {
    const extra = fs.readdirSync(path.join(cwd, dir)).filter((n) => n !== only);
    if (extra.length) return `GNU tar wrote ${JSON.stringify(path.posix.join(dir, extra[0]!))}, outside ${top}/ (it reads the headers differently than the checks did)`;
  }
  const names = new Map<string, number>(); // inode -> names seen in the tree
  const inodes = new Map<string, { ino: string; nlink: number }>();
  let seen = 0;
  const stack = [top];
  while (stack.length) {
    const rel = stack.pop()!;
    const abs = path.join(cwd, rel);
    const st = fs.lstatSync(abs, { bigint: true });
    const m = members.get(rel);
    if (!m) return `GNU tar extracted ${JSON.stringify(rel)}, which no checked member names (a directory the archive lacks, or a header read differently)`;
    seen++;
    const kind = st.isDirectory() ? 'Directory' : st.isSymbolicLink() ? 'SymbolicLink' : st.isFile() ? (m.type === 'Link' ? 'Link' : 'File') : 'other';
    if (kind !== m.type) return `GNU tar made ${JSON.stringify(rel)} a ${kind}, but its header says ${m.type}`;
    const mode = Number(st.mode & 0o7777n);
    if (kind !== 'SymbolicLink' && (mode & 0o4000 || (mode & 0o2000 && kind !== 'Directory'))) return `${JSON.stringify(rel)} was extracted setuid/setgid (mode ${mode.toString(8)})`;
    if (kind !== 'SymbolicLink' && kind !== 'Link' && mode !== ((m.mode ?? 0) & 0o7777)) return `GNU tar gave ${JSON.stringify(rel)} mode ${mode.toString(8)}, but its header says ${(m.mode ?? 0).toString(8)}`;
    if (asRoot && kind !== 'Link' && (Number(st.uid) !== m.uid || Number(st.gid) !== m.gid)) return `GNU tar gave ${JSON.stringify(rel)} owner ${st.uid}:${st.gid}, but its header says ${m.uid}:${m.gid}`;
    if (kind === 'Directory') {
      for (const n of fs.readdirSync(abs)) stack.push(`${rel}/${n}`);
    } else if (kind === 'SymbolicLink') {
      const target = fs.readlinkSync(abs);
      if (target !== m.linkpath) return `GNU tar made ${JSON.stringify(rel)} point to ${JSON.stringify(target)}, but its header says ${JSON.stringify(m.linkpath)}`;
      const where = resolveInside(cwd, top, rel);
      if (where) return `symlink ${JSON.stringify(rel)} ${where}`;
    } else {
      if (kind === 'File' && Number(st.size) !== m.size) return `GNU tar wrote ${st.size} bytes to ${JSON.stringify(rel)}, but its header says ${m.size}`;
      const ino = `${st.dev}:${st.ino}`;
      names.set(ino, (names.get(ino) ?? 0) + 1);
      inodes.set(rel, { ino, nlink: Number(st.nlink) });
    }
  }
  if (seen !== members.size) return `${members.size - seen} checked member(s) were not extracted where their headers say`;
  for (const [rel, m] of members) {
    const node = inodes.get(rel);
    if (!node) continue;
    if (names.get(node.ino) !== node.nlink) return `${JSON.stringify(rel)} shares its inode with a file outside ${top}/ (${node.nlink} links, ${names.get(node.ino)} in the tree)`;
    if (m.type === 'Link' && inodes.get(m.linkpath!.replace(/\/+$/, ''))?.ino !== node.ino) return `hard link ${JSON.stringify(rel)} is not the file its header names (${JSON.stringify(m.linkpath)})`;
  }
  if (asRoot && owners) {
    const st = fs.lstatSync(path.join(cwd, top));
    if (!owners.uids.has(st.uid) || !owners.gids.has(st.gid)) {
      return `the workspace would belong to ${st.uid}:${st.gid}, who owns no app data here (owners of data/, data/users and the workspaces: uids ${[...owners.uids].join(',')}, gids ${[...owners.gids].join(',')})`;
    }
  }
  return null;
}

/**
 * Resolves a symlink of the staged tree the way the kernel will once it is live (following symlinks
 * inside the tree, `..` after each), without following any: returns why it leaves `top`, or null.
 * A lexical check alone is fooled by chains (a -> b/../.. where b -> ../x).
 */
function resolveInside(cwd: string, top: string, rel: string): string | null {
  const depth = top.split('/').length;
  const parts = rel.split('/').slice(0, -1);
  const first = fs.readlinkSync(path.join(cwd, rel));
  if (first.startsWith('/')) return `points to the absolute path ${JSON.stringify(first)}`;
  let todo = first.split('/');
  let hops = 0;
  while (todo.length) {
    const c = todo.shift()!;
    if (c === '' || c === '.') continue;
    if (c === '..') {
      parts.pop();
      if (parts.length < depth) return `resolves outside ${top}/`;
      continue;
    }
    parts.push(c);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(path.join(cwd, ...parts));
    } catch {
      continue; // dangling from here on: the rest resolves lexically
    }
    if (st.isSymbolicLink()) {
      if (++hops > MAX_LINKS) return 'is part of a chain of more than 40 symlinks';
      const t = fs.readlinkSync(path.join(cwd, ...parts));
      if (t.startsWith('/')) return `goes through ${JSON.stringify(parts.join('/'))}, an absolute symlink`;
      parts.pop();
      todo = [...t.split('/'), ...todo];
    }
  }
  return null;
}
