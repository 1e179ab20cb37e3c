// The doctor room: can this machine back up and restore (tools, versions, privileges, space, cron)? Its only door.
export * from './doctor.js';
