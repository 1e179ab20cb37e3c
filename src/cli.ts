import v8 from 'node:v8';
import { main } from './cli/main.js';

// Keep V8's young generation at its initial size: backups allocate many short-lived buffers, and a
// grown young generation (up to 3 x 16 MiB) is most of the difference between flat and 200 MB peaks.
v8.setFlagsFromString('--semi-space-growth-factor=1');

main(process.argv).catch((err: unknown) => {
  // Only reached for bugs outside any command's own error handling.
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)} This is a bug in scitex-data; re-run with --debug and report it.\n`);
  if (process.argv.includes('--debug')) process.stderr.write(String((err as Error)?.stack) + '\n');
  process.exitCode = 1;
});
