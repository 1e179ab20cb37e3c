// The catalog room: what is in the backup directory (backups, user sets and their manifests, whether a
// set is complete, who made it) and retention over it. Backup, restore and verify all read it. Its only door.
export * from './catalog.js';
export * from './manifest.js';
export * from './setcheck.js';
export * from './origin.js';
export * from './retention.js';
