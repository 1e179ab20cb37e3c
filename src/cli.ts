import { main } from './cli/main.js';

main(process.argv).catch((err: unknown) => {
  // Only reached for bugs outside any command's own error handling.
  process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)} This is a bug in scitex-data; re-run with --debug and report it.\n`);
  if (process.argv.includes('--debug')) process.stderr.write(String((err as Error)?.stack) + '\n');
  process.exitCode = 1;
});
