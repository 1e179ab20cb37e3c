/** Developer tools (tests and benchmarks only): a throwaway PostgreSQL cluster. Not part of the public API. */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** A throwaway PostgreSQL cluster on 127.0.0.1 with password authentication. */
export interface TestCluster {
  host: string;
  port: number;
  superPassword: string;
  bin: string;
  dir: string;
  /** SQL as the superuser, over TCP. */
  sql(query: string, database?: string): Promise<pg.QueryResult>;
  /** Creates a LOGIN CREATEDB role owning a new database, with pg_trgm and unaccent installed. */
  createOwnedDatabase(role: string, password: string, database: string): Promise<void>;
  stop(): void;
  start(): void;
}

/** The directory of the newest installed PostgreSQL server binaries (Debian layout). */
export function pgBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = fs.existsSync(base) ? fs.readdirSync(base).filter((v) => fs.existsSync(path.join(base, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions.length) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql: apt-get install postgresql');
  return path.join(base, versions[0]!, 'bin');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

const isRoot = process.getuid?.() === 0;

function asPostgres(cmd: string, args: string[]): void {
  // initdb and postgres refuse to run as root: use the postgres OS user then.
  const [file, argv] = isRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const r = spawnSync(file, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`);
}

/** Starts a fresh cluster; call stop() in afterAll. */
export async function startCluster(): Promise<TestCluster> {
  const bin = pgBinDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scitex-pg-'));
  const superPassword = 'super-' + Math.random().toString(36).slice(2);
  fs.writeFileSync(path.join(dir, 'pw'), superPassword + '\n');
  if (isRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const pgdata = path.join(dir, 'pgdata');
  asPostgres(path.join(bin, 'initdb'), ['-D', pgdata, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${path.join(dir, 'pw')}`, '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
  const port = await freePort();
  const start = () =>
    asPostgres(path.join(bin, 'pg_ctl'), ['-D', pgdata, '-l', path.join(dir, 'log'), '-w', '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
  start();
  const cluster: TestCluster = {
    host: '127.0.0.1',
    port,
    superPassword,
    bin,
    dir,
    async sql(query, database = 'postgres') {
      const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: superPassword, database });
      await client.connect();
      try {
        return await client.query(query);
      } finally {
        await client.end();
      }
    },
    async createOwnedDatabase(role, password, database) {
      await cluster.sql(`CREATE ROLE ${role} LOGIN CREATEDB PASSWORD '${password}'`);
      await cluster.sql(`CREATE DATABASE ${database} OWNER ${role}`);
      await cluster.sql('CREATE EXTENSION IF NOT EXISTS pg_trgm; CREATE EXTENSION IF NOT EXISTS unaccent;', database);
    },
    stop() {
      try {
        asPostgres(path.join(bin, 'pg_ctl'), ['-D', pgdata, '-m', 'immediate', 'stop']);
      } catch {
        /* already stopped */
      }
    },
    start,
  };
  return cluster;
}

/** Stops the cluster and removes its directory. */
export function destroyCluster(c: TestCluster | undefined): void {
  if (!c) return;
  c.stop();
  fs.rmSync(c.dir, { recursive: true, force: true });
}
