import type { Member } from './tarreader.js';

/**
 * A strict reader of the tar dialect scitex-data writes (POSIX ustar, plus a local pax header for long
 * names and big numbers), fed the decompressed stream chunk by chunk before GNU tar sees it.
 *
 * Why a whitelist and not a general reader: GNU tar and other readers disagree about many headers
 * (GNU.sparse.* pax keys rename a member, global pax headers, GNU long names, old GNU sparse, volume and
 * multivolume headers, duplicate pax keys, oversized pax headers that one reader skips, data after a
 * zero block). Every one of them is refused here, so the member list our checks see is the one any
 * POSIX reader, GNU tar included, extracts. The staged result is then compared with this list as well.
 */

const BLOCK = 512;
/** Pax headers larger than this are refused (node-tar silently skips those over 1 MiB; GNU tar does not). */
const MAX_PAX = 1 << 20;
/** Zero bytes tolerated after the end-of-archive marker (GNU tar pads to 10 KiB records). */
const MAX_TRAILER = 1 << 20;
const PAX_KEYS = new Set(['path', 'linkpath', 'size', 'uid', 'gid', 'mtime', 'atime', 'ctime', 'uname', 'gname']);
const TYPES: Record<string, Member['type']> = { '0': 'File', '1': 'Link', '2': 'SymbolicLink', '5': 'Directory' };
const FOREIGN: Record<string, string> = {
  '\0': 'an old-style (pre-POSIX) member', '3': 'a character device', '4': 'a block device', '6': 'a FIFO', '7': 'a contiguous file',
  g: 'a global pax header', L: 'a GNU long-name header', K: 'a GNU long-link header', S: 'an old GNU sparse member',
  V: 'a GNU volume header', M: 'a GNU multivolume continuation', N: 'an old GNU long-name header', D: 'a GNU dump directory',
  A: 'a Solaris ACL header', X: 'an old Solaris extended header', I: 'an inode-only member',
};

/** Thrown for anything outside the dialect; the message is one line. */
export class NotStrictTar extends Error {}

/** Reads members from a tar stream, calling `onMember` for each (a non-null return refuses the archive). */
export class StrictTarScanner {
  private unit = Buffer.alloc(BLOCK);
  private want = BLOCK;
  private filled = 0;
  private inPax = false;
  private pax: Map<string, string> | null = null;
  private skip = 0;
  private eof = false;
  private trailer = 0;
  private offset = 0;
  private paxSize = 0;
  members = 0;

  constructor(private readonly onMember: (m: Member) => string | null) {}

  /** Consumes a chunk; returns a refusal reason, or null to go on. */
  push(chunk: Buffer): string | null {
    try {
      this.consume(chunk);
      return null;
    } catch (err) {
      if (err instanceof NotStrictTar) return err.message;
      throw err;
    }
  }

  /** The stream ended: returns a refusal reason when it ended inside a member or without an end marker. */
  end(): string | null {
    if (this.eof && this.filled === 0) return null;
    return this.skip || this.filled || this.inPax ? 'the archive is truncated inside a member' : 'the archive has no end-of-archive marker';
  }

  private consume(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.skip) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        this.offset += n;
        off += n;
        continue;
      }
      if (this.eof && this.filled === 0) {
        for (let i = off; i < chunk.length; i++) if (chunk[i] !== 0) throw new NotStrictTar(`data follows the end-of-archive marker at byte ${this.offset + i - off} (GNU tar ignores it, other readers do not)`);
        this.trailer += chunk.length - off;
        if (this.trailer > MAX_TRAILER) throw new NotStrictTar('more than 1 MiB of padding follows the end-of-archive marker');
        return;
      }
      const n = Math.min(this.want - this.filled, chunk.length - off);
      chunk.copy(this.unit, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled < this.want) return;
      const unit = this.unit.subarray(0, this.want);
      this.offset += this.want;
      this.filled = 0;
      if (this.inPax) this.paxBody(unit);
      else this.header(unit);
    }
  }

  private header(b: Buffer): void {
    const at = this.offset - BLOCK;
    if (b.every((x) => x === 0)) {
      if (this.pax) throw new NotStrictTar(`a pax header at byte ${at - BLOCK} is followed by the end of the archive`);
      this.eof = true;
      return;
    }
    if (b.toString('latin1', 257, 265) !== 'ustar\u000000') throw new NotStrictTar(`the header at byte ${at} is not POSIX ustar (GNU or old format), which scitex-data never writes`);
    let sum = 8 * 0x20;
    for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += b[i]!;
    if (octal(b, 148, 8, at) !== sum) throw new NotStrictTar(`the header at byte ${at} has a bad checksum`);
    const flag = String.fromCharCode(b[156]!);
    const size = octal(b, 124, 12, at);
    if (flag === 'x') {
      if (this.pax) throw new NotStrictTar(`two pax headers in a row at byte ${at}`);
      if (size > MAX_PAX) throw new NotStrictTar(`the pax header at byte ${at} is larger than 1 MiB`);
      this.pax = new Map();
      if (size) {
        this.inPax = true;
        this.want = Math.ceil(size / BLOCK) * BLOCK;
        if (this.unit.length < this.want) this.unit = Buffer.alloc(this.want);
        this.paxSize = size;
      }
      return;
    }
    const type = TYPES[flag];
    if (!type) throw new NotStrictTar(`the member at byte ${at} is ${FOREIGN[flag] ?? `of unknown type ${JSON.stringify(flag)}`}, which scitex-data never writes`);
    const pax = this.pax ?? new Map<string, string>();
    this.pax = null;
    const name = str(b, 0, 100, at);
    const prefix = str(b, 345, 155, at);
    const m: Member = {
      path: pax.get('path') ?? (prefix ? `${prefix}/${name}` : name),
      type,
      size: pax.has('size') ? Number(pax.get('size')) : size,
      mode: octal(b, 100, 8, at),
      uid: pax.has('uid') ? Number(pax.get('uid')) : octal(b, 108, 8, at),
      gid: pax.has('gid') ? Number(pax.get('gid')) : octal(b, 116, 8, at),
      mtime: new Date(1000 * (pax.has('mtime') ? Number(pax.get('mtime')) : octal(b, 136, 12, at))),
    };
    const link = pax.get('linkpath') ?? str(b, 157, 100, at);
    if (type === 'Link' || type === 'SymbolicLink') m.linkpath = link;
    else if (link) throw new NotStrictTar(`the ${type === 'File' ? 'file' : 'directory'} ${JSON.stringify(m.path)} carries a link target`);
    if (m.mode! > 0o7777) throw new NotStrictTar(`member ${JSON.stringify(m.path)} has mode ${m.mode!.toString(8)} with file-type bits`);
    if (type === 'File' && m.path.endsWith('/')) throw new NotStrictTar(`the file ${JSON.stringify(m.path)} has a directory's name (ends with "/")`);
    if (type !== 'File' && m.size !== 0) throw new NotStrictTar(`the ${type} ${JSON.stringify(m.path)} declares ${m.size} bytes of data`);
    this.members++;
    const refused = this.onMember(m);
    if (refused) throw new NotStrictTar(refused);
    this.skip = Math.ceil(m.size / BLOCK) * BLOCK;
  }

  private paxBody(b: Buffer): void {
    const at = this.offset - b.length;
    this.inPax = false;
    this.want = BLOCK;
    const body = b.subarray(0, this.paxSize);
    let i = 0;
    while (i < body.length) {
      const sp = body.indexOf(0x20, i);
      const len = sp > i ? body.toString('latin1', i, sp) : '';
      if (!/^[1-9][0-9]{0,7}$/.test(len) || i + Number(len) > body.length || body[i + Number(len) - 1] !== 0x0a) throw new NotStrictTar(`the pax header at byte ${at} has a malformed record`);
      const rec = body.subarray(sp + 1, i + Number(len) - 1);
      const eq = rec.indexOf(0x3d);
      const key = eq > 0 ? rec.toString('latin1', 0, eq) : '';
      const value = rec.subarray(eq + 1);
      if (!PAX_KEYS.has(key)) throw new NotStrictTar(`the pax header at byte ${at} sets ${JSON.stringify(key)}, which scitex-data never writes${key.startsWith('GNU.') ? ' (GNU tar renames or reshapes members with it)' : ''}`);
      if (this.pax!.has(key)) throw new NotStrictTar(`the pax header at byte ${at} sets ${key} twice`);
      if (value.includes(0)) throw new NotStrictTar(`the pax header at byte ${at} has a NUL byte in ${key}`);
      const v = utf8(value, `${key} in the pax header at byte ${at}`);
      if (['size', 'uid', 'gid'].includes(key) && !/^[0-9]{1,15}$/.test(v)) throw new NotStrictTar(`the pax header at byte ${at} has a bad ${key} (${JSON.stringify(v.slice(0, 40))})`);
      if (['mtime', 'atime', 'ctime'].includes(key) && !/^-?[0-9]{1,15}(\.[0-9]{1,9})?$/.test(v)) throw new NotStrictTar(`the pax header at byte ${at} has a bad ${key}`);
      if ((key === 'path' || key === 'linkpath') && !v) throw new NotStrictTar(`the pax header at byte ${at} has an empty ${key}`);
      this.pax!.set(key, v);
      i += Number(len);
    }
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Names must be valid UTF-8: a name we cannot represent exactly is one we cannot compare with what GNU tar wrote. */
function utf8(b: Buffer, what: string): string {
  try {
    return UTF8.decode(b);
  } catch {
    throw new NotStrictTar(`${what} is not valid UTF-8 (${JSON.stringify(b.toString('latin1').slice(0, 80))})`);
  }
}

/** A NUL-terminated string field (as every reader reads it: up to the first NUL). */
function str(b: Buffer, off: number, len: number, at: number): string {
  const f = b.subarray(off, off + len);
  const nul = f.indexOf(0);
  return utf8(f.subarray(0, nul < 0 ? len : nul), `a name in the header at byte ${at}`);
}

/** A numeric field: octal digits (leading spaces, trailing spaces/NULs) or GNU base-256 for big values. */
function octal(b: Buffer, off: number, len: number, at: number): number {
  if (b[off]! === 0x80) {
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i]!;
    if (v > Number.MAX_SAFE_INTEGER) throw new NotStrictTar(`a number in the header at byte ${at} is too large`);
    return v;
  }
  const s = b.toString('latin1', off, off + len).replace(/[ \0]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]{1,12}$/.test(s)) throw new NotStrictTar(`the header at byte ${at} has a malformed number field (${JSON.stringify(s)})`);
  return parseInt(s, 8);
}
