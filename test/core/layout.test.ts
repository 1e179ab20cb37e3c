import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backupsDir, dataDir, dbDir, migrationsArchiveDir, sqliteDir, usernameProblem, usersDir, validateUsername } from '../../src/index.js';

describe('layout API', () => {
  const root = '/srv/scitex';
  it('places directories as the design document does', () => {
    expect(usersDir(root)).toBe('/srv/scitex/data/users');
    expect(backupsDir(root)).toBe('/srv/scitex/data/db/backups');
    expect([dataDir(root), dbDir(root), sqliteDir(root), migrationsArchiveDir(root)]).toEqual(['/srv/scitex/data', '/srv/scitex/data/db', '/srv/scitex/data/db/sqlite', '/srv/scitex/data/db/migrations_archive']);
    expect(usersDir('relative/root')).toBe(path.resolve('relative/root/data/users'));
  });
  it.each(['alice', 'a.b', 'me@example.org', 'x+y', 'dash-_', 'Jürgen', '渡辺', 'backups', 'ssh_keys', 'a'.repeat(150)])('accepts Django username %s', (u) => {
    expect(usernameProblem(u)).toBeNull();
    expect(validateUsername(u)).toBe(u);
  });
  it.each(['', '.', '..', '../etc', 'a/b', 'a\0b', 'sp ace', 'new\nline', 'a'.repeat(151), 'ﬁle' /* NFKC would change it */, 'semi;colon'])('refuses %j', (u) => {
    expect(usernameProblem(u)).not.toBeNull();
    expect(() => validateUsername(u)).toThrow(/Refusing username/);
  });
});
