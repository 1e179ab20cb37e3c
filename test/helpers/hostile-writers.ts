import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';

/**
 * Hostile archives written by other writers than ours (GNU tar, Python's tarfile, raw blocks from Python),
 * so that every way two tar readers can disagree about a member's name, type, owner or mode shows.
 */

/** Python helpers every corpus script can use: raw ustar/GNU headers, pax records, tarfile members. */
const PRELUDE = String.raw`
import io, sys, tarfile, gzip
def _num(v, n):
    return (oct(v)[2:].rjust(n - 1, '0') + '\0').encode()
def hdr(name, type=b'0', size=0, mode=0o644, uid=0, gid=0, link='', magic=b'ustar\x0000', prefix=b''):
    b = bytearray(512)
    n = name.encode() if isinstance(name, str) else name
    b[0:len(n)] = n
    b[100:108] = _num(mode, 8); b[108:116] = _num(uid, 8); b[116:124] = _num(gid, 8)
    b[124:136] = _num(size, 12); b[136:148] = _num(1700000000, 12)
    b[148:156] = b' ' * 8; b[156:157] = type
    l = link.encode() if isinstance(link, str) else link
    b[157:157 + len(l)] = l
    b[257:265] = magic
    b[345:345 + len(prefix)] = prefix
    b[148:156] = (oct(sum(b))[2:].rjust(6, '0') + '\0 ').encode()
    return bytes(b)
def body(data):
    data = data.encode() if isinstance(data, str) else data
    return data + b'\0' * ((512 - len(data) % 512) % 512)
def rec(k, v):
    k = k.encode() if isinstance(k, str) else k
    v = v.encode() if isinstance(v, str) else v
    s = b' ' + k + b'=' + v + b'\n'
    n = len(s) + 1
    while len(str(n)) + len(s) != n: n += 1
    return str(n).encode() + s
def pax(records, type=b'x'):
    data = b''.join(rec(k, v) for k, v in records)
    return hdr('PaxHeaders/x', type, len(data)) + body(data)
def longname(name, type=b'L'):
    data = name.encode() + b'\0'
    return hdr('././@LongLink', type, len(data), magic=b'ustar  \0') + body(data)
def file(name, data='x', **kw):
    return hdr(name, b'0', len(data), **kw) + body(data)
def end():
    return b'\0' * 1024
def tf(build, format=tarfile.PAX_FORMAT, **kw):
    buf = io.BytesIO()
    t = tarfile.open(fileobj=buf, mode='w', format=format, **kw)
    build(t)
    t.close()
    return buf.getvalue()
def member(t, name, data=b'x', **kw):
    ti = tarfile.TarInfo(name)
    data = data.encode() if isinstance(data, str) else data
    ti.size = len(data) if kw.get('type', tarfile.REGTYPE) in (tarfile.REGTYPE, tarfile.GNUTYPE_SPARSE) else 0
    ti.mode = 0o644; ti.mtime = 1700000000
    for k, v in kw.items(): setattr(ti, k, v)
    t.addfile(ti, io.BytesIO(data) if ti.size else None)
`;

/** Runs a Python expression that evaluates to an uncompressed tar (bytes), with PRELUDE in scope; returns it gzipped. */
export function pythonTar(expr: string): Buffer {
  const script = `${PRELUDE}\nsys.stdout.buffer.write(${expr})\n`;
  const raw = execFileSync('python3', ['-c', script], { maxBuffer: 64 << 20 });
  return zlib.gzipSync(raw);
}

/** Runs GNU tar (`tar -c -z <args>`) in a fresh source directory prepared by `setup`; returns the archive. */
export function gnuTar(setup: (src: string) => void, args: string[]): Buffer {
  const src = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-gnutar-'));
  try {
    setup(src);
    return execFileSync('tar', ['-c', '-z', '-f', '-', '-C', src, ...args], { maxBuffer: 64 << 20, env: { ...process.env, TAR_OPTIONS: '' } });
  } finally {
    fs.rmSync(src, { recursive: true, force: true });
  }
}

/** Writes `files` (relative path to content) under `src`, creating directories. */
export function writeFiles(src: string, files: Record<string, string>): void {
  for (const [rel, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(src, rel)), { recursive: true });
    fs.writeFileSync(path.join(src, rel), body);
  }
}

/** A set holding several users' archives, with a manifest and SHA256SUMS that match them (a consistently tampered set). */
export function plantMultiSet(backupDir: string, ts: string, archives: Record<string, Buffer>, figures: { files?: number; bytes?: number } = {}): string {
  const set = path.join(backupDir, `users_${ts}`);
  fs.mkdirSync(set, { recursive: true, mode: 0o700 });
  const users = Object.entries(archives).map(([username, bytes]) => {
    const archive = `${username}.tar.gz`;
    fs.writeFileSync(path.join(set, archive), bytes);
    const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
    return { username, archive, size: bytes.length, sha256, files: figures.files ?? 100, bytes: figures.bytes ?? 10_000_000, fingerprint: 'x', reused: false, changed: [] };
  });
  const manifest = { format: 'scitex-data-users/1', timestamp: ts, created: new Date().toISOString(), compression: 'gzip', level: 4, partial: false, users, skipped: [] };
  fs.writeFileSync(path.join(set, 'MANIFEST.json'), JSON.stringify(manifest));
  fs.writeFileSync(path.join(set, 'SHA256SUMS'), users.map((u) => `${u.sha256}  ${u.archive}\n`).join(''));
  return set;
}
