// A stand-in for an app that crashes mid-transaction in rollback-journal (DELETE) mode: it rewrites every
// row of a and deletes b with a tiny page cache (so changed pages reach the database file before commit),
// then dies with SIGKILL. Left behind: a hot -journal that SQLite must roll back on the next open.
const Database = require('better-sqlite3');
const db = new Database(process.argv[2]);
db.pragma('journal_mode = DELETE');
db.pragma('cache_size = 2');
db.exec('BEGIN');
db.prepare("UPDATE a SET v = 'uncommitted ' || id || ' ' || hex(randomblob(300))").run();
db.prepare('DELETE FROM b').run();
process.kill(process.pid, 'SIGKILL');
