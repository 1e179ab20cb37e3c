import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pgConnect, pgDumpMajor } from '../../adapters/postgres.js';
import { pgTarget } from '../config/index.js';
import { checkDatabase, tableCounts } from '../../adapters/sqlite.js';
import { extractArchive, type Member } from '../../adapters/tarreader.js';
import { walkTree } from '../../adapters/walk.js';
import { memberChecker, checkStaged, detectDumpKind, loadDump, maintenance, pgTableCounts } from '../restore/index.js';
import { databaseSeries, listBackups, readManifest } from '../catalog/index.js';
import type { ResolvedConfig } from '../config/index.js';
import { timestamp } from '../time.js';
import { fail, pass, firstFew, warn, type Check } from './types.js';
import { decryptionOf, isSealed, withPlainFile } from '../seal/index.js';
import { trackScratch } from '../fs/scratch.js';

const ident = (s: string) => '"' + s.replace(/"/g, '""') + '"';

/** PostgreSQL, when it is the primary: reachable with the configured credentials, and dumpable by the local pg_dump. */
export async function postgresCheck(cfg: ResolvedConfig): Promise<Check | null> {
  if (cfg.database.kind !== 'postgres') return null;
  const t = pgTarget(cfg.database);
  let server: number;
  try {
    const c = await pgConnect(t);
    server = Math.floor(Number((await c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v) / 10000);
    await c.end();
  } catch (err) {
    return fail('db.postgres', (err as Error).message, (err as { hint?: string }).hint ?? 'Check the server and `scitex-data config`.');
  }
  const local = await pgDumpMajor().catch(() => 0);
  if (local < server) return fail('db.postgres', `server is PostgreSQL ${server} but the local pg_dump is ${local || 'missing'}`, `Install postgresql-client-${server} so that backups can dump this server.`);
  return pass('db.postgres', `${t.user}@${t.host}:${t.port}/${t.database} accepts the credentials (server ${server}, pg_dump ${local})`);
}

/** --deep: restore the newest database backup and user archives into scratch space and compare. */
export async function deepChecks(cfg: ResolvedConfig, identity?: string): Promise<Check[]> {
  const all = await listBackups(cfg.backupDir.value);
  const series = databaseSeries(cfg);
  const db = all.find((e) => e.kind === cfg.database.kind && e.series === series && e.time);
  const out: Check[] = [];
  if (!db) out.push(fail('deep.database', 'no database backup to restore', 'Run `scitex-data backup db`.'));
  else if (isSealed(db.name) && !identity) out.push(warn('deep.database', `${db.name} is sealed: not restored without its key`, 'Give --identity <age secret key file> to restore it into scratch space.'));
  else {
    const live = cfg.database.kind === 'sqlite' ? cfg.database.path : null;
    out.push(await withPlainFile(db.path, identity, os.tmpdir(), (plain) => (live === null ? deepPostgres(cfg, plain) : deepSqlite(live, plain))).catch((err: Error) => fail('deep.database', `${db.name}: ${err.message}`, 'Check --identity; a sealed backup that does not decrypt is unusable.')));
  }
  const set = all.find((e) => e.kind === 'users' && e.time && !e.partial);
  if (set) out.push(await deepUsers(set.path, identity));
  return out;
}

function compareCounts(name: string, backup: string, restored: Record<string, number>, live: Record<string, number> | null): Check {
  if (!live) return pass(name, `${path.basename(backup)} restores (${Object.keys(restored).length} tables); no live database to compare with`);
  const diffs = [...new Set([...Object.keys(restored), ...Object.keys(live)])].filter((k) => restored[k] !== live[k]).map((k) => `${k}: backup ${restored[k] ?? 'absent'}, live ${live[k] ?? 'absent'}`);
  return diffs.length
    ? warn(name, `${path.basename(backup)} restores, but row counts differ from live: ${firstFew(diffs)}`, 'Expected if the app wrote since the backup; otherwise investigate before trusting it.')
    : pass(name, `${path.basename(backup)} restores; every table's row count equals the live one (${Object.keys(live).length} tables)`);
}

async function deepPostgres(cfg: ResolvedConfig, file: string): Promise<Check> {
  if (cfg.database.kind !== 'postgres') throw new Error('unreachable');
  const t = pgTarget(cfg.database);
  const scratch = `${t.database.slice(0, 40)}_verify_${timestamp()}`;
  let c;
  try {
    c = await maintenance(t);
  } catch (err) {
    return fail('deep.database', (err as Error).message, 'PostgreSQL must be reachable for --deep.');
  }
  try {
    const kind = await detectDumpKind(file);
    if (kind !== 'pg-custom' && kind !== 'pg-plain') return fail('deep.database', `${path.basename(file)} is not a PostgreSQL dump`, 'Take a new backup.');
    await c.query(`CREATE DATABASE ${ident(scratch)} TEMPLATE template0`);
    try {
      await loadDump(t, scratch, file, kind);
    } catch (err) {
      return fail('deep.database', `${path.basename(file)} does not restore: ${(err as Error).message}`, 'This backup is unusable: take a new one now and investigate.');
    }
    const sc = await pgConnect(t, scratch);
    const restored = await pgTableCounts(sc).finally(() => sc.end());
    const lc = await pgConnect(t).catch(() => null);
    const live = lc ? await pgTableCounts(lc).finally(() => lc.end()) : null;
    return compareCounts('deep.database', file, restored, live);
  } catch (err) {
    return fail('deep.database', (err as Error).message, 'Check that the role has CREATEDB (needed for a scratch restore).');
  } finally {
    await c.query(`DROP DATABASE IF EXISTS ${ident(scratch)}`).catch(() => {});
    await c.end().catch(() => {});
  }
}

async function deepSqlite(live: string, file: string): Promise<Check> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scitex-verify-'));
  const kept = trackScratch(dir); // restored (decrypted) data must not outlive a Ctrl-C
  try {
    const copy = path.join(dir, 'restored.db');
    await fsp.copyFile(file, copy);
    const problems = checkDatabase(copy, true);
    if (problems.length) return fail('deep.database', `${path.basename(file)} fails integrity_check: ${problems[0]}`, 'This backup is unusable: take a new one now.');
    return compareCounts('deep.database', file, tableCounts(copy), fs.existsSync(live) ? tableCounts(live) : null);
  } finally {
    kept();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

async function deepUsers(setDir: string, identity: string | undefined): Promise<Check> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'scitex-verify-'));
  const kept = trackScratch(dir); // restored (decrypted) data must not outlive a Ctrl-C
  try {
    const m = readManifest(setDir);
    if (m.sealed && !identity) return warn('deep.users', `${path.basename(setDir)} is sealed: not extracted without its key`, 'Give --identity <age secret key file> to extract it into scratch space.');
    const wrong: string[] = [];
    for (const u of m.users) {
      // The same path as a restore: checksum, strict headers, GNU tar, then the staged result compared.
      const members = new Map<string, Member>();
      await fsp.mkdir(path.join(dir, 'data/users'), { recursive: true });
      const file = path.join(setDir, u.archive);
      await extractArchive(file, { sha256: u.sha256, cwd: dir, check: memberChecker(u.username, { maxBytes: u.bytes, maxFiles: u.files }, members), decrypt: decryptionOf(file, u, identity) });
      const refused = checkStaged(dir, u.username, members, null);
      if (refused) throw new Error(`${u.archive}: ${refused}`);
      const w = walkTree(path.join(dir, 'data/users', u.username));
      if (w.files !== u.files || w.bytes !== u.bytes) wrong.push(`${u.username}: ${w.files} files/${w.bytes} bytes, manifest ${u.files}/${u.bytes}`);
      await fsp.rm(path.join(dir, 'data/users', u.username), { recursive: true, force: true });
    }
    return wrong.length
      ? fail('deep.users', firstFew(wrong), 'The set does not match its manifest: take a new backup.')
      : pass('deep.users', `${path.basename(setDir)}: ${m.users.length} archive(s) extract and match the manifest`);
  } catch (err) {
    return fail('deep.users', `${path.basename(setDir)}: ${(err as Error).message}`, 'The set does not extract: take a new backup.');
  } finally {
    kept();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}
