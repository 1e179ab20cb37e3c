import { createRequire } from 'node:module';
import type cliProgressType from 'cli-progress';
import type { Progress } from '../index.js';
import { human } from './format.js';
import { barStarted, barStopped } from './terminal.js';

/** A progress bar on stderr (a terminal) with bytes, files, rate and ETA; the caller decides whether to show one. */
export function progressBar(label: string, totalBytes: number, totalFiles?: number): Progress {
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
  bar.start(Math.max(1, byFiles ? totalFiles : totalBytes), 0, payload());
  barStarted(bar);
  return {
    tick(b, f = 0) {
      bytes += b;
      files += f;
      bar.update(byFiles ? Math.min(files, totalFiles) : Math.min(bytes, totalBytes), payload());
    },
    done() {
      bar.stop();
      barStopped(bar);
    },
  };
}
