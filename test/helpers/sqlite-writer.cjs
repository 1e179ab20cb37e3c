// A stand-in for the app: commits pairs of rows continuously in WAL mode until killed.
// Each transaction inserts one row into a and one into b, so any consistent snapshot has count(a) == count(b).
// Statements are prepared once and kept, pragmas go through exec (no statement object): on Node >= 24.19,
// better-sqlite3 12 aborts the process when the garbage collector finalizes a dropped statement.
const Database = require('better-sqlite3');
const db = new Database(process.argv[2]);
db.exec('PRAGMA journal_mode = WAL');
db.exec(`PRAGMA wal_autocheckpoint = ${process.argv[3] === 'nocheckpoint' ? 0 : 1000}`);
db.exec('CREATE TABLE IF NOT EXISTS a(id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE IF NOT EXISTS b(id INTEGER PRIMARY KEY, v TEXT)');
const insA = db.prepare('INSERT INTO a(v) VALUES (?)');
const insB = db.prepare('INSERT INTO b(v) VALUES (?)');
const tx = db.transaction((i) => {
  insA.run('row ' + i + ' ' + 'x'.repeat(200));
  insB.run('row ' + i);
});
const limit = Number(process.argv[4] || Infinity);
let i = 0;
function burst() {
  for (let k = 0; k < 50 && i < limit; k++) tx(i++);
  if (i >= limit) {
    process.stdout.write('done\n');
    // Die without closing: the rows stay only in the -wal file, as after a crash of the app.
    if (process.argv[3] === 'nocheckpoint') process.kill(process.pid, 'SIGKILL');
    return;
  }
  setImmediate(burst);
}
burst();
