import readline from 'node:readline/promises';
import { Chalk, type ChalkInstance } from 'chalk';
import type { Command } from 'commander';
import { resolveConfig, UsageError, type AppEnv, type Logger, type Progress, type ResolvedConfig } from '../index.js';
import { barShown } from './terminal.js';
import { progressBar } from './progress.js';

/** Options every command accepts (set before or after the command name). */
export interface GlobalOptions {
  root: string;
  env?: AppEnv;
  python?: string;
  json: boolean;
  quiet: boolean;
  color: boolean;
  debug: boolean;
  onFailure?: string;
  onSuccess?: string;
  hookTimeout?: number;
}

/** What a command action gets: options, a logger wired to the terminal, and output helpers. */
export interface Ctx {
  globals: GlobalOptions;
  log: Logger;
  /** Colours for stdout (none when stdout is not a terminal). */
  c: ChalkInstance;
  /** Colours for stderr (none when stderr is not a terminal). */
  ce: ChalkInstance;
  /** A human line on stdout (silent with --json or --quiet). */
  say: (line: string) => void;
  /** A line about a failure on stdout: printed under --quiet too (cron mails it), silent only with --json. */
  alert: (line: string) => void;
  /** Resolves configuration, printing its warnings once. */
  config(extra?: { backupDir?: string }): ResolvedConfig;
  /** Asks for confirmation on a terminal; refuses (exit 2) without --yes elsewhere. */
  confirm(question: string, yes: boolean | undefined, whatFor: string): Promise<boolean>;
  warnings: string[];
}

const noProgress: Progress = { tick() {}, done() {} };

/** Builds the context from a command's merged options. */
export function makeContext(cmd: Command): Ctx {
  const o = cmd.optsWithGlobals<GlobalOptions & { color?: boolean }>();
  const g: GlobalOptions = { root: o.root ?? '.', env: o.env, python: o.python, json: !!o.json, quiet: !!o.quiet, color: o.color !== false, debug: !!o.debug, onFailure: o.onFailure, onSuccess: o.onSuccess, hookTimeout: o.hookTimeout };
  // Each stream is coloured only when it is itself a terminal: a file or pipe never gets escapes.
  const colours = (s: NodeJS.WriteStream) => new Chalk({ level: g.color && !process.env.NO_COLOR && !!s.isTTY && !g.json ? 1 : 0 });
  const c = colours(process.stdout);
  const ce = colours(process.stderr);
  // A line written while a bar is drawn on the same terminal first clears the bar's line.
  const clearBar = (s: NodeJS.WriteStream) => (barShown() && s.isTTY ? '\r\x1b[2K' : '');
  const showProgress = !g.quiet && !g.json && !!process.stderr.isTTY;
  const warnings: string[] = [];
  const log: Logger = {
    showsProgress: showProgress,
    info: (m) => {
      if (!g.quiet && !g.json) process.stdout.write(clearBar(process.stdout) + m + '\n');
    },
    warn: (m) => {
      warnings.push(m);
      if (!g.json) process.stderr.write(clearBar(process.stderr) + ce.yellow('warning: ') + m + '\n');
    },
    debug: (m) => {
      if (g.debug) process.stderr.write(clearBar(process.stderr) + ce.dim('debug: ' + m) + '\n');
    },
    progress: (label, totalBytes, totalFiles) => (showProgress ? progressBar(label, totalBytes, totalFiles) : noProgress),
  };
  let cached: ResolvedConfig | undefined;
  return {
    globals: g,
    log,
    c,
    ce,
    warnings,
    say: (line) => log.info(line),
    alert: (line) => {
      if (!g.json) process.stdout.write(clearBar(process.stdout) + line + '\n');
    },
    config(extra) {
      if (cached && !extra) return cached;
      cached = resolveConfig(g.root, { env: g.env, python: g.python, backupDir: extra?.backupDir }, process.env);
      for (const w of cached.warnings) log.warn(w);
      return cached;
    },
    async confirm(question, yes, whatFor) {
      if (yes) return true;
      if (!process.stdin.isTTY) {
        throw new UsageError(`Refusing to ${whatFor} without confirmation: standard input is not a terminal.`, 'Re-run with --yes (or first with --dry-run to see the plan).');
      }
      const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
      // Ctrl-C at the prompt (the terminal is in raw mode, so no signal is sent): stop like any Ctrl-C.
      rl.on('SIGINT', () => process.kill(process.pid, 'SIGINT'));
      try {
        const answer = await rl.question(`${question} [y/N] `);
        return /^y(es)?$/i.test(answer.trim());
      } finally {
        rl.close();
      }
    },
  };
}

