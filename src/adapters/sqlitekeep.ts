import { createRequire } from 'node:module';
import path from 'node:path';

// Why this exists: better-sqlite3 12.x builds Database, Statement, StatementIterator and Backup on the raw
// node::ObjectWrap. Compiled against Node >= 24.19 headers, ObjectWrap's destructor removes an environment
// cleanup hook and CHECKs that there is a current Environment; when the garbage collector finalizes one of
// these objects that lookup can fail, and the whole process aborts (SIGABRT, exit 134: "Assertion failed:
// (env) != nullptr" in node::RemoveEnvironmentCleanupHook), in the middle of a backup or a restore.
// better-sqlite3 13 no longer uses ObjectWrap, but needs Node >= 22. So every native object it makes is kept
// reachable here until the thread exits: the collector never finalizes one, and at exit Node's cleanup hooks
// delete them with a context entered (or process.exit skips that). A run makes few, small statements.

type NativeClass = new (...args: unknown[]) => object;
interface Addon {
  Database: NativeClass;
  Statement: NativeClass;
}

const kept: object[] = [];
const methods = (c: NativeClass) => (c as unknown as { prototype: Record<string, unknown> }).prototype;
let state: boolean | null = null;

/** Returns `fn` that also keeps whatever object it returns reachable until exit. */
function keeping(fn: unknown): unknown {
  if (typeof fn !== 'function') throw new TypeError('not a native method');
  const call = fn as (this: unknown, ...args: unknown[]) => unknown;
  return function (this: unknown, ...args: unknown[]): unknown {
    const out = call.apply(this, args);
    if (out !== null && typeof out === 'object') kept.push(out);
    return out;
  };
}

/**
 * Makes every better-sqlite3 object of this thread (databases, statements, also those `pragma` makes, iterators,
 * backups) live until exit; idempotent. False when the addon is not the shape this knows (nothing changed then).
 */
export function keepSqliteObjects(): boolean {
  if (state !== null) return state;
  state = false;
  try {
    // The same addon object better-sqlite3 loads (bindings resolves the same file, and require caches it):
    // its lib/database.js reads `addon.Database` at each `new Database()`.
    const pkg = createRequire(import.meta.url).resolve('better-sqlite3/package.json');
    const bindings = createRequire(pkg)('bindings') as (o: { bindings: string; module_root: string }) => Addon;
    const addon = bindings({ bindings: 'better_sqlite3.node', module_root: path.dirname(pkg) });
    const mark = Symbol.for('scitex-data.sqlitekeep');
    if ((addon as unknown as Record<symbol, boolean>)[mark]) return (state = true); // another copy of this module did it
    const Native = addon.Database;
    if (typeof Native !== 'function' || typeof addon.Statement !== 'function') return false;
    const prepare = keeping(methods(Native).prepare);
    const backup = keeping(methods(Native).backup);
    const iterate = keeping(methods(addon.Statement).iterate);
    class KeptDatabase extends Native {
      constructor(...args: unknown[]) {
        super(...args);
        kept.push(this);
      }
    }
    Object.assign(methods(Native), { prepare, backup });
    Object.assign(methods(addon.Statement), { iterate });
    addon.Database = KeptDatabase;
    Object.defineProperty(addon, mark, { value: true });
    state = true;
  } catch {
    // An unknown build of the addon: leave it as it is.
  }
  return state;
}

keepSqliteObjects();
