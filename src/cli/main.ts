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
import { registerDoctor } from './doctor.js';
import { DEFAULT_HOOK_TIMEOUT } from './hooks.js';
import { handleSignals } from './interrupt.js';
import { registerPin } from './pin.js';
import { registerClean } from './clean.js';
import { registerStatus } from './status.js';
import { registerLs } from './ls.js';
import { registerDiff } from './diff.js';
import { intArg, pythonOption } from './options.js';
import { registerCopy } from './copy.js';

/** Builds the whole program; exported so tests can compare the README with --help. */
export function buildProgram(): Command {
  const program = new Command('scitex-data')
    .description("Layout, migration, backup, restore and verification of scitex-cloud's data/ directory.")
    .version(VERSION, '-V, --version')
    .option('--root <dir>', 'project root that contains data/', '.')
    .addOption(new Option('--env <env>', 'app environment (default from SCITEX_CLOUD_ENV)').choices(['dev', 'prod']))
    .addOption(pythonOption())
    .option('--json', 'print one JSON document on stdout, nothing else there')
    .option('-q, --quiet', 'print nothing on success (failures, errors, warnings and deletions still print)')
    .option('--no-color', 'no colours (also NO_COLOR, or when stdout is not a terminal)')
    .option('--debug', 'print stack traces and debug messages')
    .option('--on-success <command>', 'run this shell command after a successful run (result as JSON on stdin)')
    .option('--on-failure <command>', 'run this shell command after a failed or interrupted run (result as JSON on stdin)')
    .option('--hook-timeout <seconds>', 'kill a hook still running after this long', intArg, DEFAULT_HOOK_TIMEOUT)
    .showHelpAfterError('(run with --help for usage)')
    .enablePositionalOptions(false)
    .configureHelp({ sortSubcommands: false, helpWidth: 100 });
  registerInit(program);
  registerConfig(program);
  registerMigrate(program);
  registerBackup(program);
  registerStatus(program);
  registerList(program);
  registerLs(program);
  registerDiff(program);
  registerRestore(program);
  registerPrune(program);
  registerPin(program);
  registerClean(program);
  registerVerify(program);
  registerDoctor(program);
  registerCopy(program);
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

/** True when --json comes before any `--` (needed before parsing: commander's own errors must be JSON too). */
const wantsJson = (argv: string[]) => {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).includes('--json');
};

/** Entry point: parses argv and maps commander's own errors to exit code 2 (one JSON document with --json). */
export async function main(argv: string[]): Promise<void> {
  tolerateClosedOutput(process.stdout);
  tolerateClosedOutput(process.stderr);
  handleSignals();
  const json = wantsJson(argv.slice(2));
  const out: string[] = [];
  const err: string[] = [];
  const program = buildProgram();
  const all = (c: Command): Command[] => [c, ...c.commands.flatMap(all)];
  for (const c of all(program)) {
    c.exitOverride();
    // With --json, commander's help and errors are collected into the one document instead of printed.
    if (json) c.configureOutput({ writeOut: (s) => void out.push(s), writeErr: (s) => void err.push(s) });
  }
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    // Help and version asked for exit 0; a group without its subcommand (`restore`) shows help as an error.
    const ok = e.exitCode === 0;
    const exitCode = ok ? ExitCode.OK : ExitCode.USAGE;
    const missing = !ok && e.code === 'commander.help';
    if (missing && !json) process.stderr.write('error: a command is missing (see the list above).\n');
    if (json) {
      const valued = ['--root', '--env', '--on-success', '--on-failure', '--hook-timeout'];
      const words = argv.slice(2).filter((a, i, xs) => !a.startsWith('-') && !valued.includes(xs[i - 1] ?? ''));
      const message = missing ? 'a command is missing: run with --help for the list' : e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim();
      const doc: Record<string, unknown> = ok
        ? { ok: true, command: e.code === 'commander.version' ? 'version' : 'help', exitCode, output: out.join('') || err.join('') }
        : { ok: false, command: words[0] ?? null, exitCode, error: { message, hint: 'Run `scitex-data --help` for usage.' }, warnings: [] };
      if (!ok && words[0] === 'restore' && words[1]) doc.command = `restore ${words[1]}`;
      process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    }
    process.exitCode = exitCode;
  }
}
