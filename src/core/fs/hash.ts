import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

// Content checks: SHA-256 digests in sha256sum's format (so operators can check without us), format sniffing.

/** Streams a file through SHA-256 and returns the hex digest. */
export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  return hash.digest('hex');
}

/** Lines in `sha256sum` format, so operators can check with `sha256sum -c` without us. */
export function sha256sumLine(digest: string, name: string): string {
  return `${digest}  ${name}\n`;
}

/** Parses one `sha256sum` line (text or binary mode marker). */
export function parseSha256sumLine(line: string): { digest: string; name: string } | null {
  const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(line.trim());
  return m ? { digest: m[1]!, name: m[2]! } : null;
}

/** True when the file starts with the gzip magic bytes. */
export async function isGzip(file: string): Promise<boolean> {
  const fh = await fsp.open(file, 'r');
  try {
    const b = Buffer.alloc(2);
    await fh.read(b, 0, 2, 0);
    return b[0] === 0x1f && b[1] === 0x8b;
  } finally {
    await fh.close();
  }
}

/** SHA-256 of everything a stream yields (a download, a pipe), as hex. */
export async function sha256Stream(stream: AsyncIterable<Buffer>): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest('hex');
}
