import type { Command } from 'commander';
import { backupContents, type Contents } from '../index.js';
import { type Ctx } from './context.js';
import { human } from './format.js';
import { run } from './run.js';
import { backupDirOption, identityOption } from './options.js';

const day = (s: number) => new Date(s * 1000).toISOString().replace('T', ' ').slice(0, 16);

/** Prints what a backup holds (users of a set, one user's files, a database's tables). */
export function printContents(ctx: Ctx, c: Contents): void {
  ctx.say(`${c.backup.name}  ${human(c.backup.size)}  ${c.checksumRecorded ? 'checksum recorded' : 'NO CHECKSUM'}${c.backup.partial ? '  PARTIAL' : ''}`);
  if (c.entries) {
    for (const e of c.entries) {
      const size = e.type === 'file' ? human(e.size) : e.type;
      ctx.say(`  ${e.mode.toString(8).padStart(4, '0')}  ${size.padStart(10)}  ${day(e.mtime)}  ${e.rel || '.'}${e.type === 'dir' ? '/' : ''}${e.linkTarget ? ` -> ${e.linkTarget}` : ''}`);
    }
    const files = c.entries.filter((e) => e.type === 'file');
    ctx.say(`${c.entries.length} entries, ${files.length} files, ${human(files.reduce((t, e) => t + e.size, 0))}`);
  } else if (c.users) {
    const w = Math.max(4, ...c.users.map((u) => u.username.length));
    ctx.say(`  ${'user'.padEnd(w)}  ${'archive'.padStart(10)}  ${'content'.padStart(10)}  ${'files'.padStart(7)}`);
    for (const u of c.users) ctx.say(`  ${u.username.padEnd(w)}  ${human(u.size).padStart(10)}  ${human(u.bytes).padStart(10)}  ${String(u.files).padStart(7)}${u.reused ? '  (unchanged, shared with the previous set)' : ''}${u.changed ? `  ${u.changed} file(s) changed while read` : ''}`);
  } else if (c.tables) {
    for (const t of c.tables) ctx.say(`  ${t.name}${t.rows !== null ? `  ${t.rows} row(s)` : ''}`);
    ctx.say(`${c.tables.length} table(s)`);
  }
}

/** Reads, prints and returns (for --json) a backup's contents. */
export async function contentsOf(ctx: Ctx, dir: string, name: string, user?: string, prefix?: string, identity?: string): Promise<{ result: Record<string, unknown> }> {
  const c = await backupContents(dir, name, { user, prefix, identity });
  printContents(ctx, c);
  // The set's inner summary is what `list` shows already; the contents are the point here.
  const backup = { ...c.backup, set: undefined, time: c.backup.time?.toISOString() ?? null };
  return { result: { ...c, backup } };
}

/** `scitex-data ls <backup> [user]`: a backup's contents with sizes, read from headers (nothing extracted). */
export function registerLs(program: Command): void {
  program
    .command('ls')
    .description("show what a backup holds: a set's users, one user's files (headers only, nothing extracted), a database's tables")
    .argument('<backup>', 'the backup as `list` names it: users_<ts>, users_<ts>/<archive>, or a database file')
    .argument('[user]', "with a set: list this user's files")
    .option('--path <prefix>', 'only entries at or below this path in the user directory (e.g. proj/paper-1)')
    .addOption(backupDirOption())
    .addOption(identityOption())
    .action(
      run('ls', async (ctx, name: string, user: string | undefined, o: { path?: string; backupDir?: string; identity?: string }) => {
        const cfg = ctx.config({ backupDir: o.backupDir });
        return contentsOf(ctx, cfg.backupDir.value, name, user, o.path, o.identity);
      }),
    );
}
