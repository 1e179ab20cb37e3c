import { Command, CommanderError, Option } from 'commander';
import { ExitCode, VERSION } from '../index.js';
import { registerInit } from './init.js';
import { registerConfig } from './config.js';
import { registerBackup } from './backup.js';
import { registerList } from './list.js';
import { registerPrune } from './prune.js';
import { registerRestore } from './restore.js';
import { registerVerify } from './verify.js';
import { registerMigrate } from './migrate.js';
import { pythonOption } from './options.js';

/** Builds the whole program; exported so tests can compare the README with --help. */
export function buildProgram(): Command {
  const program = new Command('scitex-data')
    .description("Layout, migration, backup, restore and verification of scitex-cloud's data/ directory.")
    .version(VERSION, '-V, --version')
    .option('--root <dir>', 'project root that contains data/', '.')
    .addOption(new Option('--env <env>', 'app environment (default from SCITEX_CLOUD_ENV)').choices(['dev', 'prod']))
    .addOption(pythonOption())
    .option('--json', 'print one JSON document on stdout, nothing else there')
    .option('-q, --quiet', 'print nothing on success')
    .option('--no-color', 'no colours (also NO_COLOR, or when stdout is not a terminal)')
    .option('--debug', 'print stack traces and debug messages')
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false)
    .configureHelp({ sortSubcommands: false, helpWidth: 100 });
  registerInit(program);
  registerConfig(program);
  registerMigrate(program);
  registerBackup(program);
  registerList(program);
  registerRestore(program);
  registerPrune(program);
  registerVerify(program);
  return program;
}

/**
 * A reader that went away (`scitex-data list | head -1`) is not a crash: output stops quietly, the
 * command finishes what it started (a backup is never cut short by its log reader) and keeps its exit code.
 */
function tolerateClosedOutput(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  });
}

/** Entry point: parses argv and maps commander's own errors to exit code 2. */
export async function main(argv: string[]): Promise<void> {
  tolerateClosedOutput(process.stdout);
  tolerateClosedOutput(process.stderr);
  const program = buildProgram();
  program.exitOverride();
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) c.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      const ok = ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(err.code);
      process.exitCode = ok ? ExitCode.OK : ExitCode.USAGE;
      return;
    }
    throw err;
  }
}
