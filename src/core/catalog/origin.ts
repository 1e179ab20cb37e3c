import fs from 'node:fs';
import path from 'node:path';
import type { AppEnv, ResolvedConfig } from '../config/index.js';
import { UsageError } from '../../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';

/**
 * Where a backup came from. Two roots (a dev and a prod checkout, two hosts on one NFS volume) may share
 * SCITEX_DATA_BACKUP_DIR: a restore must never pick the other root's newest backup by itself.
 */
export interface Origin {
  /** The project root, resolved (symlinks followed) so that two spellings of one root compare equal. */
  root: string;
  env: AppEnv;
}

/** Suffix of the file beside each database backup that records its origin (sets keep it in MANIFEST.json). */
export const ORIGIN_SUFFIX = '.origin.json';

/** The origin of backups made with this configuration. */
export function originOf(cfg: ResolvedConfig): Origin {
  let root = path.resolve(cfg.root);
  try {
    root = fs.realpathSync(root);
  } catch {
    /* keep the resolved path */
  }
  return { root, env: cfg.env.value };
}

/** Writes the origin file of the database backup that will be published as `final` (sealed: with the plaintext's checksum). */
export async function writeOrigin(final: string, origin: Origin & { plainSha256?: string; plainSize?: number; recipients?: string[] }): Promise<void> {
  await writeFileAtomic(final + ORIGIN_SUFFIX, JSON.stringify(origin) + '\n');
}

/** The plaintext's size and checksum recorded beside a sealed database backup; null when absent or unreadable. */
export function readPlainRecord(file: string): { plainSha256: string; plainSize: number; recipients?: string[] } | null {
  try {
    const doc = JSON.parse(fs.readFileSync(file + ORIGIN_SUFFIX, 'utf8')) as { plainSha256?: unknown; plainSize?: unknown; recipients?: unknown };
    const recipients = Array.isArray(doc.recipients) ? doc.recipients.filter((r): r is string => typeof r === 'string') : undefined;
    return typeof doc.plainSha256 === 'string' && /^[0-9a-f]{64}$/.test(doc.plainSha256) && typeof doc.plainSize === 'number' ? { plainSha256: doc.plainSha256, plainSize: doc.plainSize, recipients } : null;
  } catch {
    return null;
  }
}

/** The recorded origin of a backup (a set directory or a database file); null when none was recorded (older backups). */
export function readOrigin(backup: string): Origin | null {
  try {
    const isSet = fs.statSync(backup).isDirectory();
    const doc = JSON.parse(fs.readFileSync(isSet ? path.join(backup, 'MANIFEST.json') : backup + ORIGIN_SUFFIX, 'utf8')) as { origin?: Origin } & Partial<Origin>;
    const o = isSet ? doc.origin : doc;
    return o && typeof o.root === 'string' && typeof o.env === 'string' ? { root: o.root, env: o.env } : null;
  } catch {
    return null;
  }
}

/**
 * Returns `backup` when this root made it, or when the operator named it (`--from`); refuses another
 * root's or environment's backup otherwise. Backups without a recorded origin predate the record and pass.
 */
export function ownBackup(cfg: ResolvedConfig, backup: string, named = false): string {
  if (named) return backup;
  const theirs = readOrigin(backup);
  const ours = originOf(cfg);
  if (!theirs || (theirs.root === ours.root && theirs.env === ours.env)) return backup;
  throw new UsageError(
    `${path.basename(backup)} was made by another root (${theirs.root}, ${theirs.env}), not by ${ours.root} (${ours.env}); nothing was changed.`,
    `If you really mean that backup, name it: --from ${backup}. Otherwise pick one of this root's backups with --at (\`scitex-data list\`).`,
  );
}
