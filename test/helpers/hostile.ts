import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Header, Pax } from 'tar';

/** A member of a crafted archive. */
export interface CraftMember {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'CharacterDevice' | 'FIFO';
  body?: Buffer | string;
  linkpath?: string;
  /** Declared size when no body is given (for bombs). */
  size?: number;
}

/** Encodes members into a gzip tar, exactly as written (no normalisation), like an attacker would. */
export function craftTarGz(members: CraftMember[], zeroFill?: { size: number }): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const body = m.body === undefined ? Buffer.alloc(0) : Buffer.from(m.body);
    const size = m.type && m.type !== 'File' ? 0 : m.size ?? body.length;
    const h = new Header({ path: m.path, type: m.type ?? 'File', mode: 0o644, uid: 0, gid: 0, size, mtime: new Date(), linkpath: m.linkpath ?? '', devmaj: 1, devmin: 3 } as never);
    if (h.encode()) parts.push(new Pax({ path: m.path, linkpath: m.linkpath, size } as never).encode());
    parts.push(h.block!);
    if (size) {
      const data = body.length ? body : Buffer.alloc(Math.min(size, zeroFill?.size ?? size));
      parts.push(data);
      parts.push(Buffer.alloc((512 - (size % 512)) % 512));
    }
  }
  parts.push(Buffer.alloc(1024));
  return zlib.gzipSync(Buffer.concat(parts));
}

/** Puts an archive into a new set directory with a manifest and SHA256SUMS that match it (a tampered set). */
export function plantSet(backupDir: string, ts: string, username: string, archive: Buffer, manifestOverrides: Record<string, unknown> = {}): string {
  const set = path.join(backupDir, `users_${ts}`);
  fs.mkdirSync(set, { recursive: true, mode: 0o700 });
  const name = `${username}.tar.gz`;
  fs.writeFileSync(path.join(set, name), archive);
  const sha256 = crypto.createHash('sha256').update(archive).digest('hex');
  const manifest = {
    format: 'scitex-data-users/1',
    timestamp: ts,
    created: new Date().toISOString(),
    compression: 'gzip',
    level: 4,
    partial: false,
    users: [{ username, archive: name, size: archive.length, sha256, files: 10, bytes: 100_000, fingerprint: 'x', reused: false, changed: [] }],
    skipped: [],
    ...manifestOverrides,
  };
  fs.writeFileSync(path.join(set, 'MANIFEST.json'), JSON.stringify(manifest));
  fs.writeFileSync(path.join(set, 'SHA256SUMS'), `${sha256}  ${name}\n`);
  return set;
}
