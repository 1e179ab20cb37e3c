// The restore room: databases (SQLite, PostgreSQL) and users, each staged, checked and swapped in with
// a safety copy of what it replaces. Its only door.
export * from './types.js';
export * from './database.js';
export * from './users.js';
export * from './users-run.js';
export * from './archivecheck.js';
export * from './userdiff.js';
// Scratch restores for `verify --deep` go through the same code as real ones.
export { checkStaged } from './stagecheck.js';
export { loadDump, maintenance, pgTableCounts } from './postgres.js';
