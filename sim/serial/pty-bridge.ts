import { accessSync, constants, lstatSync, mkdtempSync, readlinkSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { SerialPortStream } from '@serialport/stream';
import { autoDetect } from '@serialport/bindings-cpp';
import { RealClock, type Clock } from '../../rig/core/clock.ts';
import { ConfigError, TransportError } from '../../rig/core/errors.ts';
import type { Logger } from '../../rig/core/log.ts';
import type { VirtualUartDevice } from './uart-device.ts';
import { VirtualUartWire } from './virtual-uart-wire.ts';

export interface PtyBridgeOptions {
  device: VirtualUartDevice;
  /** Symlink that clients open (e.g. /tmp/plugrig-dut1); a stale symlink there is replaced. */
  link: string;
  /** Must be a real clock: the pty lives in wall time. Default: a new RealClock. */
  clock?: Clock;
  socatPath?: string;
  /** How long socat may take to create both ptys. Default 5000 ms. */
  startTimeoutMs?: number;
  log?: Logger;
}

const PTY_LINE = /PTY is (\/dev\/\S+)/;

/** util-linux setpriv (Linux), used to give socat a parent-death signal; undefined where there is none. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

/**
 * Exposes a VirtualUartDevice on a pseudo-terminal so external programs (bk7231tools, a terminal,
 * our own CLI) can talk to it. socat joins two ptys: we hold the internal one open with serialport
 * and pump bytes through a VirtualUartWire (replies paced at the device's baud); clients open the
 * other one as often as they like. A pty carries no baud rate and no modem lines, so the wire
 * assumes the client always matches the device.
 */
export class PtyBridge {
  /** The symlink clients open. */
  readonly link: string;
  /** The /dev/pts/N the link points to. */
  readonly ptyPath: string;
  readonly wire: VirtualUartWire;
  readonly #proc: ResultPromise;
  readonly #internal: SerialPortStream;
  readonly #dir: string;
  readonly #log: Logger | undefined;
  readonly #stderrTail: string[];
  #closing = false;
  #failure: TransportError | null = null;
  readonly #failureListeners = new Set<(err: TransportError) => void>();

  private constructor(args: {
    link: string;
    ptyPath: string;
    wire: VirtualUartWire;
    proc: ResultPromise;
    internal: SerialPortStream;
    dir: string;
    stderrTail: string[];
    log: Logger | undefined;
  }) {
    this.link = args.link;
    this.ptyPath = args.ptyPath;
    this.wire = args.wire;
    this.#proc = args.proc;
    this.#internal = args.internal;
    this.#dir = args.dir;
    this.#stderrTail = args.stderrTail;
    this.#log = args.log;
  }

  static async start(o: PtyBridgeOptions): Promise<PtyBridge> {
    const clock = o.clock ?? new RealClock();
    if (clock.kind !== 'real') throw new ConfigError('a pty bridge runs in wall time: give it a RealClock', { link: o.link });
    removeStaleLink(o.link);
    const dir = mkdtempSync(join(tmpdir(), 'plugrig-pty-'));
    const internalLink = join(dir, 'internal');
    const socat = o.socatPath ?? 'socat';
    const socatArgs = ['-d', '-d', `pty,raw,echo=0,link=${internalLink}`, `pty,raw,echo=0,link=${o.link}`];
    // Through setpriv --pdeathsig: the kernel sends socat SIGTERM when we die, even by kill -9, so no
    // orphan keeps a pty (and its symlink) alive. setpriv execs socat in place: same pid, no shell.
    const proc = SETPRIV
      ? execa(SETPRIV, ['--pdeathsig', 'SIGTERM', '--', socat, ...socatArgs], { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: false, reject: false })
      : execa(socat, socatArgs, { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', buffer: false, reject: false });
    const stderrTail: string[] = [];
    const cleanup = (): void => {
      proc.kill();
      rmSync(dir, { recursive: true, force: true });
    };

    let ptyPath: string;
    try {
      ptyPath = await waitForPtys(proc, stderrTail, o.startTimeoutMs ?? 5000, clock, o.link);
    } catch (err) {
      cleanup();
      throw err;
    }

    const internal = new SerialPortStream({
      binding: autoDetect(),
      path: internalLink,
      baudRate: o.device.baudRate(),
      autoOpen: false,
    });
    try {
      await new Promise<void>((resolve, reject) => internal.open((err) => (err ? reject(err) : resolve())));
    } catch (err) {
      cleanup();
      throw new TransportError(`pty bridge: cannot open socat's internal pty: ${(err as Error).message}`, {
        path: internalLink,
        link: o.link,
      }, { cause: err });
    }

    const wire = new VirtualUartWire({ clock, device: o.device, modemLines: false, hostFollowsDevice: true });
    const bridge = new PtyBridge({ link: o.link, ptyPath, wire, proc, internal, dir, stderrTail, log: o.log });
    wire.hostOpen(o.device.baudRate(), (bytes) => bridge.#toClient(bytes));
    internal.on('data', (chunk: Buffer) => {
      if (!bridge.#failure) wire.hostWrite(chunk);
    });
    internal.on('error', (err: Error) => bridge.#fail(`pty bridge I/O error: ${err.message}`, err));
    internal.on('close', (err: Error | null) => {
      if (!bridge.#closing) bridge.#fail(`pty bridge: internal pty closed${err ? `: ${err.message}` : ''}`, err);
    });
    void proc.then((result) => {
      if (!bridge.#closing) {
        bridge.#fail(`socat exited unexpectedly (exit code ${String(result.exitCode)}, signal ${String(result.signal)})`);
      }
    });
    o.log?.info({ link: o.link, ptyPath }, 'pty bridge up');
    return bridge;
  }

  /** socat's process id (diagnostics). */
  pid(): number | undefined {
    return this.#proc.pid;
  }

  /** Set once the bridge broke (socat died, EIO); null while healthy. */
  failure(): TransportError | null {
    return this.#failure;
  }

  /** Called once if the bridge breaks on its own (not on close()). Returns the unsubscribe. */
  onFailure(cb: (err: TransportError) => void): () => void {
    this.#failureListeners.add(cb);
    return () => {
      this.#failureListeners.delete(cb);
    };
  }

  /** Stop socat, close the internal pty, remove the link. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.wire.dispose();
    if (this.#internal.isOpen) {
      await new Promise<void>((resolve) => this.#internal.close(() => resolve()));
    }
    this.#proc.kill('SIGTERM');
    await this.#proc;
    removeStaleLink(this.link);
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #toClient(bytes: Uint8Array): void {
    if (this.#failure || this.#closing || !this.#internal.isOpen) return;
    this.#internal.write(Buffer.from(bytes), (err) => {
      if (err) this.#fail(`pty bridge: write to internal pty failed: ${err.message}`, err);
    });
  }

  #fail(message: string, cause?: unknown): void {
    if (this.#failure || this.#closing) return;
    this.#failure = new TransportError(message, { link: this.link, ptyPath: this.ptyPath, socatLog: this.#stderrTail.join('\n') }, { cause });
    this.#log?.error({ err: this.#failure.toJSON() }, 'pty bridge failed');
    for (const cb of this.#failureListeners) cb(this.#failure);
  }
}

/** Remove a symlink left by an earlier bridge; refuse to touch anything that is not a symlink. */
function removeStaleLink(link: string): void {
  let isLink: boolean;
  try {
    isLink = lstatSync(link).isSymbolicLink();
  } catch {
    return;
  }
  if (!isLink) throw new ConfigError(`pty link ${link} exists and is not a symlink; refusing to replace it`, { link });
  unlinkSync(link);
}

/** Read socat's stderr until both "PTY is /dev/pts/N" lines appeared; returns the client's one. */
async function waitForPtys(proc: ResultPromise, tail: string[], timeoutMs: number, clock: Clock, link: string): Promise<string> {
  const stderr = proc.stderr;
  if (!stderr) throw new TransportError('socat has no stderr pipe', { link });
  const ptys: string[] = [];
  const lines = createInterface({ input: stderr });
  return new Promise<string>((resolve, reject) => {
    const done = (err: Error | null, value?: string): void => {
      cancelTimer();
      if (err) reject(err);
      else resolve(value ?? '');
    };
    const cancelTimer = clock.at(clock.now() + timeoutMs, () => {
      done(new TransportError(`socat did not create the ptys within ${timeoutMs} ms`, { link, socatLog: tail.join('\n') }));
    });
    lines.on('line', (line) => {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      const m = PTY_LINE.exec(line);
      if (m?.[1]) ptys.push(m[1]);
      if (/starting data transfer loop/.test(line) && ptys.length === 2) {
        // The link socat made is the truth; the second PTY line is the client's end.
        const target = safeReadlink(link) ?? ptys[1]!;
        done(null, target);
      }
    });
    void proc.then((result) => {
      const why = result.failed && result.exitCode === undefined ? (result.originalMessage ?? 'failed to start') : `exit code ${String(result.exitCode)}`;
      done(new TransportError(`socat ended before the ptys were ready (${why})`, { link, socatLog: tail.join('\n') }));
    });
  });
}

function safeReadlink(p: string): string | null {
  try {
    return readlinkSync(p);
  } catch {
    return null;
  }
}
