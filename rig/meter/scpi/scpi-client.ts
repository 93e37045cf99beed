import { InstrumentError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { parseDefiniteLengthBlock } from './ieee-block.ts';
import type { ScpiTransport } from './scpi-transport.ts';

export interface ScpiIdentity {
  manufacturer: string;
  model: string;
  serial: string;
  firmware: string;
}

export interface ScpiErrorEntry {
  code: number;
  message: string;
}

/** Parse one `:SYSTem:ERRor?` reply: `-113,"Undefined header"`. */
export function parseScpiError(reply: string): ScpiErrorEntry {
  const m = /^\s*([+-]?\d+)\s*,\s*"?(.*?)"?\s*$/.exec(reply);
  if (!m) throw new InstrumentError(`unparseable error-queue entry ${JSON.stringify(reply.slice(0, 80))}`, { step: 'scpi-error', expected: '<code>,"<message>"' });
  return { code: Number(m[1]), message: m[2]! };
}

/** Parse an `*IDN?` reply: manufacturer, model, serial, firmware. */
export function parseIdn(reply: string): ScpiIdentity {
  const f = reply.split(',').map((s) => s.trim());
  // JSON-escaped: a meter answering garbage must not write raw control bytes to the terminal.
  if (f.length < 4) throw new InstrumentError(`*IDN? reply ${JSON.stringify(reply.slice(0, 80))} does not have 4 fields (garbage on the line, or not a SCPI instrument?)`, { step: 'scpi-idn' });
  return { manufacturer: f[0]!, model: f[1]!, serial: f[2]!, firmware: f.slice(3).join(',') };
}

const MAX_ERROR_QUEUE = 32;

/** `-113,"Undefined header"; -350,"Queue overflow" (the queue filled: later errors were lost)`. */
function formatErrors(errs: readonly ScpiErrorEntry[]): string {
  return errs.map((e) => `${e.code},"${e.message}"${e.code === -350 ? ' (the queue filled: later errors were lost)' : ''}`).join('; ');
}

/**
 * IEEE 488.2 / SCPI basics on any ScpiTransport: commands, text and block queries, identity, reset,
 * clear, operation-complete and the error queue. One exchange at a time.
 */
export class ScpiClient {
  readonly transport: ScpiTransport;
  readonly timeoutMs: number;
  readonly #log: Logger | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(transport: ScpiTransport, options: { timeoutMs?: number; log?: Logger } = {}) {
    this.transport = transport;
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.#log = options.log;
  }

  /** Send a command that has no response. */
  write(command: string): Promise<void> {
    return this.#exclusive(async () => {
      this.#log?.trace({ scpi: command }, 'scpi write');
      await this.transport.send(new TextEncoder().encode(command));
    });
  }

  /** Send a query and return its raw response message. */
  queryRaw(query: string, timeoutMs = this.timeoutMs): Promise<Uint8Array> {
    return this.#exclusive(async () => {
      this.transport.discardInput();
      await this.transport.send(new TextEncoder().encode(query));
      try {
        return await this.transport.receive(timeoutMs);
      } catch (e) {
        if (e instanceof InstrumentError) e.context.step ??= query;
        throw e;
      }
    });
  }

  /** Send a query and return its response as trimmed text. */
  async query(query: string, timeoutMs?: number): Promise<string> {
    const raw = await this.queryRaw(query, timeoutMs);
    const text = new TextDecoder().decode(raw).trim();
    this.#log?.trace({ scpi: query, reply: text }, 'scpi query');
    return text;
  }

  /** Query whose response is a definite-length block; returns the block's data. */
  async queryBlock(query: string, timeoutMs?: number): Promise<Uint8Array> {
    const raw = await this.queryRaw(query, timeoutMs);
    const start = raw.indexOf(0x23);
    const block = start >= 0 ? parseDefiniteLengthBlock(raw, start) : undefined;
    if (!block) throw new InstrumentError(`${query}: response is not a complete definite-length block`, { step: query, bytesSeen: raw.subarray(0, 32) });
    return block.data;
  }

  async identify(): Promise<ScpiIdentity> {
    return parseIdn(await this.query('*IDN?'));
  }

  reset(): Promise<void> {
    return this.write('*RST');
  }

  clearStatus(): Promise<void> {
    return this.write('*CLS');
  }

  /** Block until the instrument has finished all pending operations (`*OPC?` answers 1). */
  async operationComplete(timeoutMs?: number): Promise<void> {
    const r = await this.query('*OPC?', timeoutMs);
    if (r !== '1' && r !== '+1') throw new InstrumentError(`*OPC? answered "${r}"`, { step: '*OPC?', expected: '1' });
  }

  /** Drain the error queue (`:SYSTem:ERRor?` until code 0). */
  async errors(): Promise<ScpiErrorEntry[]> {
    const out: ScpiErrorEntry[] = [];
    for (let i = 0; i < MAX_ERROR_QUEUE; i++) {
      const e = parseScpiError(await this.query(':SYSTem:ERRor?'));
      if (e.code === 0) return out;
      out.push(e);
    }
    throw new InstrumentError(`error queue did not empty after ${MAX_ERROR_QUEUE} reads`, { step: ':SYSTem:ERRor?', errors: out });
  }

  /** The error queue read and cleared for a failure message (`; queue: -113,"Undefined header"`), or '' when empty or unreadable. */
  async drainedErrorsNote(): Promise<string> {
    const errs = await this.errors().catch(() => []);
    return errs.length ? `; error queue: ${formatErrors(errs)}` : '';
  }

  /** Throw InstrumentError listing the queue if the commands of `step` left errors. */
  async assertNoErrors(step: string): Promise<void> {
    const errs = await this.errors();
    if (errs.length) {
      throw new InstrumentError(`${this.transport.address} reported ${formatErrors(errs)} during ${step}`, {
        step,
        instrument: this.transport.address,
        errors: errs,
      });
    }
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(fn, fn);
    this.#queue = result.catch(() => undefined);
    return result;
  }
}
