import fs from 'node:fs';

// Scratch directories that hold plaintext (a decrypted backup) while a run uses them. A run stopped by a signal
// ends through process.exit, which runs no `finally`: the CLI's signal handler removes what is registered here.
const live = new Set<string>();

/** Registers a scratch directory to be removed if the run is stopped; call the returned function once removed. */
export function trackScratch(dir: string): () => void {
  live.add(dir);
  return () => void live.delete(dir);
}

/** Removes every registered scratch directory now (synchronously: for a signal handler); returns them. */
export function removeScratch(): string[] {
  const gone = [...live];
  // A child killed a moment ago (tar) may still be creating a file inside: retry ENOTEMPTY.
  for (const d of gone) fs.rmSync(d, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
  live.clear();
  return gone;
}
