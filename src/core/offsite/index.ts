/** Off-site copies: settings, copy, remote listing and verification, fetching for a restore. */
export * from './settings.js';
export * from './units.js';
export { ageAvailable } from '../../adapters/age.js';
export * from './copy.js';
export * from './remote.js';
export { ObjectStore, parseDestination, type Destination } from '../../adapters/objectstore.js';
export * from './prune.js';
export * from './lock.js';
