// A throwaway PostgreSQL server for the store tests: initdb into a temp dir, pg_ctl start on a free
// loopback port with its socket in that dir. PostgreSQL refuses to run as root, so as root the cluster
// belongs to the `postgres` user (Debian's package creates it) or else `nobody`, and every server
// command runs through runuser.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

/** The newest /usr/lib/postgresql/<v>/bin holding initdb, or undefined (the test then skips, saying why). */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(root, versions[0], 'bin') : undefined;
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function uidOf(user: string): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${user}:`));
  if (!line) return undefined;
  const f = line.split(':');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export interface PgServer {
  url: string;
  port: number;
  dir: string;
  start(): void;
  /** Immediate shutdown: connections are cut, nothing is flushed politely (an outage). */
  stop(): void;
  /** Stop and delete the cluster. */
  destroy(): void;
}

export async function startPgServer(bin: string): Promise<PgServer> {
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-pg-'));
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const user = asRoot ? (uidOf('postgres') ? 'postgres' : 'nobody') : undefined;
  if (asRoot) {
    const id = uidOf(user!)!;
    chownSync(dir, id.uid, id.gid);
    chmodSync(dir, 0o700);
  }
  const run = (cmd: string, args: string[]): string => {
    const [file, argv] = asRoot ? ['runuser', ['-u', user!, '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  };
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'plugrig', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const port = await freePort();
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=40`;
  const server: PgServer = {
    url: `postgres://plugrig@127.0.0.1:${port}/postgres`,
    port,
    dir,
    start: () => void run('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']),
    stop: () => void run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '60', 'stop']),
    destroy: () => {
      try {
        server.stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  server.start();
  return server;
}

/**
 * The set-up every central-store test file shares: without server binaries the file plans nothing and
 * says why; else a throwaway server started before its first test, and a temporary directory; both
 * removed at the end. `server` stands for the started one (read it inside a test).
 */
export function usePgServer(t: Test, o: { skipWhy: string; tmpPrefix: string }): { bin: string | undefined; dir: string; server: PgServer } {
  const bin = postgresBinDir();
  if (!bin) t.plan(0, `no PostgreSQL server binaries (/usr/lib/postgresql/<v>/bin/initdb): install Debian postgresql to run ${o.skipWhy}`);
  const dir = mkdtempSync(join(tmpdir(), o.tmpPrefix));
  let started: PgServer | undefined;
  const need = (): PgServer => {
    if (!started) throw new Error('the PostgreSQL test server is not started (read it inside a test)');
    return started;
  };
  t.before(async () => {
    if (bin) started = await startPgServer(bin);
  });
  t.teardown(() => {
    started?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const server: PgServer = {
    get url() {
      return need().url;
    },
    get port() {
      return need().port;
    },
    get dir() {
      return need().dir;
    },
    start: () => need().start(),
    stop: () => need().stop(),
    destroy: () => started?.destroy(),
  };
  return { bin, dir, server };
}
