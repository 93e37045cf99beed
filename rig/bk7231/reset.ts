/**
 * Ways to put the chip into its download window. The link loop runs concurrently, so a strategy
 * only drives its lines and returns when reset has been released.
 */
import type { Clock } from '../core/clock.ts';
import { ConfigError, TransportError } from '../core/errors.ts';
import type { ResetSpec } from '../jig/jig-config.ts';

export interface ResetContext {
  clock: Clock;
  /** Host adapter modem lines (true = asserted). */
  setModemLines(lines: { dtr: boolean; rts: boolean }): Promise<void>;
}

/** What a strategy tells the link loop after it ran. */
export interface ResetOutcome {
  /**
   * Nothing was driven: someone else (the operator, a jig) must reset the chip, so the link loop
   * keeps polling until its overall timeout instead of resetting again.
   */
  manual: boolean;
  /** Ask for that reset; the link loop calls it only if the chip does not answer at once (it may already be in its ROM). */
  prompt?: () => void;
}

export interface ResetStrategy {
  readonly name: string;
  reset(ctx: ResetContext): Promise<void | ResetOutcome>;
}

/** The three ways to get a BK7231N into its ROM, for messages when no reset worked. */
export const RESET_METHODS_HINT =
  "pulse CEN low from the jig (a jig file with reset \"jig-cen\"), wire the adapter's DTR/RTS to CEN (then --reset rts), or power-cycle the module's 3V3 while plugrig is polling";

type ModemStep = { kind: 'D' | 'R'; level: boolean } | { kind: 'W'; ms: number };

/** Parse an esptool-style sequence "R1|D1|W100|D0|W100|R0" (D = DTR, R = RTS, W = wait ms). */
export function parseModemSequence(sequence: string): ModemStep[] {
  return sequence.split('|').map((tok) => {
    const m = /^([DRW])(\d+)$/.exec(tok.trim());
    if (!m) throw new ConfigError(`bad reset step "${tok}" in "${sequence}" (expected D0/D1/R0/R1/W<ms>)`, { step: 'reset' });
    const kind = m[1] as 'D' | 'R' | 'W';
    const n = Number(m[2]);
    if (kind === 'W') return { kind, ms: n };
    if (n > 1) throw new ConfigError(`bad line level in "${tok}" (0 or 1)`, { step: 'reset' });
    return { kind, level: n === 1 };
  });
}

/** bk7231tools hw_reset: RTS=1, DTR=1, 100 ms, DTR=0, 100 ms, RTS=0. */
export const BK7231TOOLS_RESET_SEQUENCE = 'R1|D1|W100|D0|W100|R0';
/** hid_download_py do_reset_signal: DTR=0, RTS=1, 200 ms, RTS=0. */
export const HID_DOWNLOAD_RESET_SEQUENCE = 'D0|R1|W200|R0';

export class ModemLineReset implements ResetStrategy {
  readonly name: string;
  readonly steps: readonly ModemStep[];

  constructor(sequence: string, name = `modem-lines(${sequence})`) {
    this.steps = parseModemSequence(sequence);
    this.name = name;
  }

  static bk7231tools(): ModemLineReset {
    return new ModemLineReset(BK7231TOOLS_RESET_SEQUENCE, 'bk7231tools');
  }

  static hidDownload(): ModemLineReset {
    return new ModemLineReset(HID_DOWNLOAD_RESET_SEQUENCE, 'hid_download_py');
  }

  async reset(ctx: ResetContext): Promise<void> {
    // Both lines are always sent together; start from released.
    const lines = { dtr: false, rts: false };
    for (const s of this.steps) {
      if (s.kind === 'W') {
        await ctx.clock.sleep(s.ms);
        continue;
      }
      if (s.kind === 'D') lines.dtr = s.level;
      else lines.rts = s.level;
      await ctx.setModemLines({ ...lines });
    }
  }
}

/** A line the jig drives (CEN through an I/O pin, or the module's 3V3). */
export interface ResetLine {
  assert(): Promise<void>;
  release(): Promise<void>;
}

export class CallbackReset implements ResetStrategy {
  readonly name: string;
  readonly #line: ResetLine;
  readonly #pulseMs: number;

  constructor(line: ResetLine, pulseMs: number, name = 'callback') {
    this.#line = line;
    this.#pulseMs = pulseMs;
    this.name = name;
  }

  async reset(ctx: ResetContext): Promise<void> {
    await this.#line.assert();
    try {
      await ctx.clock.sleep(this.#pulseMs);
    } finally {
      await this.#line.release();
    }
  }
}

/**
 * The default: the bk7231tools DTR/RTS pulse when the port has modem lines; on one without (a
 * pty, some adapters) say so once and leave the reset to the operator or the jig, while the link
 * loop keeps polling.
 */
export class AutoReset implements ResetStrategy {
  readonly #modem: ModemLineReset;
  readonly #notice: (message: string) => void;
  #noLines = false;
  #told = false;

  constructor(opts: { sequence?: string; notice?: (message: string) => void } = {}) {
    this.#modem = opts.sequence ? new ModemLineReset(opts.sequence) : ModemLineReset.bk7231tools();
    this.#notice = opts.notice ?? (() => {});
  }

  get name(): string {
    return this.#noLines ? 'auto: no modem lines, waiting for a manual reset' : `auto (${this.#modem.name})`;
  }

  /** True once the port turned out to have no DTR/RTS. */
  get manual(): boolean {
    return this.#noLines;
  }

  async reset(ctx: ResetContext): Promise<ResetOutcome> {
    if (!this.#noLines) {
      try {
        await this.#modem.reset(ctx);
        return { manual: false };
      } catch (e) {
        if (!(e instanceof TransportError)) throw e;
        this.#noLines = true;
      }
    }
    return {
      manual: true,
      prompt: () => {
        if (this.#told) return;
        this.#told = true;
        this.#notice(`this port has no DTR/RTS modem lines, so plugrig cannot reset the chip. Reset it now: ${RESET_METHODS_HINT}. Polling with LinkCheck meanwhile.`);
      },
    };
  }
}

export class NoReset implements ResetStrategy {
  readonly name = 'none';
  async reset(): Promise<void> {}
}

/** Build the strategy a jig slot asks for; jig-driven methods need their line. */
export function resetStrategyFromSpec(spec: ResetSpec, lines: { cen?: ResetLine; power?: ResetLine } = {}): ResetStrategy {
  switch (spec.method) {
    case 'modem-lines':
      return new ModemLineReset(spec.sequence);
    case 'jig-cen':
      if (!lines.cen) throw new ConfigError('reset method jig-cen needs the CEN line', { step: 'reset' });
      return new CallbackReset(lines.cen, spec.pulseMs, 'jig-cen');
    case 'power-cycle':
      if (!lines.power) throw new ConfigError('reset method power-cycle needs the 3V3 line', { step: 'reset' });
      return new CallbackReset(lines.power, spec.offMs, 'power-cycle');
    case 'none':
      return new NoReset();
  }
}
