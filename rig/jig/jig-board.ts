import { EventEmitter } from 'node:events';
import five from 'johnny-five';
import { RealClock, type Clock } from '../core/clock.ts';
import { ProtocolError, TimeoutError, TransportError } from '../core/errors.ts';
import { hex } from '../core/hex.ts';

/**
 * The part of a serial stream Firmata needs: serialport@13 `SerialPort`, a `SerialPortStream` on the
 * virtual binding, or any duplex that emits data/close/error like them.
 */
export interface FirmataStream {
  readonly path?: string;
  readonly isOpen?: boolean;
  write(data: Buffer, cb?: (err?: Error | null) => void): unknown;
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'close' | 'error', fn: (arg?: unknown) => void): unknown;
  off(event: string, fn: (...args: never[]) => void): unknown;
  close?(cb?: (err?: Error | null) => void): void;
}

export interface OpenJigBoardOptions {
  stream: FirmataStream;
  /** Handshake budget (REPORT_VERSION .. analog mapping). */
  timeoutMs?: number;
  /** Clock for the handshake budget; wall clock by default. */
  clock?: Clock;
  /** Name for errors and logs (the jig's ioBoards key). */
  name?: string;
}

/** Why the board stopped being usable. */
export interface JigBoardLoss {
  /** 'silent': the port is open but the board stopped answering (rig/jig/board-liveness.ts). */
  reason: 'close' | 'error' | 'silent';
  error?: Error;
}

/**
 * A ready StandardFirmata board. Emits 'lost' (JigBoardLoss) once when the stream closes or fails, so
 * the interlock can drive its state to safe and refuse mains until a reconnect.
 */
export class JigBoard extends EventEmitter<{ lost: [JigBoardLoss] }> {
  readonly board: five.Board;
  readonly name: string;
  readonly #stream: FirmataStream;
  #loss: JigBoardLoss | undefined;
  readonly #onClose = (): void => this.#lose({ reason: 'close' });
  readonly #onError = (e?: unknown): void => this.#lose({ reason: 'error', error: e instanceof Error ? e : new Error(String(e)) });

  constructor(board: five.Board, stream: FirmataStream, name: string) {
    super();
    this.board = board;
    this.#stream = stream;
    this.name = name;
    stream.on('close', this.#onClose);
    stream.on('error', this.#onError);
    // Slots that share the lid and E-stop inputs each listen on the same digital-read-<pin> event
    // (interlock + components per slot), so more than Node's default 10 listeners is expected.
    (board.io as unknown as { setMaxListeners(n: number): void }).setMaxListeners(100);
    // johnny-five re-emits io errors on the board; without a listener EventEmitter would throw them.
    board.on('error', (e: Error) => this.#lose({ reason: 'error', error: e }));
  }

  /** Set once the connection is gone; a lost board is never reused (open a new one). */
  get loss(): JigBoardLoss | undefined {
    return this.#loss;
  }

  get connected(): boolean {
    return this.#loss === undefined;
  }

  /**
   * The board stopped answering with its port open (a hung sketch): treated as lost, like a
   * closed port, so the interlock trips and refuses mains until the board is reopened.
   */
  markSilent(error: Error): void {
    this.#lose({ reason: 'silent', error });
  }

  #lose(loss: JigBoardLoss): void {
    if (this.#loss) return;
    this.#loss = loss;
    this.emit('lost', loss);
  }

  /** Close the stream; emits 'lost' with reason 'close' if it was still up. */
  async close(): Promise<void> {
    const s = this.#stream;
    if (!s.close || s.isOpen === false) {
      this.#lose({ reason: 'close' });
      return;
    }
    await new Promise<void>((resolve) => s.close?.(() => resolve()));
    this.#lose({ reason: 'close' });
  }
}

/** johnny-five Board options its @types omit. */
interface BoardOptionsFull {
  port: unknown;
  repl: false;
  debug: false;
  sigint: false;
  timeout: number;
}

/** Firmata IO internals touched on cleanup (a wall-clock timer firmata.js starts for REPORT_VERSION). */
interface FirmataIoInternals {
  reportVersionTimeoutId?: ReturnType<typeof setTimeout>;
}

/**
 * Open StandardFirmata through johnny-five over an already constructed stream. Resolves with a ready
 * board (version, firmware, capabilities and analog map received). Rejects with TimeoutError when the
 * board stays silent, ProtocolError when bytes came but no Firmata handshake, TransportError when the
 * stream fails. On rejection the caller still owns (and should close) the stream.
 */
/** How long to wait for the board's own REPORT_VERSION before asking for it. */
const ASK_VERSION_AFTER_MS = 300;

export async function openJigBoard(options: OpenJigBoardOptions): Promise<JigBoard> {
  const { stream } = options;
  const timeoutMs = options.timeoutMs ?? 5000;
  const clock = options.clock ?? new RealClock();
  const name = options.name ?? stream.path ?? 'io';
  const seen: number[] = [];
  const sniff = (chunk: Buffer): void => {
    if (seen.length < 64) seen.push(...chunk.subarray(0, 64 - seen.length));
  };
  stream.on('data', sniff);

  const boardOptions: BoardOptionsFull = { port: stream, repl: false, debug: false, sigint: false, timeout: timeoutMs + 60_000 };
  // The constructor emits "connect" synchronously; only "ready"/"error" matter here.
  const board = new five.Board(boardOptions as unknown as five.BoardOption);

  try {
    await new Promise<void>((resolve, reject) => {
      const cancel = clock.at(clock.now() + timeoutMs, () => {
        const ctx = { step: 'firmata-handshake', unit: name, bytesSeen: Uint8Array.from(seen), expected: 'F9 <major> <minor> (REPORT_VERSION), then F0 79 .. F7' };
        if (seen.length === 0) reject(new TimeoutError(`I/O board ${name}: no answer within ${timeoutMs} ms`, ctx));
        else reject(new ProtocolError(`I/O board ${name}: ${seen.length} bytes but no complete Firmata handshake within ${timeoutMs} ms (${hex(Uint8Array.from(seen))})`, ctx));
      });
      // A board behind a pty or an adapter without DTR auto-reset does not announce itself (it may
      // even still be streaming reports from an earlier session, which firmata.js ignores until a
      // version arrives), and firmata.js only asks after its own 5 s: ask early.
      const cancelAsk = clock.at(clock.now() + ASK_VERSION_AFTER_MS, () => {
        if (!board.isReady) stream.write(Buffer.from([0xf9, 0xf0, 0x79, 0xf7]));
      });
      board.on('ready', () => {
        cancel();
        cancelAsk();
        resolve();
      });
      board.on('error', (e: Error) => {
        cancel();
        reject(new TransportError(`I/O board ${name}: ${e.message}`, { step: 'firmata-handshake', unit: name, bytesSeen: Uint8Array.from(seen) }, { cause: e }));
      });
      stream.on('close', () => {
        cancel();
        reject(new TransportError(`I/O board ${name}: stream closed during handshake`, { step: 'firmata-handshake', unit: name }));
      });
    });
  } catch (e) {
    clearTimeout((board as unknown as { timer?: ReturnType<typeof setTimeout> }).timer);
    const io = board.io as FirmataIoInternals | null;
    if (io?.reportVersionTimeoutId) clearTimeout(io.reportVersionTimeoutId);
    throw e;
  } finally {
    stream.off('data', sniff);
  }
  return new JigBoard(board, stream, name);
}
