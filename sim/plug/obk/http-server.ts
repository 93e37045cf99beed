import net from 'node:net';
import type { Clock } from '../../../rig/core/clock.ts';
import type { ObkHttpFaults } from './http-faults.ts';
import { WIRE_ENCODING } from './http-wire.ts';

/**
 * OpenBeken's HTTP server on a real TCP socket (http_tcp_server.c, openbeken-http.md §1.1, reqs 1, 11):
 * - an accept loop that takes one connection, waits `acceptDelayMs` (20 ms), starts its client, and
 *   only then takes the next; at most `backlog` (lwIP turns listen(fd, 0) into 1) connections wait for
 *   it. A connection beyond that is a SYN lwIP ignores: the client's kernel retransmits it, modelled
 *   as the connection being offered again after `synRetryMs` (1 s, doubling), three times, then reset;
 * - a client that waits `clientDelayMs` (20 ms), then reads once: the bytes that have arrived by then
 *   (or the first burst, if none had) are the request; a body sent later is never seen;
 * - one request per connection, the reply written, the socket closed (never keep-alive);
 * - the optional "HTTP stalls" defect: connections are accepted and never answered;
 * - optional transport faults (http-faults.ts) between the handler's reply and the socket: late,
 *   cut, hanging or garbled replies, and a port that refuses connections for a while after boot.
 * Loopback by default; port 0 picks a free port. Timers run on the given clock (use a RealClock: the
 * socket I/O runs on wall time).
 */
export interface ObkHttpServerOptions {
  clock: Clock;
  /** The firmware's request handler: the reply bytes (latin1 text) or undefined = close silently. */
  handle: (request: string) => string | undefined;
  host?: string;
  port?: number;
  acceptDelayMs?: number;
  clientDelayMs?: number;
  backlog?: number;
  synRetryMs?: number;
  /** Defect: the server accepts and never replies. Evaluated per connection. */
  stalled?: () => boolean;
  /** A handler threw (a simulator bug): reported here, the client sees a closed connection. */
  onHandlerError?: (error: unknown) => void;
  /** Transport faults of this plug (shared across its boots). */
  faults?: ObkHttpFaults;
}

interface Waiting {
  socket: net.Socket;
  received: Buffer[];
  retries: number;
}

export class ObkHttpServer {
  readonly #opt: Required<Omit<ObkHttpServerOptions, 'stalled' | 'onHandlerError' | 'faults'>> &
    Pick<ObkHttpServerOptions, 'stalled' | 'onHandlerError' | 'faults'>;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  readonly #backlog: Waiting[] = [];
  readonly #cancels = new Set<() => void>();
  #acceptBusy = false;
  #stopped = false;
  /** While a refuse-during-boot fault keeps the port closed: where the server will listen. */
  #refusing: { host: string; port: number } | undefined;

  constructor(options: ObkHttpServerOptions) {
    this.#opt = {
      host: '127.0.0.1',
      port: 0,
      acceptDelayMs: 20,
      clientDelayMs: 20,
      backlog: 1,
      synRetryMs: 1000,
      ...options,
    };
    this.#server = net.createServer((socket) => this.#onConnection(socket));
  }

  /**
   * Listen; resolves with the bound address. With a refuse-during-boot fault the port is bound (so
   * it is known and kept), closed again at once, and listened on for real only after the fault's time.
   */
  async start(): Promise<{ host: string; port: number }> {
    const bound = await this.#listen(this.#opt.port);
    const refuseMs = this.#opt.faults?.refuseAfterBootMs() ?? 0;
    if (refuseMs <= 0) return bound;
    this.#refusing = bound;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#after(refuseMs, () => {
      if (this.#stopped) return;
      this.#listen(bound.port).then(
        () => (this.#refusing = undefined),
        (e: unknown) => this.#opt.onHandlerError?.(e),
      );
    });
    return bound;
  }

  #listen(port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#opt.host, port }, () => {
        this.#server.off('error', reject);
        resolve(this.address()!);
      });
    });
  }

  address(): { host: string; port: number } | undefined {
    if (this.#refusing) return { ...this.#refusing };
    const a = this.#server.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /** Stop listening and drop every connection (power loss or reboot: nothing is answered). */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#refusing = undefined;
    for (const cancel of this.#cancels) cancel();
    this.#cancels.clear();
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    this.#backlog.length = 0;
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #after(ms: number, fn: () => void): void {
    const cancel = this.#opt.clock.at(this.#opt.clock.now() + ms, () => {
      this.#cancels.delete(cancel);
      fn();
    });
    this.#cancels.add(cancel);
  }

  #onConnection(socket: net.Socket): void {
    if (this.#stopped) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    const waiting: Waiting = { socket, received: [], retries: 0 };
    socket.on('data', (chunk) => waiting.received.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => this.#sockets.delete(socket));
    this.#offer(waiting);
  }

  /** The connection reaches the listen queue (again, after a retransmitted SYN). */
  #offer(w: Waiting): void {
    if (this.#stopped || w.socket.destroyed) return;
    if (this.#acceptBusy && this.#backlog.length >= this.#opt.backlog) {
      if (w.retries >= 3) {
        w.socket.destroy();
        return;
      }
      const wait = this.#opt.synRetryMs * 2 ** w.retries;
      w.retries++;
      this.#after(wait, () => this.#offer(w));
      return;
    }
    this.#backlog.push(w);
    this.#acceptNext();
  }

  #acceptNext(): void {
    if (this.#acceptBusy || this.#stopped) return;
    const w = this.#backlog.shift();
    if (!w) return;
    this.#acceptBusy = true;
    // accept(), then the loop's 20 ms delay before the client thread exists.
    this.#after(this.#opt.acceptDelayMs, () => {
      this.#acceptBusy = false;
      this.#startClient(w);
      this.#acceptNext();
    });
  }

  #startClient(w: Waiting): void {
    if (w.socket.destroyed) return;
    if (this.#opt.stalled?.()) return; // accepted, never read, never answered
    this.#after(this.#opt.clientDelayMs, () => {
      if (w.received.length) this.#serve(w, Buffer.concat(w.received));
      else {
        // recv blocks until the first bytes arrive (or the peer closes: nothing to do).
        w.socket.once('data', () => setImmediate(() => this.#serve(w, Buffer.concat(w.received))));
      }
    });
  }

  #serve(w: Waiting, bytes: Buffer): void {
    if (this.#stopped || w.socket.destroyed) return;
    w.socket.removeAllListeners('data');
    w.socket.pause();
    let reply: string | undefined;
    const request = bytes.toString(WIRE_ENCODING);
    try {
      reply = this.#opt.handle(request);
    } catch (e) {
      reply = undefined;
      this.#opt.onHandlerError?.(e);
    }
    if (reply === undefined || reply === '') {
      w.socket.end();
      return;
    }
    const plan = this.#opt.faults?.planReply(reply, request) ?? { kind: 'send' as const, bytes: reply };
    const out = Buffer.from(plan.bytes, WIRE_ENCODING);
    if (plan.kind === 'send') w.socket.end(out);
    else if (plan.kind === 'send-and-hang') w.socket.write(out);
    else this.#after(plan.delayMs, () => void (w.socket.destroyed || w.socket.end(out)));
  }
}
