/** scitex-data's public API: the CLI uses only what is exported here. */
export const VERSION = '0.1.0';
export * from './core/errors.js';
export * from './core/logger.js';
export * from './core/layout.js';
export * from './core/config.js';
export * from './core/fsafe.js';
export * from './core/lock.js';
export * from './core/gitignore.js';
export * from './core/oldlayout.js';
export * from './core/init.js';
export * from './core/publish.js';
export * from './core/catalog.js';
export * from './core/retention.js';
export * from './core/backupdb.js';
export * from './core/backupusers.js';
export * from './core/userset.js';
export * from './core/backup.js';
export * from './core/restoredb.js';
