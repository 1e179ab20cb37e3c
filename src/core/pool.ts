// A tiny worker pool shared by backup and restore (two archives at a time: compression is CPU-bound).
/**
 * Runs `fn` over items with at most `n` at once. After a failure no new item starts, and the first
 * error is thrown only once every running item has settled: the caller's cleanup must not race
 * workers still writing (that left a partial set behind and reported ENOTEMPTY instead of the cause).
 */
export async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  let first: unknown;
  const workers = Array.from({ length: Math.min(n, items.length) }, async () => {
    while (!failed && next < items.length) {
      try {
        await fn(items[next++]!);
      } catch (err) {
        if (!failed) first = err;
        failed = true;
      }
    }
  });
  await Promise.all(workers);
  if (failed) throw first;
}
