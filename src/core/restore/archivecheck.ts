import path from 'node:path';
import type { Member } from '../../adapters/tarreader.js';

/** Limits a restore applies on top of the path rules. */
export interface ArchiveLimits {
  /** Most content bytes the archive may hold (its manifest's figure, or the free space). */
  maxBytes: number;
  /** Most regular files it may hold. */
  maxFiles: number;
}

/** Directories, symlinks and hard links allowed per regular file (plus a floor): bounds an inode bomb. */
const OTHER_PER_FILE = 8;
const OTHER_FLOOR = 100_000;

const MAX_PATH = 4096;
const MAX_DEPTH = 512;
const ALLOWED = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/**
 * A stateful checker for one user's archive: every member must stay inside data/users/<user>/, be a
 * plain file, directory, symlink or hard link, never pass through a symlink the archive made, and
 * links must point inside the user's directory; no setuid member and no setgid file (the app never
 * makes one, and a root restore would recreate it owned by whoever the archive names: refused, not
 * silently stripped, so the operator learns the set is hostile). Returns a refusal reason or null.
 * Accepted members are recorded in `seen` (normalized path -> member) when given, once each.
 */
export function memberChecker(username: string, limits: ArchiveLimits, seen?: Map<string, Member>): (m: Member) => string | null {
  const top = `data/users/${username}`;
  const symlinks = new Set<string>();
  const files = new Set<string>();
  let bytes = 0;
  let count = 0;
  let others = 0;
  const inside = (p: string) => p === top || p.startsWith(top + '/');
  const cleanPath = (raw: string, what: string): string | string[] => {
    if (/[\x00-\x1f\x7f]/.test(raw)) return [`${what} ${JSON.stringify(raw)} contains control characters`];
    if (raw.length > MAX_PATH) return [`${what} is longer than ${MAX_PATH} bytes`];
    if (raw.startsWith('/')) return [`${what} ${JSON.stringify(raw)} is absolute`];
    const p = raw.replace(/\/+$/, '');
    const parts = p.split('/');
    if (parts.length > MAX_DEPTH) return [`${what} is nested deeper than ${MAX_DEPTH} levels`];
    if (parts.some((s) => s === '..' || s === '.' || s === '')) return [`${what} ${JSON.stringify(raw)} has an empty, "." or ".." segment`];
    return p;
  };
  return (m) => {
    const p = cleanPath(m.path, 'member');
    if (Array.isArray(p)) return p[0]!;
    if (!inside(p)) return `member ${JSON.stringify(m.path)} is outside ${top}/`;
    if (p === top && m.type !== 'Directory') return `${top} itself is a ${m.type} in the archive, not a directory`;
    if (!ALLOWED.has(m.type)) return `member ${JSON.stringify(m.path)} is a ${m.type}, which a user directory never holds`;
    const mode = m.mode ?? 0;
    if (m.type !== 'SymbolicLink' && m.type !== 'Link' && (mode & 0o4000 || (mode & 0o2000 && m.type !== 'Directory'))) {
      return `member ${JSON.stringify(m.path)} is ${mode & 0o4000 ? 'setuid' : 'setgid'} (mode ${mode.toString(8)}, uid ${m.uid ?? '?'}), which a workspace never holds`;
    }
    if (seen?.has(p)) return `member ${JSON.stringify(m.path)} appears twice (a later copy would replace the checked one)`;
    const parts = p.split('/');
    for (let i = 1; i <= parts.length; i++) {
      if (symlinks.has(parts.slice(0, i).join('/'))) return `member ${JSON.stringify(m.path)} goes through or replaces a symlink the archive created`;
    }
    if (m.type === 'SymbolicLink') {
      const target = m.linkpath ?? '';
      if (target.includes('\0') || target === '') return `symlink ${JSON.stringify(m.path)} has an empty or invalid target`;
      if (target.startsWith('/')) return `symlink ${JSON.stringify(m.path)} points to the absolute path ${JSON.stringify(target)}`;
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(p), target));
      if (!inside(resolved)) return `symlink ${JSON.stringify(m.path)} points outside ${top}/ (${JSON.stringify(target)})`;
      symlinks.add(p);
    } else if (m.type === 'Link') {
      const t = cleanPath(m.linkpath ?? '', 'hard link target');
      if (Array.isArray(t)) return t[0]!;
      if (!inside(t) || !files.has(t)) return `hard link ${JSON.stringify(m.path)} points to ${JSON.stringify(m.linkpath)}, not to an earlier file of ${top}/`;
    }
    if (m.type !== 'File' && m.type !== 'OldFile' && m.type !== 'ContiguousFile') {
      if (++others > OTHER_PER_FILE * limits.maxFiles + OTHER_FLOOR) return `the archive holds more directories and links than ${OTHER_PER_FILE} per recorded file: refusing a possible inode bomb`;
    } else {
      files.add(p);
      count++;
      bytes += m.size;
      if (count > limits.maxFiles) return `the archive holds more files than its manifest records (${limits.maxFiles})`;
      if (bytes > limits.maxBytes) return `the archive holds more data than expected (over ${limits.maxBytes} bytes): refusing a possible decompression bomb`;
    }
    seen?.set(p, m);
    return null;
  };
}
