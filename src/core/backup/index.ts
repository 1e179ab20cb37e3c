// The backup room: database dumps and snapshots, user archives, publishing (checksum, then rename), and
// the nightly run that ties them together. Its only door.
export * from './run.js';
export * from './database.js';
export * from './users.js';
export * from './publish.js';
