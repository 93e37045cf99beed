/**
 * One command in flight: send a request, feed the parser, skip frames that belong to something
 * else (stale LinkCheck replies, late replies), return the awaited reply or fail with context.
 *
 * Resync barrier: a CheckCRC reply does not say which range it answers, so after a reply went
 * missing (timeout) or came back refused/garbled, a late answer could be taken for the next
 * request's and every answer after it would be one request behind. Once enabled
 * (`enableResyncBarrier`, for a ROM with ReadReg), the next request after such a failure is
 * preceded by a ReadReg of an address used for nothing else: its reply echoes that address, and
 * the chip answers in order, so once it is seen nothing older is still on its way.
 */
import { FlashError, ProtocolError, TimeoutError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { flashStatusName } from './protocol/commands.ts';
import { readReg, type Bk7231Request } from './protocol/frame.ts';
import { Bk7231ReplyParser, type Bk7231Reply } from './protocol/parser.ts';
import { classifyReply } from './protocol/reply.ts';
import { wireMs, type Bk7231Port } from './port.ts';

export interface TransactOptions {
  /** Time the chip needs for the operation itself (erase, CRC), on top of wire time and latency. */
  operationMs?: number;
  /** Total timeout override. */
  timeoutMs?: number;
  phase?: string;
  address?: number;
}

/** Host/USB latency allowance per command (ms). */
const LATENCY_MS = 100;
/** Bytes kept for error context. */
const CONTEXT_BYTES = 64;
/**
 * Barrier addresses: words of the 16 KiB BootROM at 0 (readable with ReadReg, bk7231-protocol.md
 * §3.2), taken in turn, so a late reply to an earlier barrier is told from the current one's. The
 * flasher reads no register there (the chip ID is at 0x00800000).
 */
const BARRIER_BASE = 0x0;
const BARRIER_WORDS = 0x4000 / 4;
/** Barrier tries before the chip is taken for silent, and the slack each try waits on top of its wire time. */
const BARRIER_TRIES = 2;
const BARRIER_SLACK_MS = 1000;
/** Quiet time and limit of the drain before a barrier. */
const BARRIER_DRAIN_QUIET_MS = 10;
const BARRIER_DRAIN_MAX_MS = 200;

/**
 * What the line did since the channel opened, for proofs that the chip ran exactly the commands
 * sent (outside-guard.ts): `answered` counts replies that matched their request's code and echo
 * (erase and write replies echo the address and erase size the chip received) with status 0;
 * `irregular` counts every event after which that is no longer known: a timeout, a skipped frame
 * (a reply to something not asked, or echoing another address), a non-zero status, bytes the
 * parser threw away while resynchronising, input drained or discarded unread.
 */
export interface LineRecord {
  sent: number;
  answered: number;
  irregular: number;
}

export class CommandChannel {
  readonly port: Bk7231Port;
  readonly #parser = new Bk7231ReplyParser();
  readonly #queue: Bk7231Reply[] = [];
  #baud = 115200;
  #log: Logger;
  /** Recently received bytes (last CONTEXT_BYTES), for errors. */
  #recent = new Uint8Array(0);
  #sent = 0;
  #barrierEnabled = false;
  /** A request failed (timeout, refused or garbled reply): the next one is preceded by a barrier. */
  #outOfSync = false;
  #barrierWord = 0;
  #barriers = 0;
  #answered = 0;
  #irregular = 0;

  constructor(port: Bk7231Port, log: Logger) {
    this.port = port;
    this.#log = log;
  }

  get baudRate(): number {
    return this.#baud;
  }

  /** The last bytes received (error context). */
  get recentBytes(): Uint8Array {
    return this.#recent.slice();
  }

  /** Commands sent since creation (benchmarks compare this). */
  get commandsSent(): number {
    return this.#sent;
  }

  /** Barriers run so far (each one after a failed request). */
  get resyncBarriers(): number {
    return this.#barriers;
  }

  /** Turn the resync barrier on (the ROM answers ReadReg: BK7231N; BK7231T's bootloader does not). */
  enableResyncBarrier(): void {
    this.#barrierEnabled = true;
  }

  /** The line's record so far (a snapshot; compare two to judge the commands between them). */
  get lineRecord(): LineRecord {
    return { sent: this.#sent, answered: this.#answered, irregular: this.#irregular + this.#parser.discardedBytes };
  }

  async setHostBaud(baud: number): Promise<void> {
    await this.port.setBaudRate(baud);
    this.#baud = baud;
  }

  /** Forget everything received so far (parser state, queued frames, port input). */
  async discard(): Promise<void> {
    this.#irregular++;
    await this.port.discardInput();
    this.#parser.reset();
    this.#queue.length = 0;
  }

  /** Read until the line has been quiet for quietMs (or maxMs passed); returns what was thrown away. */
  async drain(quietMs: number, maxMs: number): Promise<Uint8Array> {
    const clock = this.port.clock;
    const end = clock.now() + maxMs;
    const seen: number[] = [];
    for (;;) {
      const left = end - clock.now();
      if (left <= 0) break;
      const got = await this.#readSome(Math.min(quietMs, left));
      if (got.length === 0) break;
      seen.push(...got);
    }
    // Whatever was drained (or still queued, or half parsed) went unread.
    if (seen.length > 0 || this.#queue.length > 0 || this.#parser.pending.length > 0) this.#irregular++;
    this.#parser.reset();
    this.#queue.length = 0;
    return Uint8Array.from(seen);
  }

  /** Nothing received and unread: no queued frame, no half-parsed one, nothing buffered by the port. */
  get inputEmpty(): boolean {
    return this.#queue.length === 0 && this.#parser.pending.length === 0 && this.port.available() === 0;
  }

  /** Wire time of n bytes at the current rate. */
  wireMs(bytes: number): number {
    return wireMs(bytes, this.#baud);
  }

  /** Default timeout for a request: both frames on the wire twice over, the operation, and latency. */
  timeoutFor(req: Bk7231Request, operationMs = 0): number {
    const replyLen = req.reply ? Math.max(...req.reply.payloadLengths) + 11 : 0;
    return 2 * this.wireMs(req.bytes.length + replyLen) + operationMs + LATENCY_MS;
  }

  async send(req: Bk7231Request): Promise<void> {
    this.#sent++;
    await this.port.write(req.bytes);
  }

  /** Send and wait for the matching reply. Non-zero status -> FlashError. After a failed request a resync barrier goes first. */
  async transact(req: Bk7231Request, opts: TransactOptions = {}): Promise<Bk7231Reply> {
    if (this.#outOfSync && this.#barrierEnabled) await this.#resync(opts);
    await this.send(req);
    try {
      return await this.awaitReply(req, opts.timeoutMs ?? this.timeoutFor(req, opts.operationMs), opts);
    } catch (e) {
      if (e instanceof TimeoutError || e instanceof FlashError) this.#outOfSync = true;
      throw e;
    }
  }

  /**
   * Drain, then ReadReg a barrier address and wait for its echo, skipping every older frame. A
   * barrier unanswered twice means the chip itself has stopped (reset, brown-out, a parser
   * swallowing requests): TimeoutError with `unresponsive: true`, which the flasher re-links on.
   */
  async #resync(opts: TransactOptions): Promise<void> {
    for (let attempt = 1; attempt <= BARRIER_TRIES; attempt++) {
      await this.drain(BARRIER_DRAIN_QUIET_MS, BARRIER_DRAIN_MAX_MS);
      const address = BARRIER_BASE + 4 * (this.#barrierWord++ % BARRIER_WORDS);
      const barrier = readReg(address);
      await this.send(barrier);
      try {
        await this.awaitReply(barrier, this.timeoutFor(barrier, BARRIER_SLACK_MS), { phase: opts.phase, address });
        this.#outOfSync = false;
        this.#barriers++;
        this.#log.debug({ address, attempt }, 'resync barrier seen: no older reply is still on its way');
        return;
      } catch (e) {
        if (!(e instanceof TimeoutError)) throw e;
      }
    }
    throw new TimeoutError(`no reply to ${BARRIER_TRIES} resync barriers (ReadReg) after a failed request: the chip stopped answering`, {
      phase: opts.phase,
      address: opts.address,
      baud: this.#baud,
      unresponsive: true,
      barrier: true,
      bytesSeen: this.#recent.slice(),
      expected: 'short reply code 0x3 echoing the barrier address',
    });
  }

  /** Wait for the reply to a request already sent. */
  async awaitReply(req: Bk7231Request, timeoutMs: number, opts: TransactOptions = {}): Promise<Bk7231Reply> {
    const spec = req.reply;
    if (!spec) throw new ProtocolError(`${req.name} has no reply to wait for`, { step: opts.phase });
    const clock = this.port.clock;
    const deadline = clock.now() + timeoutMs;
    let skipped = 0;
    for (;;) {
      for (let f = this.#queue.shift(); f; f = this.#queue.shift()) {
        if (classifyReply(f, spec) !== 'match') {
          skipped++;
          this.#irregular++;
          this.#log.debug({ cmd: req.name, skippedCode: f.code, len: f.raw.length }, 'skipping unrelated frame');
          continue;
        }
        if (f.form === 'long' && f.status !== 0) {
          this.#irregular++;
          throw new FlashError(`${req.name} failed: ${flashStatusName(f.status!)}`, {
            phase: opts.phase,
            address: opts.address,
            status: f.status,
            bytesSeen: f.raw.slice(0, CONTEXT_BYTES),
          });
        }
        this.#answered++;
        return f;
      }
      const left = deadline - clock.now();
      if (left <= 0) break;
      const got = await this.#readSome(left);
      if (got.length) this.#queue.push(...this.#parser.push(got));
    }
    // No reply in time: late, lost, or stuck behind a truncated frame (given up here, looked again).
    this.#irregular++;
    const { dropped, frames } = this.#parser.abandonPending();
    const match = frames.find((f) => classifyReply(f, spec) === 'match');
    if (match && (match.form === 'short' || match.status === 0)) {
      this.#answered++;
      return match;
    }
    throw new TimeoutError(`no reply to ${req.name} within ${Math.round(timeoutMs)} ms`, {
      phase: opts.phase,
      address: opts.address,
      baud: this.#baud,
      skippedFrames: skipped,
      bytesSeen: dropped.length ? dropped.slice(0, CONTEXT_BYTES) : this.#recent.slice(),
      expected: `${spec.form} reply code 0x${spec.code.toString(16)}`,
    });
  }

  /** Whatever arrives within timeoutMs (empty on timeout). */
  async #readSome(timeoutMs: number): Promise<Uint8Array> {
    let out: Uint8Array;
    const ready = this.port.available();
    if (ready > 0) {
      out = await this.port.read(ready, 0);
    } else {
      let first: Uint8Array;
      try {
        first = await this.port.read(1, Math.max(0, timeoutMs));
      } catch (e) {
        if (e instanceof TimeoutError) return new Uint8Array(0);
        throw e;
      }
      const more = this.port.available();
      if (more > 0 && first.length > 0) {
        const rest = await this.port.read(more, 0);
        out = new Uint8Array(first.length + rest.length);
        out.set(first, 0);
        out.set(rest, first.length);
      } else {
        out = first;
      }
    }
    this.#remember(out);
    return out;
  }

  #remember(bytes: Uint8Array): void {
    const keep = Math.min(CONTEXT_BYTES, this.#recent.length + bytes.length);
    const next = new Uint8Array(keep);
    const fromBytes = Math.min(bytes.length, keep);
    const fromOld = keep - fromBytes;
    next.set(this.#recent.subarray(this.#recent.length - fromOld), 0);
    next.set(bytes.subarray(bytes.length - fromBytes), fromOld);
    this.#recent = next;
  }
}
