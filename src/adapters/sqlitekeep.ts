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

/** Makes the objects that `addon` creates from now on live until exit; false when it is not the shape this knows. */
function patch(addon: Addon): boolean {
  const mark = Symbol.for('scitex-data.sqlitekeep');
  if ((addon as unknown as Record<symbol, boolean>)[mark]) return true; // another copy of this module did it
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
  // better-sqlite3's lib/database.js reads `addon.Database` at each `new Database()`.
  addon.Database = KeptDatabase;
  Object.defineProperty(addon, mark, { value: true });
  return true;
}

type Bindings = ((opts: string | { bindings: string; module_root?: string }) => unknown) & {
  getFileName(callingFile?: string): string;
  getRoot(file: string): string;
};

/**
 * Makes every better-sqlite3 object of this thread (databases, statements, also those `pragma` makes, iterators,
 * backups) live until exit; idempotent. The addon is patched when better-sqlite3 first loads it (through the
 * `bindings` package, whose cached export is wrapped here), not before: loading it here first would turn the
 * library's own error for an addon built for another Node ("compiled against a different Node.js version ...
 * npm rebuild") into "Module did not self-register". False when the packages are not the shape this knows.
 */
export function keepSqliteObjects(): boolean {
  if (state !== null) return state;
  state = false;
  try {
    const pkg = createRequire(import.meta.url).resolve('better-sqlite3/package.json');
    const req = createRequire(pkg); // resolves `bindings` as better-sqlite3's lib/database.js does
    const id = req.resolve('bindings');
    const original = req('bindings') as Bindings;
    const mod = req.cache[id];
    if (!mod || typeof original !== 'function' || (original as { keeps?: boolean }).keeps) return (state = true);
    const root = path.dirname(pkg);
    const wrapped = (opts: string | { bindings: string; module_root?: string }): unknown => {
      const o = typeof opts === 'string' ? { bindings: opts } : { ...opts };
      const ours = /^better_sqlite3(\.node)?$/.test(o.bindings);
      // bindings finds its caller's package from the stack, where this wrapper now stands first.
      o.module_root ??= ours ? root : original.getRoot(original.getFileName(import.meta.url));
      const addon = original(o);
      try {
        if (ours) patch(addon as Addon);
      } catch {
        // An addon of another shape: it works as it is, only without the keeping.
      }
      return addon;
    };
    mod.exports = Object.assign(wrapped, original, { keeps: true });
    state = true;
  } catch {
    // Unknown packaging: leave better-sqlite3 as it is.
  }
  return state;
}

keepSqliteObjects();
