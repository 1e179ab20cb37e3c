// Backup names carry a timestamp: one place parses and prints it.

/** UTC timestamp in the design document's backup naming: YYYYMMDD_HHMMSS. */
export function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}_${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

/** Parses YYYYMMDD_HHMMSS (UTC) back into a Date, or null when it is not one. */
export function parseTimestamp(ts: string): Date | null {
  const m = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(ts);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return date.getUTCMonth() === mo - 1 && date.getUTCDate() === d ? date : null;
}

const p2 = (n: number) => String(n).padStart(2, '0');

/** A time as `list` shows it: the operator's local time (TZ respected) with its UTC offset. */
export function localTime(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const o = Math.abs(off);
  return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${sign}${p2(Math.floor(o / 60))}:${p2(o % 60)}`;
}

/**
 * The instants a --at value can mean, each as [from, to) in ms: what `list` shows (`YYYY-MM-DD HH:MM[:SS] ±HH:MM`,
 * also with `T`, `Z` or no offset, which means the operator's local time), or a name stamp `YYYYMMDD_HHMMSS`,
 * which names are written in (UTC) but which an operator may also type in local time (`date +%Y%m%d_%H%M%S`).
 */
export function atInstants(at: string): { from: number; to: number; how: string }[] {
  const s = at.trim();
  const stamp = /^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})$/.exec(s);
  if (stamp) {
    const [y, mo, d, h, mi, se] = stamp.slice(1).map(Number) as [number, number, number, number, number, number];
    const utc = Date.UTC(y, mo - 1, d, h, mi, se);
    const local = new Date(y, mo - 1, d, h, mi, se).getTime();
    return [{ from: utc, to: utc + 1000, how: 'as the UTC stamp in backup names' }, { from: local, to: local + 1000, how: 'as local time' }];
  }
  const iso = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?\s*(Z|UTC|[+-]\d{2}:?\d{2})?$/i.exec(s);
  if (!iso) return [];
  const [y, mo, d, h, mi] = iso.slice(1, 6).map(Number) as [number, number, number, number, number];
  const se = iso[6] === undefined ? 0 : Number(iso[6]);
  const span = iso[6] === undefined ? 60_000 : 1000; // without seconds: any backup in that minute
  let from: number;
  if (iso[7] === undefined) from = new Date(y, mo - 1, d, h, mi, se).getTime();
  else {
    const z = iso[7].toUpperCase();
    const off = z === 'Z' || z === 'UTC' ? 0 : (z[0] === '-' ? -1 : 1) * (Number(z.slice(1, 3)) * 60 + Number(z.slice(-2)));
    from = Date.UTC(y, mo - 1, d, h, mi, se) - off * 60_000;
  }
  return [{ from, to: from + span, how: iso[7] === undefined ? 'as local time' : 'with its offset' }];
}
