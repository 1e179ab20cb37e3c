import readline from 'node:readline/promises';
import { Chalk, type ChalkInstance } from 'chalk';
import { createRequire } from 'node:module';
import type cliProgressType from 'cli-progress';
import type { Command } from 'commander';
import { resolveConfig, UsageError, type AppEnv, type Logger, type Progress, type ResolvedConfig } from '../index.js';

/** Options every command accepts (set before or after the command name). */
export interface GlobalOptions {
  root: string;
  env?: AppEnv;
  python?: string;
  json: boolean;
  quiet: boolean;
  color: boolean;
  debug: boolean;
}

/** What a command action gets: options, a logger wired to the terminal, and output helpers. */
export interface Ctx {
  g: GlobalOptions;
  log: Logger;
  c: ChalkInstance;
  /** A human line on stdout (silent with --json or --quiet). */
  say(line: string): void;
  /** Resolves configuration, printing its warnings once. */
  config(extra?: { backupDir?: string }): ResolvedConfig;
  /** Asks for confirmation on a terminal; refuses (exit 2) without --yes elsewhere. */
  confirm(question: string, yes: boolean | undefined, whatFor: string): Promise<boolean>;
  warnings: string[];
}

const noProgress: Progress = { tick() {}, done() {} };

/** Builds the context from a command's merged options. */
export function makeContext(cmd: Command): Ctx {
  const o = cmd.optsWithGlobals() as GlobalOptions & { color?: boolean };
  const g: GlobalOptions = { root: o.root ?? '.', env: o.env, python: o.python, json: !!o.json, quiet: !!o.quiet, color: o.color !== false, debug: !!o.debug };
  const useColor = g.color && !process.env.NO_COLOR && !!process.stdout.isTTY && !g.json;
  const c = new Chalk({ level: useColor ? 1 : 0 });
  const showProgress = !g.quiet && !g.json && !!process.stderr.isTTY;
  const warnings: string[] = [];
  const log: Logger = {
    showsProgress: showProgress,
    info: (m) => {
      if (!g.quiet && !g.json) process.stdout.write(m + '\n');
    },
    warn: (m) => {
      warnings.push(m);
      if (!g.json) process.stderr.write(c.yellow('warning: ') + m + '\n');
    },
    debug: (m) => {
      if (g.debug) process.stderr.write(c.dim('debug: ' + m) + '\n');
    },
    progress: (label, totalBytes, totalFiles) => {
      if (!showProgress) return noProgress;
      // Loaded only when a bar is shown (a terminal), keeping cron and --json runs light.
      const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof cliProgressType;
      const bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {percentage}% | {done}/{size} | {files} files | {rate}/s | ETA {eta_formatted}`, hideCursor: true, clearOnComplete: true, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      );
      let bytes = 0;
      let files = 0;
      const started = Date.now();
      const payload = () => ({ done: human(bytes), size: human(totalBytes), files: totalFiles ? `${files}/${totalFiles}` : String(files), rate: human(bytes / Math.max(0.001, (Date.now() - started) / 1000)) });
      // Without a byte total (e.g. migrate's renames) the bar follows the count of items instead.
      const byFiles = totalBytes === 0 && !!totalFiles;
      bar.start(Math.max(1, byFiles ? totalFiles! : totalBytes), 0, payload());
      return {
        tick(b, f = 0) {
          bytes += b;
          files += f;
          bar.update(byFiles ? Math.min(files, totalFiles!) : Math.min(bytes, totalBytes), payload());
        },
        done() {
          bar.stop();
        },
      };
    },
  };
  let cached: ResolvedConfig | undefined;
  return {
    g,
    log,
    c,
    warnings,
    say: (line) => log.info(line),
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
      try {
        const answer = await rl.question(`${question} [y/N] `);
        return /^y(es)?$/i.test(answer.trim());
      } finally {
        rl.close();
      }
    },
  };
}

/** Bytes as a short human figure (KiB, MiB, GiB). */
export function human(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
