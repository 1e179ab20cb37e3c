import type pg from 'pg';

/**
 * Database-level properties the app relies on that are not in a dump's contents: who may connect (the
 * database ACL), per-database settings (`ALTER DATABASE … SET`, `ALTER ROLE … IN DATABASE … SET`), the
 * connection limit and the comment. pg_dump -Fc records some of them only for `pg_restore --create`, which
 * would recreate the database under its dumped name; restore builds a scratch database and swaps names
 * instead, so it copies them from the live database it replaces: that is the deployment as it is now,
 * with roles that exist in this cluster (a dump may come from another one).
 */
export interface DbProps {
  connlimit: number;
  /** ACL entries (grantee null = PUBLIC); null when the database has the default privileges. */
  acl: { grantee: string | null; privilege: string; grantable: boolean }[] | null;
  /** Settings per role (role null = everyone), as `name=value` strings from pg_db_role_setting. */
  settings: { role: string | null; config: string[] }[];
  comment: string | null;
}

const ident = (s: string) => '"' + s.replace(/"/g, '""') + '"';

// Settings whose value is a list of separately quoted elements (as pg_dump's variable_is_guc_list_quote).
const LIST_QUOTE = new Set(['local_preload_libraries', 'search_path', 'session_preload_libraries', 'shared_preload_libraries', 'temp_tablespaces', 'unix_socket_directories']);

/** Reads the properties of database `db` (call inside the swap transaction, before the renames). */
export async function readDbProps(c: pg.Client, db: string): Promise<DbProps> {
  const d = (await c.query<{ dflt: boolean; connlimit: number; comment: string | null }>(
    "SELECT datacl IS NULL AS dflt, datconnlimit AS connlimit, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1",
    [db],
  )).rows[0]!;
  const acl = d.dflt
    ? null
    : (await c.query<{ grantee: string | null; privilege: string; grantable: boolean }>(
        'SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege, a.is_grantable AS grantable FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1',
        [db],
      )).rows;
  const settings = (await c.query<{ role: string | null; config: string[] }>(
    'SELECT pg_get_userbyid(NULLIF(s.setrole, 0)) AS role, s.setconfig AS config FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1 ORDER BY 1 NULLS FIRST',
    [db],
  )).rows;
  return { connlimit: d.connlimit, acl, settings, comment: d.comment };
}

/** Splits a list setting as the server stores it (`"$user", public`) into its elements. */
export function splitGucList(value: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (value[i] === ' ' || value[i] === '\t') i++;
    let el = '';
    if (value[i] === '"') {
      for (i++; i < value.length; i++) {
        if (value[i] === '"' && value[i + 1] === '"') el += value[i++];
        else if (value[i] === '"') break;
        else el += value[i];
      }
      i++;
      while (i < value.length && value[i] !== ',') i++;
    } else {
      while (i < value.length && value[i] !== ',') el += value[i++];
      el = el.trim();
    }
    out.push(el);
    i++; // the comma
  }
  return out;
}

/** `name TO 'value'` for one `name=value` entry of pg_db_role_setting. */
function setClause(c: { escapeLiteral(v: string): string }, entry: string): string {
  const eq = entry.indexOf('=');
  const name = entry.slice(0, eq);
  const value = entry.slice(eq + 1);
  const values = LIST_QUOTE.has(name.toLowerCase()) ? splitGucList(value) : [value];
  return `${name.split('.').map(ident).join('.')} TO ${values.map((v) => c.escapeLiteral(v)).join(', ')}`;
}

/** Applies `props` to database `db` (just renamed into place, in the swap transaction). */
export async function applyDbProps(client: pg.Client, db: string, owner: string, props: DbProps): Promise<void> {
  const d = ident(db);
  // Failures name the statement, so that an operator sees which grant or setting this role cannot carry.
  const c = {
    escapeLiteral: (v: string) => client.escapeLiteral(v),
    query: (sql: string) =>
      client.query(sql).catch((err: Error) => {
        throw Object.assign(new Error(`${sql} failed (${err.message})`), { code: (err as { code?: string }).code });
      }),
  };
  if (props.acl) {
    // Start from an empty ACL, then grant exactly what the live database had (owner included).
    await c.query(`REVOKE ALL ON DATABASE ${d} FROM PUBLIC`);
    await c.query(`REVOKE ALL ON DATABASE ${d} FROM ${ident(owner)}`);
    for (const a of props.acl) await c.query(`GRANT ${a.privilege} ON DATABASE ${d} TO ${a.grantee === null ? 'PUBLIC' : ident(a.grantee)}${a.grantable ? ' WITH GRANT OPTION' : ''}`);
  }
  if (props.connlimit !== -1) await c.query(`ALTER DATABASE ${d} CONNECTION LIMIT ${Number(props.connlimit)}`);
  if (props.comment !== null) await c.query(`COMMENT ON DATABASE ${d} IS ${c.escapeLiteral(props.comment)}`);
  for (const s of props.settings) {
    for (const entry of s.config) {
      await c.query(s.role === null ? `ALTER DATABASE ${d} SET ${setClause(c, entry)}` : `ALTER ROLE ${ident(s.role)} IN DATABASE ${d} SET ${setClause(c, entry)}`);
    }
  }
}

/**
 * Proves before anything changes that this role can give the restored database every property of the live
 * one: applies them to the live database itself in a transaction that is rolled back. Only a superuser (or
 * CREATEROLE) may set another role's per-database settings, for instance; failing in the middle of the
 * swap instead would waste the whole restore.
 */
export async function checkDbProps(c: pg.Client, db: string, owner: string): Promise<string | null> {
  await c.query('BEGIN');
  try {
    await applyDbProps(c, db, owner, await readDbProps(c, db));
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.query('ROLLBACK');
  }
}
