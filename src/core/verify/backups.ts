import fs from 'node:fs';
import path from 'node:path';
import { runTool } from '../../adapters/proc.js';
import { checkDatabase } from '../../adapters/sqlite.js';
import { scanArchive } from '../../adapters/tarreader.js';
import { memberChecker } from '../restore/index.js';
import { databaseSeries, listBackups, recordedChecksum, type BackupEntry, FUTURE_TOLERANCE_MS, readManifest, readPlainRecord } from '../catalog/index.js';
import type { ResolvedConfig } from '../config/index.js';
import { parseSha256sumLine, sha256File } from '../fs/hash.js';
import { fail, pass, firstFew, warn, type Check } from './types.js';
import os from 'node:os';
import { decryptionOf, isSealed, withPlainFile } from '../seal/index.js';

/** Options of the backup checks. */
export interface BackupCheckOptions {
  maxAgeHours: number;
  now?: Date;
  /** age secret key file: sealed backups are then decrypted and read too (otherwise their ciphertext checksum is all). */
  identity?: string;
}

/** Checksums, freshness and readability of every backup in the backup directory. */
export async function backupChecks(cfg: ResolvedConfig, opts: BackupCheckOptions): Promise<Check[]> {
  const all = await listBackups(cfg.backupDir.value);
  const checks: Check[] = [];
  const mismatched: string[] = [];
  const unrecorded: string[] = [];
  for (const e of all) {
    if (e.kind === 'users') mismatched.push(...(await setProblems(e)));
    else {
      const rec = recordedChecksum(e.path);
      if (rec === null) unrecorded.push(e.name);
      else if (rec !== (await sha256File(e.path))) mismatched.push(`${e.name} does not match its checksum`);
    }
  }
  if (mismatched.length) checks.push(fail('backups.checksums', firstFew(mismatched), 'These backups are damaged or were tampered with: do not restore them; take a new backup now.'));
  else if (unrecorded.length) checks.push(warn('backups.checksums', `no recorded checksum: ${firstFew(unrecorded)}`, 'Legacy backups cannot be verified; keep them only as a last resort.'));
  else checks.push(pass('backups.checksums', `${all.length} backup(s) match their recorded SHA-256`));

  const now = (opts.now ?? new Date()).getTime();
  // A backup dated ahead of the clock was named by a skewed clock (or planted): it proves nothing
  // about freshness, and retention keeps it aside; the operator must look at it.
  const future = all.filter((e) => e.time && e.time.getTime() > now + FUTURE_TOLERANCE_MS);
  checks.push(
    future.length
      ? fail('backups.dates', firstFew(future.map((e) => `${e.name} is dated ${e.time!.toISOString()}, in the future`)), "The clock was (or is) wrong: check NTP (`timedatectl`); such a backup is never pruned and never counts as the newest.")
      : pass('backups.dates', 'no backup is dated in the future'),
  );
  const placed = all.filter((e) => e.time && !future.includes(e));
  const series = databaseSeries(cfg);
  const kinds: [string, BackupEntry | undefined][] = [
    ['database', placed.find((e) => e.kind === cfg.database.kind && e.series === series)],
    // Only a complete full set proves the users are backed up (not a --user set, not a damaged one).
    ['users', placed.find((e) => e.kind === 'users' && !e.partial && e.set && !e.set.problem && !e.set.selection)],
  ];
  for (const [kind, newest] of kinds) {
    const metrics: Record<string, number> = {};
    if (!newest) {
      checks.push(fail(`backups.freshness.${kind}`, `no ${kind} backup in ${cfg.backupDir.value}`, `Run \`scitex-data backup ${kind === 'users' ? 'users' : 'db'}\` and check the cron job.`));
      continue;
    }
    const ageH = (now - newest.time!.getTime()) / 3_600_000;
    metrics[`newest_age_seconds{kind="${kind}"}`] = Math.round((now - newest.time!.getTime()) / 1000);
    metrics[`newest_size_bytes{kind="${kind}"}`] = newest.size;
    checks.push(
      ageH > opts.maxAgeHours
        ? fail(`backups.freshness.${kind}`, `newest ${kind} backup ${newest.name} is ${ageH.toFixed(1)} h old (max ${opts.maxAgeHours} h)`, 'The nightly job has stopped: check cron and its mail, then run `scitex-data backup`.', { metrics })
        : pass(`backups.freshness.${kind}`, `newest ${kind} backup ${newest.name} is ${ageH.toFixed(1)} h old`, { metrics }),
    );
  }

  const unreadable: string[] = [];
  let sealed = 0;
  for (const e of all) {
    // Sealed without a key: the ciphertext checksum above is what can be proven here (age authenticates the rest).
    if (!opts.identity && (isSealed(e.name) || (e.kind === 'users' && e.set && !e.set.problem && sealedSet(e.path)))) {
      sealed++;
      // What restore needs besides the key can be checked without it: the record of the plaintext's checksum.
      unreadable.push(...unrecordedPlain(e));
      continue;
    }
    const problem = e.kind === 'users' ? await setReadable(e, opts.identity) : await withPlainFile(e.path, opts.identity, os.tmpdir(), dumpReadable).catch((err: Error) => err.message);
    if (problem) unreadable.push(`${e.name}: ${problem}`);
  }
  const note = sealed ? `; ${sealed} sealed backup(s) checked by their ciphertext checksum only (give --identity to read them)` : '';
  // A key that opens none of the sealed backups says nothing about them (their ciphertext checksums passed above).
  const keyOnly = unreadable.length > 0 && unreadable.every((p) => /no identity matched|identity type|: reading "/.test(p));
  const hint = keyOnly ? 'The key given with --identity is not one of their recipients: give the right secret key (one file may hold several: after a change of recipients, cat old.key new.key > both.key).' : 'Do not rely on these backups; take a new one and investigate the storage.';
  checks.push(unreadable.length ? fail('backups.readable', firstFew(unreadable, 2), hint) : pass('backups.readable', `${all.length - sealed} backup(s) read cleanly${note}`));
  return checks;
}

async function setProblems(e: BackupEntry): Promise<string[]> {
  const out: string[] = [];
  if (e.set?.problem) return [`${e.name}: ${e.set.problem}`];
  let sums: Map<string, string>;
  try {
    sums = new Map(fs.readFileSync(path.join(e.path, 'SHA256SUMS'), 'utf8').split('\n').map(parseSha256sumLine).filter((x) => x !== null).map((x) => [x.name, x.digest]));
    const m = readManifest(e.path);
    for (const u of m.users) {
      const actual = await sha256File(path.join(e.path, u.archive)).catch(() => 'missing');
      if (actual !== sums.get(u.archive) || actual !== u.sha256) out.push(`${e.name}/${u.archive} does not match its checksum`);
    }
  } catch (err) {
    out.push(`${e.name}: ${(err as Error).message}`);
  }
  return out;
}

/** The sealed files of a backup that lack the recorded plaintext checksum every restore of them demands. */
function unrecordedPlain(e: BackupEntry): string[] {
  const what = 'sealed, but no checksum of its plaintext is recorded (restore refuses it)';
  if (e.kind !== 'users') return readPlainRecord(e.path) ? [] : [`${e.name}: ${what}`];
  try {
    return readManifest(e.path)
      .users.filter((u) => isSealed(u.archive) && !/^[0-9a-f]{64}$/.test(u.plainSha256 ?? ''))
      .map((u) => `${e.name}/${u.archive}: ${what}`);
  } catch {
    return []; // an unreadable manifest is reported by the checksum check
  }
}

/** Whether a set's archives are sealed (its manifest says so). */
function sealedSet(dir: string): boolean {
  try {
    return !!readManifest(dir).sealed;
  } catch {
    return false;
  }
}

async function dumpReadable(file: string): Promise<string | null> {
  if (file.endsWith('.dump')) {
    return runTool('pg_restore', ['--list', file]).then(() => null, (err: Error) => err.message);
  }
  if (file.endsWith('.sql')) {
    // pg_dump writes this line last: a dump without it was cut short.
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(4096, size));
    fs.readSync(fd, buf, 0, buf.length, size - buf.length);
    fs.closeSync(fd);
    return /-- PostgreSQL database dump complete/.test(buf.toString('utf8')) ? null : 'the plain dump has no "dump complete" ending (truncated?)';
  }
  if (file.endsWith('.db')) {
    const p = checkDatabase(file, false, true);
    return p.length ? `PRAGMA quick_check: ${p[0]}` : null;
  }
  return null;
}

async function setReadable(e: BackupEntry, identity: string | undefined): Promise<string | null> {
  try {
    const m = readManifest(e.path);
    for (const u of m.users) {
      const file = path.join(e.path, u.archive);
      await scanArchive(file, memberChecker(u.username, { maxBytes: u.bytes, maxFiles: u.files }), decryptionOf(file, u, identity));
    }
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
