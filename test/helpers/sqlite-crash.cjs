// A stand-in for an app that crashes mid-transaction in rollback-journal (DELETE) mode: it rewrites every
// row of a and deletes b with a tiny page cache (so changed pages reach the database file before commit),
// then dies with SIGKILL. Left behind: a hot -journal that SQLite must roll back on the next open.
const Database = require('better-sqlite3');
const db = new Database(process.argv[2]);
// exec only (no statement objects, which the collector could finalize: see sqlite-writer.cjs).
db.exec('PRAGMA journal_mode = DELETE');
db.exec('PRAGMA cache_size = 2');
db.exec('BEGIN');
db.exec("UPDATE a SET v = 'uncommitted ' || id || ' ' || hex(randomblob(300))");
db.exec('DELETE FROM b');
process.kill(process.pid, 'SIGKILL');
