// The status room: what an operator looks at (status, a backup's contents, diffs between sets and the live
// tree) and the leftovers of restores (`clean`). It reads the catalog and restore rooms. Its only door.
export * from './report.js';
export * from './leftovers.js';
export * from './contents.js';
export * from './setdiff.js';
