// The migrate room: from the old layout to the new one, once, journaled, with --rollback. Its only door.
export * from './types.js';
export * from './plan.js';
export * from './run.js';
// Who is a user: one rule for migrate and verify.
export { classifyEntry, databaseUsernames, hasWorkspaceInfo, type EntryKind } from './evidence.js';
