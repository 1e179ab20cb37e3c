import type { ResolvedConfig } from '../config/index.js';
import { findLeftovers } from '../status/index.js';
import { pass, firstFew, warn, type Check } from './types.js';

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** Safety copies and pre-restore databases still kept: a warning naming them and their total size. */
export async function leftoverCheck(cfg: ResolvedConfig, pg: boolean): Promise<Check> {
  const { items } = await findLeftovers(cfg, { pg });
  if (!items.length) return pass('leftovers', 'no safety copies or pre-restore databases are kept');
  const total = items.reduce((t, l) => t + l.size, 0);
  return warn(
    'leftovers',
    `${items.length} leftover(s) of earlier restores use ${mib(total)}: ${firstFew(items.map((l) => l.name))}`,
    'Once the restores are confirmed good: `scitex-data clean --older-than 30d --dry-run`, then without --dry-run.',
    { metrics: { leftover_bytes: total } },
  );
}
