import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GITIGNORE_INTENT, gitignoreViolations, withDataBlock } from '../../src/index.js';
import { tempDir } from '../helpers/cli.js';

/** What real git says for each intent path, in a scratch repository with the given .gitignore. */
function gitSays(gitignore: string): Record<string, boolean> {
  const dir = tempDir();
  execFileSync('git', ['init', '-q'], { cwd: dir });
  fs.writeFileSync(path.join(dir, '.gitignore'), gitignore);
  const out: Record<string, boolean> = {};
  for (const t of GITIGNORE_INTENT) {
    fs.mkdirSync(path.join(dir, path.dirname(t.path)), { recursive: true });
    fs.writeFileSync(path.join(dir, t.path), '');
    try {
      execFileSync('git', ['check-ignore', '-q', t.path], { cwd: dir });
      out[t.path] = true;
    } catch {
      out[t.path] = false;
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

describe('.gitignore data block', () => {
  it('git agrees with the intent for the block alone', () => {
    const said = gitSays(withDataBlock(''));
    for (const t of GITIGNORE_INTENT) expect([t.path, said[t.path]]).toEqual([t.path, t.ignored]);
    expect(gitignoreViolations(withDataBlock(''))).toEqual([]);
  });
  it('overrides the real repository\'s data/**/ trap when appended after it', () => {
    const text = withDataBlock('node_modules/\ndata/**/\n!data/db/sqlite/.gitkeep\n');
    const said = gitSays(text);
    for (const t of GITIGNORE_INTENT) expect([t.path, said[t.path]]).toEqual([t.path, t.ignored]);
    expect(gitignoreViolations(text)).toEqual([]);
  });
  it('detects the trap by git rules, agreeing with git check-ignore', () => {
    const trap = 'data/db/sqlite/*.db*\ndata/**/\n!data/db/sqlite/.gitkeep\n!data/users/.gitkeep\n';
    const said = gitSays(trap);
    const v = gitignoreViolations(trap);
    expect(v.map((x) => x.path)).toContain('data/db/sqlite/.gitkeep');
    for (const x of v) expect(said[x.path]).toBe(x.actual);
  });
  it('appends once, keeps existing lines, and refreshes in place', () => {
    const once = withDataBlock('dist/\n');
    expect(once.startsWith('dist/\n')).toBe(true);
    expect(withDataBlock(once)).toBe(once);
    const edited = once.replace('/data/users/*\n', '') + 'after/\n';
    const refreshed = withDataBlock(edited);
    expect(refreshed).toBe(once + 'after/\n');
  });
});
