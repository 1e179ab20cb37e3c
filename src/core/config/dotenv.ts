/**
 * `.env` parsing with python-dotenv's grammar (src/dotenv/parser.py and variables.py of release 1.2.2, the one a
 * virtualenv installs today), because that is how the app reads the file. npm's dotenv differs where it matters: it cuts an unquoted value at any `#` (python-dotenv only at a
 * `#` after whitespace, so `KEY=abc#def` is `abc#def`), knows fewer escapes and does no `${VAR}` expansion.
 */

/** One `KEY=value` statement; value null for a bare `KEY` (python-dotenv yields None and sets nothing). */
export interface DotenvBinding {
  key: string;
  value: string | null;
  line: number;
}

/** The statements of a .env text and the lines python-dotenv could not parse (it skips them, and so do we). */
export interface DotenvParse {
  bindings: DotenvBinding[];
  errorLines: number[];
}

// Python's `\s` (str.isspace) differs from JavaScript's: it has \x1c-\x1f and \x85 and lacks the BOM \ufeff.
const PY_HSPACE = String.raw`\t\v\f\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000`;
const PY_SPACE = String.raw`\n\r${PY_HSPACE}`;
// The parser's regexes, sticky so each match starts where the reader stands (Python's regex.match(string, pos)).
// `[^\S\r\n]` (horizontal space) is written [H] below, `\s` is [S].
const sticky = (re: string) => new RegExp(re.replaceAll('[H]', `[${PY_HSPACE}]`).replaceAll('[S]', `[${PY_SPACE}]`).replaceAll('[^=#S]', `[^=#${PY_SPACE}]`), 'uy');
const MULTILINE_WS = sticky(String.raw`[S]*`);
const WS = sticky(String.raw`[H]*`);
const EXPORT = sticky(String.raw`(?:export[H]+)?`);
const SQ_KEY = sticky(String.raw`'([^']+)'`);
const UNQUOTED_KEY = sticky(String.raw`([^=#S]+)`);
const EQUAL = sticky(String.raw`(=[H]*)`);
const SQ_VALUE = sticky(String.raw`'((?:\\'|[^'])*)'`);
const DQ_VALUE = sticky(String.raw`"((?:\\"|[^"])*)"`);
const UNQUOTED_VALUE = sticky(String.raw`([^\r\n]*)`);
const COMMENT = sticky(String.raw`(?:[H]*#[^\r\n]*)?`);
const END_OF_LINE = sticky(String.raw`[H]*(?:\r\n|\n|\r|$)`);
const REST_OF_LINE = sticky(String.raw`[^\r\n]*(?:\r|\n|\r\n)?`);
const PY_COMMENT = new RegExp(`[${PY_SPACE}]+#.*`, 'su');
const PY_TRAILING = new RegExp(`[${PY_SPACE}]+$`, 'u');
const DQ_ESCAPES = /\\[\\'"abfnrtv]/gu;
const SQ_ESCAPES = /\\[\\']/gu;
const ESCAPED: Record<string, string> = { '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

class ParseFailure extends Error {}

class Reader {
  pos = 0;
  private counted = 0;
  private lines = 1;
  constructor(readonly text: string) {}
  /** 1-based line of the current position (counted incrementally: the reader only moves forward). */
  line(): number {
    const newlines = this.text.slice(this.counted, this.pos).match(/\r\n|\n|\r/g);
    this.lines += newlines ? newlines.length : 0;
    this.counted = this.pos;
    return this.lines;
  }
  peek(count: number): string {
    return this.text.slice(this.pos, this.pos + count);
  }
  read(re: RegExp): string[] {
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (!m) throw new ParseFailure();
    this.pos += m[0].length;
    return m.slice(1);
  }
}

function parseValue(r: Reader): string {
  const c = r.peek(1);
  if (c === "'") return r.read(SQ_VALUE)[0]!.replace(SQ_ESCAPES, (e) => ESCAPED[e[1]!]!);
  if (c === '"') return r.read(DQ_VALUE)[0]!.replace(DQ_ESCAPES, (e) => ESCAPED[e[1]!]!);
  if (c === '' || c === '\n' || c === '\r') return '';
  const part = r.read(UNQUOTED_VALUE)[0]!;
  // A comment starts only at whitespace + `#` inside the value (the spaces after `=` are already consumed, so
  // released python-dotenv reads `KEY=  # note` as "# note"; its unreleased main branch reads "").
  return part.replace(PY_COMMENT, '').replace(PY_TRAILING, '');
}

/** Parses .env text exactly as python-dotenv's parser does (1.2.2 keeps a leading BOM, in the first key). */
export function parseDotenv(text: string): DotenvParse {
  const r = new Reader(text);
  const bindings: DotenvBinding[] = [];
  const errorLines: number[] = [];
  while (r.pos < r.text.length) {
    try {
      r.read(MULTILINE_WS);
      if (r.pos >= r.text.length) break;
      const line = r.line();
      r.read(EXPORT);
      let key: string | null = null;
      const c = r.peek(1);
      if (c !== '#') key = (c === "'" ? r.read(SQ_KEY) : r.read(UNQUOTED_KEY))[0]!;
      r.read(WS);
      let value: string | null = null;
      if (r.peek(1) === '=') {
        r.read(EQUAL);
        value = parseValue(r);
      }
      r.read(COMMENT);
      r.read(END_OF_LINE);
      if (key !== null) bindings.push({ key, value, line });
    } catch (err) {
      if (!(err instanceof ParseFailure)) throw err;
      errorLines.push(r.line());
      r.read(REST_OF_LINE);
    }
  }
  return { bindings, errorLines };
}

const POSIX_VARIABLE = /\$\{([^}:]*)(?::-([^}]*))?\}/g;

/**
 * The values load_dotenv(override=False) would put in the environment: `${VAR}` / `${VAR:-default}` expanded with
 * the real environment winning over earlier .env values (resolve_variables), and keys already in the environment
 * left alone (set_as_environment_variables). A later duplicate key wins, as in python-dotenv's dict.
 */
export function dotenvValues(parsed: DotenvParse, environ: Record<string, string | undefined>): Record<string, string> {
  const resolved = new Map<string, string | null>();
  for (const b of parsed.bindings) {
    if (b.value === null) {
      resolved.set(b.key, null);
      continue;
    }
    const lookup = (name: string, dflt: string | undefined): string => {
      const env = environ[name];
      if (env !== undefined) return env;
      if (resolved.has(name)) return resolved.get(name) ?? '';
      return dflt ?? '';
    };
    resolved.set(b.key, b.value.replace(POSIX_VARIABLE, (_m, name: string, dflt: string | undefined) => lookup(name, dflt)));
  }
  const out: Record<string, string> = {};
  for (const [k, v] of resolved) if (v !== null && environ[k] === undefined) out[k] = v;
  return out;
}

/** python-dotenv's PYTHON_DOTENV_DISABLED switch: a truthy value makes load_dotenv load nothing. */
export function dotenvDisabled(environ: Record<string, string | undefined>): boolean {
  const v = environ.PYTHON_DOTENV_DISABLED;
  return v !== undefined && ['1', 'true', 't', 'yes', 'y'].includes(v.toLowerCase());
}
