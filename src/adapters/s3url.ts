/** Destinations of off-site copies, as configured: `s3://bucket/prefix?settings` URLs. */

/** Where copies go: a bucket and key prefix on an S3-compatible server. */
export interface Destination {
  /** The URL as configured, without its query (what is shown to people and logs). */
  label: string;
  bucket: string;
  /** Key prefix, '' or ending in '/'. */
  prefix: string;
  endpoint?: string;
  region: string;
  pathStyle: boolean;
  /** Shared-credentials profile name (a name, not a secret). */
  profile?: string;
  /** Object Lock retention every object written there gets (`lock_days`, `lock_mode`); none when absent. */
  lock?: LockSetting;
}

/** Object Lock retention: the mode and how many days from each write. */
export interface LockSetting {
  days: number;
  mode: 'GOVERNANCE' | 'COMPLIANCE';
}

/** Parses `s3://bucket/prefix?endpoint=https://host:port&region=r&path_style=true&profile=p&lock_days=n&lock_mode=m`; throws on anything else. */
export function parseDestination(url: string): Destination {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/[^?#]*)?(?:\?([^#]*))?$/.exec(url.trim());
  if (!m) throw new Error(`not an s3://bucket/prefix URL: ${JSON.stringify(url)}`);
  const q = new URLSearchParams(m[3] ?? '');
  for (const k of q.keys()) {
    if (!['endpoint', 'region', 'path_style', 'profile', 'lock_days', 'lock_mode'].includes(k)) throw new Error(`unknown setting ${k} in ${m[1]} (endpoint, region, path_style, profile, lock_days, lock_mode)`);
  }
  const days = q.get('lock_days');
  const mode = q.get('lock_mode');
  if (days !== null && !/^[1-9][0-9]{0,4}$/.test(days)) throw new Error(`lock_days must be a whole number of days (1 or more): ${JSON.stringify(days)}`);
  if (mode !== null && !/^(governance|compliance)$/i.test(mode)) throw new Error(`lock_mode must be governance or compliance: ${JSON.stringify(mode)}`);
  if (mode !== null && days === null) throw new Error('lock_mode needs lock_days (how long each object is retained)');
  const endpoint = q.get('endpoint') ?? undefined;
  if (endpoint && !/^https?:\/\/[^/?#@]+\/?$/.test(endpoint)) throw new Error(`endpoint must be http(s)://host[:port] without credentials: ${JSON.stringify(endpoint)}`);
  const prefix = (m[2] ?? '').replace(/^\/+/, '').replace(/\/*$/, '');
  if (prefix.split('/').some((s) => s === '.' || s === '..')) throw new Error(`prefix may not hold . or .. segments: ${JSON.stringify(prefix)}`);
  const style = q.get('path_style');
  return {
    label: `s3://${m[1]}${prefix ? '/' + prefix : ''}${endpoint ? ` at ${endpoint.replace(/\/$/, '')}` : ''}`,
    bucket: m[1]!,
    prefix: prefix ? prefix + '/' : '',
    endpoint: endpoint?.replace(/\/$/, ''),
    region: q.get('region') ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    // Custom endpoints (MinIO, radosgw, B2) rarely have wildcard DNS for virtual-hosted buckets.
    pathStyle: style === null ? !!endpoint : /^(1|true|yes)$/i.test(style),
    profile: q.get('profile') ?? undefined,
    lock: days === null ? undefined : { days: Number(days), mode: mode?.toLowerCase() === 'compliance' ? 'COMPLIANCE' : 'GOVERNANCE' },
  };
}
