import type { Command } from 'commander';
import { init } from '../index.js';
import { run } from './run.js';

/** `scitex-data init`: create the layout. */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create the data/ layout, its .gitkeep files and the .gitignore data block')
    .option('--dry-run', 'show what would be created, change nothing')
    .action(
      run('init', async (ctx, opts: { dryRun?: boolean }) => {
        const r = await init(ctx.globals.root, ctx.log, { dryRun: opts.dryRun });
        const verb = r.dryRun ? 'would' : 'did';
        // Every directory, mode and owner change is listed: the app runs as its own user and relies on them.
        for (const c of r.changes) ctx.say(`${ctx.c.green(verb)} ${c}`);
        for (const p of r.created.filter((x) => !x.endsWith('/'))) ctx.say(`${ctx.c.green(r.dryRun ? 'would create' : 'created')} ${p}`);
        for (const p of r.existing) ctx.say(`${ctx.c.dim('exists')}  ${p}`);
        ctx.say(`.gitignore data block: ${r.dryRun && r.gitignore !== 'unchanged' ? 'would be ' : ''}${r.gitignore}`);
        if (!r.created.length && !r.changes.length && r.gitignore === 'unchanged') ctx.say('Nothing to do: the layout is complete.');
        return { result: { ...r } };
      }),
    );
}
