import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appTreeWithAlice, okOn } from '../helpers/apptree.js';

// A run killed while it wrote the lock's .info file (through a temporary name) left that temporary name in data/
// for good: `npm run torture`'s migrate kill class found one after 25 trials. The next holder of the lock removes it.
describe('the lock leaves nothing behind after a kill', () => {
  it("a killed holder's temporary .info file is removed by the next run that takes the lock; a planted link is unlinked, not followed", () => {
    const root = appTreeWithAlice();
    const data = path.join(root, 'data');
    const stale = path.join(data, '..scitex-data.lock.info.partial-999999-abcdef');
    fs.writeFileSync(stale, '{"pid":999999}');
    const target = path.join(root, 'precious.txt');
    fs.writeFileSync(target, 'keep me');
    const planted = path.join(data, '..scitex-data.lock.info.partial-999998-fedcba');
    fs.symlinkSync(target, planted);
    okOn(root, 'backup', 'users');
    expect(fs.readdirSync(data).filter((n) => n.includes('.partial-'))).toEqual([]);
    expect(fs.readFileSync(target, 'utf8')).toBe('keep me');
  });
});
