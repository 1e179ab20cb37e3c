// Filesystem safety every room shares: atomic writes and partial names, no-follow opens, hashing.
export * from './atomic.js';
export * from './nofollow.js';
export * from './hash.js';
export * from './scratch.js';
