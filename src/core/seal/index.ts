/**
 * Sealed backups: local backup files encrypted with age to public keys only (`backup --encrypt-local`), so the
 * backup directory holds no plaintext a thief or a stray copy could read. A sealed file is the plaintext artifact
 * with `.age` appended; its recorded checksum (the `.sha256` sidecar, SHA256SUMS) is the ciphertext's, so `verify`
 * and `sha256sum -c` need no key, and the plaintext's checksum is recorded too (MANIFEST.json, the origin sidecar)
 * and checked after decryption, before anything live is touched.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { decryptStream, encryptFile } from '../../adapters/age.js';
import type { Decrypt } from '../../adapters/tarreader.js';
import { ScitexError, UsageError } from '../../errors.js';
import path from 'node:path';
import { readPlainRecord } from '../catalog/index.js';
import { PARTIAL_MARK, partialName } from '../fs/atomic.js';
import { trackScratch } from '../fs/scratch.js';
import { sha256File } from '../fs/hash.js';

/** Suffix of a sealed file. */
export const SEALED_EXT = '.age';

/** Whether a backup file or archive name is sealed. */
export const isSealed = (name: string): boolean => name.endsWith(SEALED_EXT);

/** What is recorded of a sealed file's plaintext. */
export interface PlainRecord {
  plainSha256: string;
  plainSize: number;
}

/** A finished, sealed temporary file ready to publish. */
export interface SealedTemp extends PlainRecord {
  tmp: string;
  size: number;
  sha256: string;
}

/**
 * Encrypts the finished plaintext temporary file `plain` (hashed by the caller, or here) into a new temporary file
 * beside `final`, then removes the plaintext: from here on only ciphertext exists under the backup's name.
 */
export async function sealTemp(plain: string, final: string, recipients: string[], plainSha256?: string): Promise<SealedTemp> {
  const plainSize = (await fsp.stat(plain)).size;
  const ps = plainSha256 ?? (await sha256File(plain));
  const tmp = partialName(final);
  try {
    await encryptFile(plain, tmp, recipients);
    const sha256 = await sha256File(tmp); // read back from the page cache (SHA-NI: a fraction of age's time)
    return { tmp, size: (await fsp.stat(tmp)).size, sha256, plainSha256: ps, plainSize };
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  } finally {
    await fsp.rm(plain, { force: true });
  }
}

/** The identity a sealed file needs, or a usage error naming the flag; undefined for a plain file. */
export function decryptionOf(file: string, record: Partial<PlainRecord> | null | undefined, identity: string | undefined): Decrypt | undefined {
  if (!isSealed(file)) return undefined;
  if (!identity) throw new UsageError(`${file.split('/').slice(-2).join('/')} is encrypted (a sealed backup).`, 'Give --identity <file> with the age secret key of one of its recipients.');
  if (!record?.plainSha256) throw new ScitexError(`${file.split('/').slice(-2).join('/')} is sealed but no checksum of its plaintext is recorded.`, 'The record beside it was damaged or removed: use another backup, or decrypt it yourself with `age -d -i <key>` (unchecked) and restore the result with --from and --allow-unverified.');
  checkIdentityFile(identity);
  return { identity, plainSha256: record.plainSha256 };
}

/** Refuses an identity that is not a file (before age is started, for a clear message). */
export function checkIdentityFile(identity: string): void {
  const st = fs.statSync(identity, { throwIfNoEntry: false });
  if (!st?.isFile()) throw new UsageError(`--identity ${identity} is not a file.`, 'Give the age secret key file (made by age-keygen) of one of the recipients.');
}

/**
 * Decrypts a sealed file, handing each plaintext chunk to `each` (in order, awaited), then checks the plaintext's
 * checksum once age has exited: the one place where a decryption is judged.
 */
async function decryptChecked(file: string, d: Decrypt, each: (chunk: Buffer) => Promise<void> | void): Promise<void> {
  const src = fs.createReadStream('', { fd: fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW), highWaterMark: 1 << 20 });
  const dec = decryptStream(src, d.identity);
  const hash = crypto.createHash('sha256');
  const read = (async () => {
    for await (const c of dec.output) {
      hash.update(c as Buffer);
      await each(c as Buffer);
    }
  })();
  await Promise.all([read, dec.done]);
  if (hash.digest('hex') !== d.plainSha256) throw new ScitexError(`${file.split('/').slice(-2).join('/')} decrypted does not match the checksum recorded of its plaintext: tampered with.`, 'Nothing was changed; use another backup.');
}

/**
 * Decrypts a sealed file into `out` (new, 0600) and checks the plaintext's checksum; `out` is removed on any
 * failure. age reports tampering only at the end, after writing plaintext: nothing may use `out` before this returns.
 */
export async function unsealTo(file: string, d: Decrypt, out: string): Promise<void> {
  const fh = await fsp.open(out, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    await decryptChecked(file, d, async (c) => void (await fh.write(c)));
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => {});
    await fsp.rm(out, { force: true });
    throw err;
  }
}

/** Decrypts a sealed file without writing anything: checks the plaintext's checksum and returns its first 64 KiB. */
export async function unsealPeek(file: string, d: Decrypt): Promise<Buffer> {
  const head: Buffer[] = [];
  let kept = 0;
  await decryptChecked(file, d, (c) => {
    if (kept < 65536) {
      head.push(c);
      kept += c.length;
    }
  });
  return Buffer.concat(head).subarray(0, 65536);
}

/** Start of the name of a decrypted copy's private directory (followed by the pid). */
const UNSEAL_PREFIX = `.unseal${PARTIAL_MARK}`;

/**
 * Runs `fn` on the plaintext of a database backup: the file itself when it is not sealed, else a decrypted copy,
 * checked against the recorded plaintext checksum, in a private temporary directory under `under` (named as a
 * partial file, so an interrupted run's copy is cleaned up), removed afterwards.
 */
export async function withPlainFile<T>(file: string, identity: string | undefined, under: string, fn: (plain: string) => Promise<T>): Promise<T> {
  const d = decryptionOf(file, readPlainRecord(file), identity);
  if (!d) return fn(file);
  await removeDeadCopies(under);
  // Our pid in the name, as partialName does: the interrupt handler removes our partials in the backup directory.
  const dir = await fsp.mkdtemp(path.join(under, `${UNSEAL_PREFIX}${process.pid}-`));
  const kept = trackScratch(dir);
  try {
    const plain = path.join(dir, path.basename(file, SEALED_EXT));
    await unsealTo(file, d, plain);
    return await fn(plain);
  } finally {
    kept();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/**
 * Removes decrypted copies left in `dir` by runs killed outright (kill -9, power loss): ours by name and owner,
 * of a process that no longer exists. A live run's copy (its pid exists) is never touched.
 */
async function removeDeadCopies(dir: string): Promise<void> {
  for (const n of await fsp.readdir(dir).catch(() => [] as string[])) {
    const pid = n.startsWith(UNSEAL_PREFIX) ? parseInt(n.slice(UNSEAL_PREFIX.length), 10) : 0;
    if (!pid || pid === process.pid || alive(pid)) continue;
    const st = fs.lstatSync(path.join(dir, n), { throwIfNoEntry: false });
    if (st?.isDirectory() && st.uid === process.getuid?.()) await fsp.rm(path.join(dir, n), { recursive: true, force: true }).catch(() => {});
  }
}

/** Whether a process exists (Linux: its /proc entry). */
function alive(pid: number): boolean {
  return fs.existsSync(`/proc/${pid}`);
}
