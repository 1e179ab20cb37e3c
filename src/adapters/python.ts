import { spawnSync } from 'node:child_process';

/** DATABASES["default"] as the app's settings module computed it (only the connection keys). */
export interface SettingsDatabase {
  ENGINE?: string | null;
  NAME?: string | null;
  USER?: string | null;
  PASSWORD?: string | null;
  HOST?: string | null;
  PORT?: string | number | null;
}

/** What the settings evaluation returned, or why it could not. */
export type SettingsEvaluation =
  | { ok: true; database: SettingsDatabase; loaded: string[]; uid: number }
  | { ok: false; reason: string };

/** How to run the interpreter: who, where, with what environment, for how long. */
export interface EvaluateOptions {
  python: string;
  root: string;
  module: string;
  env: Record<string, string>;
  uid?: number;
  gid?: number;
  timeoutMs: number;
}

// Imports the settings module the way Django would (importlib, no django.setup(), so no connection is opened) with
// manage.py's sys.path, and writes one JSON line to fd 3: the module's own prints go to stdout, which is discarded.
const SCRIPT = String.raw`
import json, os, sys
out = os.fdopen(3, "w", encoding="utf-8")
os.set_inheritable(3, False)
def plain(v):
    if v is None or isinstance(v, int) and not isinstance(v, bool):
        return v
    return os.fspath(v) if isinstance(v, os.PathLike) else str(v)
try:
    root, module = sys.argv[1], sys.argv[2]
    sys.path.insert(0, root)
    sys.path.insert(0, os.path.join(root, "config"))
    os.environ["DJANGO_SETTINGS_MODULE"] = module
    import importlib
    m = importlib.import_module(module)
    dbs = getattr(m, "DATABASES", None)
    d = dbs.get("default") if isinstance(dbs, dict) else None
    if not isinstance(d, dict):
        raise LookupError("the module defines no DATABASES['default']")
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT")
    res = {"ok": True, "database": {k: plain(d.get(k)) for k in keys if k in d},
           "loaded": sorted(n for n in sys.modules if n == module or n.startswith(module + ".")), "uid": os.getuid()}
except BaseException as e:
    msg = str(e).strip().splitlines()
    res = {"ok": False, "reason": type(e).__name__ + (": " + msg[0] if msg else "")}
out.write("\nSCITEX-DATA-RESULT " + json.dumps(res) + "\n")
out.flush()
`;

const MARKER = 'SCITEX-DATA-RESULT ';

/** Runs `python` on the settings module in a child process (never a shell) and returns DATABASES["default"]. */
export function evaluateSettings(o: EvaluateOptions): SettingsEvaluation {
  const r = spawnSync(o.python, ['-B', '-c', SCRIPT, o.root, o.module], {
    cwd: o.root,
    env: o.env,
    uid: o.uid,
    gid: o.gid,
    timeout: o.timeoutMs,
    killSignal: 'SIGKILL',
    // stdin closed, stdout discarded (settings print banners), stderr kept for the reason, fd 3 carries the answer.
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    maxBuffer: 8 << 20,
  });
  // The answer counts even if the wait timed out: a process the settings left behind may hold the pipes open.
  const answer = String(r.output?.[3] ?? '').split('\n').reverse().find((l) => l.startsWith(MARKER));
  if (answer) {
    try {
      return JSON.parse(answer.slice(MARKER.length)) as SettingsEvaluation;
    } catch {
      /* fall through: a garbled answer is no answer */
    }
  }
  const err: NodeJS.ErrnoException | undefined = r.error;
  if (err?.code === 'ETIMEDOUT') return { ok: false, reason: `${o.python} did not finish within ${Math.round(o.timeoutMs / 1000)} s` };
  if (err?.code === 'ENOENT') return { ok: false, reason: `${o.python} not found` };
  if (err) return { ok: false, reason: `${o.python} could not run (${err.code ?? err.message})` };
  const last = String(r.stderr ?? '').trim().split('\n').pop()?.trim();
  return { ok: false, reason: `${o.python} gave no answer (${r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}${last ? `: ${last}` : ''})` };
}
