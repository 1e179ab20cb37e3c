import { spawn, type SpawnOptions } from 'node:child_process';
import { ScitexError } from '../errors.js';

/** Outcome of a child process that succeeded. */
export interface ToolResult {
  stdout: string;
  stderr: string;
}

/** Options for runTool. */
export interface ToolOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Fed to the child's stdin (a stream is piped; undefined closes stdin). */
  stdin?: NodeJS.ReadableStream;
  /** Collect stdout (default true); large outputs should go to a file via the tool's own flag. */
  captureStdout?: boolean;
  /** Hint for when the tool is not installed. */
  installHint?: string;
}

/** Runs a tool without a shell (arguments are never interpreted); rejects with its own last message. */
export function runTool(file: string, args: string[], opts: ToolOptions = {}): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = { env: opts.env ?? process.env, cwd: opts.cwd, stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] };
    const child = spawn(file, args, spawnOpts);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => {
      if (opts.captureStdout !== false && stdout.length < 1 << 24) stdout += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 1 << 20) stderr += d.toString();
    });
    if (opts.stdin && child.stdin) {
      opts.stdin.pipe(child.stdin);
      child.stdin.on('error', () => {
        /* the child exited early; its status tells why */
      });
    }
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new ScitexError(`${file} is not installed or not on PATH.`, opts.installHint ?? `Install ${file}.`));
      else reject(err);
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve({ stdout, stderr });
      else reject(new ToolFailure(file, code, signal, stderr || stdout));
    });
  });
}

/** A tool exited non-zero; `detail` is the most telling line of what it printed. */
export class ToolFailure extends Error {
  readonly detail: string;
  constructor(
    readonly tool: string,
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly output: string,
  ) {
    const lines = output.split('\n').map((l) => l.trim()).filter(Boolean);
    // The first error line is usually the cause; later ones are consequences.
    const telling = lines.filter((l) => !/Exiting with failure status due to previous errors/.test(l));
    const detail = telling.find((l) => /error|fatal|failed|cannot|denied|no space/i.test(l)) ?? telling[0] ?? lines[lines.length - 1] ?? `exit ${code ?? signal}`;
    super(`${tool} failed: ${detail}`);
    this.detail = detail;
  }
}
