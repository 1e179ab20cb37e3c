/** scitex-data's public API: the CLI uses only what is exported here. */
export const VERSION = '0.1.0';
export * from './errors.js';
export * from './core/logger.js';
export * from './core/config/index.js';
export * from './core/lock.js';
export * from './core/time.js';
export * from './core/fs/index.js';
export * from './core/layout/index.js';
export * from './core/catalog/index.js';
export * from './core/backup/index.js';
export * from './core/restore/index.js';
export * from './core/verify/index.js';
export * from './core/migrate/index.js';
export * from './core/doctor/index.js';
export { layoutChecks } from './core/verify/layout.js';
export * from './core/offsite/index.js';
export * from './core/status/index.js';
