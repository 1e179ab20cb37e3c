import path from 'node:path';
import type { Member } from '../adapters/tarreader.js';

/** Limits a restore applies on top of the path rules. */
export interface ArchiveLimits {
  /** Most content bytes the archive may hold (its manifest's figure, or the free space). */
  maxBytes: number;
  /** Most regular files it may hold. */
  maxFiles: number;
}

const MAX_PATH = 4096;
const MAX_DEPTH = 512;
const ALLOWED = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);

/**
 * A stateful checker for one user's archive: every member must stay inside data/users/<user>/, be a
 * plain file, directory, symlink or hard link, never pass through a symlink the archive made, and
 * links must point inside the user's directory. Returns a refusal reason or null.
 */
export function memberChecker(username: string, limits: ArchiveLimits): (m: Member) => string | null {
  const top = `data/users/${username}`;
  const symlinks = new Set<string>();
  const files = new Set<string>();
  let bytes = 0;
  let count = 0;
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
    if (!ALLOWED.has(m.type)) return `member ${JSON.stringify(m.path)} is a ${m.type}, which a user directory never holds`;
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
    } else if (m.type !== 'Directory') {
      files.add(p);
      count++;
      bytes += m.size;
      if (count > limits.maxFiles) return `the archive holds more files than its manifest records (${limits.maxFiles})`;
      if (bytes > limits.maxBytes) return `the archive holds more data than expected (over ${limits.maxBytes} bytes): refusing a possible decompression bomb`;
    }
    return null;
  };
}
