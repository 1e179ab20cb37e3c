import { parseDestination, type Destination } from '../../adapters/objectstore.js';
import { UsageError } from '../../errors.js';

/** Off-site settings: where copies go and whom they are encrypted to. */
export interface OffsiteSettings {
  destinations: Destination[];
  /** age recipients (public keys); empty means copies leave unencrypted. */
  recipients: string[];
  /** The whole copy to one destination gives up after this (SCITEX_DATA_REMOTE_TIMEOUT, seconds; default 6 h). */
  timeoutMs: number;
  /** Multipart part size and parts in flight: memory held is about their product. */
  partSize: number;
  concurrency: number;
  /** Seal the local backups to the same recipients too (SCITEX_DATA_ENCRYPT_LOCAL=1 or `backup --encrypt-local`). */
  encryptLocal: boolean;
}

/** Variable naming the one destination; SCITEX_DATA_REMOTE_1 … _9 name more. */
export const REMOTE_VAR = 'SCITEX_DATA_REMOTE';
/** Variable holding age recipients, separated by spaces or commas. */
export const ENCRYPT_VAR = 'SCITEX_DATA_ENCRYPT_TO';
/** Variable that seals the local backups too (1/true/yes). */
export const ENCRYPT_LOCAL_VAR = 'SCITEX_DATA_ENCRYPT_LOCAL';

const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** Checks age recipients: public keys only (a secret key given by mistake is refused without being echoed). */
export function checkRecipients(list: string[]): string[] {
  for (const r of list) {
    if (/^AGE-SECRET-KEY-/i.test(r)) throw new UsageError('An age SECRET key was given as a recipient.', 'Give the public key (age1…, `age-keygen -y key.txt`); keep the secret key off this machine.');
    if (!AGE_RECIPIENT.test(r)) throw new UsageError(`Not an age X25519 public key: ${JSON.stringify(r.slice(0, 70))}.`, 'Recipients look like age1… (62 characters); see `age-keygen -y`.');
  }
  return [...new Set(list)];
}

/**
 * Reads the settings from the process environment only (the cron line or the service unit), never from the
 * project's .env: whoever can edit that file could otherwise send the backups elsewhere.
 */
export function offsiteSettings(env: Record<string, string | undefined>, extraRecipients: string[] = []): OffsiteSettings {
  const urls: [string, string][] = [];
  for (const name of [REMOTE_VAR, ...Array.from({ length: 9 }, (_, i) => `${REMOTE_VAR}_${i + 1}`)]) {
    const v = env[name]?.trim();
    if (v) urls.push([name, v]);
  }
  const destinations = urls.map(([name, url]) => {
    try {
      return parseDestination(url);
    } catch (err) {
      throw new UsageError(`${name}: ${(err as Error).message}.`, 'Write it as s3://bucket/prefix?endpoint=https://host:port&region=…&path_style=true (credentials come from the AWS variables or ~/.aws/credentials, never the URL).');
    }
  });
  const fromEnv = (env[ENCRYPT_VAR] ?? '').split(/[\s,]+/).filter(Boolean);
  const num = (n: string, d: number) => (Number(env[n]) > 0 ? Number(env[n]) : d);
  return {
    destinations,
    recipients: checkRecipients([...fromEnv, ...extraRecipients]),
    timeoutMs: num('SCITEX_DATA_REMOTE_TIMEOUT', 6 * 3600) * 1000,
    partSize: num('SCITEX_DATA_REMOTE_PART_MIB', 8) * 1024 * 1024,
    concurrency: num('SCITEX_DATA_REMOTE_CONCURRENCY', 4),
    encryptLocal: /^(1|true|yes|on)$/i.test(env[ENCRYPT_LOCAL_VAR]?.trim() ?? ''),
  };
}
