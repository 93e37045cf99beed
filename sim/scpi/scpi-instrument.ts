import {
  compileHeader,
  matchMnemonic,
  parseProgramUnit,
  ScpiError,
  SCPI_ILLEGAL_PARAMETER,
  SCPI_QUEUE_OVERFLOW,
  SCPI_UNDEFINED_HEADER,
  splitProgramMessage,
  type MnemonicPattern,
  type ProgramUnit,
} from './scpi-parser.ts';

export interface ScpiCall {
  params: string[];
  /** Numeric suffixes of the header nodes that have one, in order. */
  suffixes: number[];
}

/** A query answers text (joined with ';' to other answers) or raw bytes (a definite-length block). */
export type ScpiAnswer = string | Uint8Array;

export interface ScpiHandlers {
  set?: (call: ScpiCall) => void;
  query?: (call: ScpiCall) => ScpiAnswer;
}

interface Entry {
  nodes: MnemonicPattern[];
  handlers: ScpiHandlers;
}

const ERROR_QUEUE_SIZE = 10;

/**
 * The SCPI core of a simulated instrument: a command tree, the error queue, the common commands and
 * `:SYSTem:ERRor?`. Models add their subsystems with `add(':INPut:VOLTage:RANGe', {...})`.
 * Unknown headers queue -113 "Undefined header"; a unit's error does not stop later units.
 */
export class ScpiInstrument {
  readonly #entries: Entry[] = [];
  readonly #common = new Map<string, ScpiHandlers>();
  #errors: ScpiError[] = [];
  /** Responses carry their header (`:INPUT:VOLTAGE:RANGE 3.0000E+02`) while on. */
  headerOn = false;

  constructor() {
    this.addCommon('CLS', { set: () => (this.#errors = []) });
    this.addCommon('OPC', { query: () => '1' });
    this.add(':SYSTem:ERRor', { query: () => this.#popError() });
    this.add(':SYSTem:ERRor:NEXT', { query: () => this.#popError() });
    this.add(':COMMunicate:HEADer', {
      set: ({ params }) => (this.headerOn = parseBoolean(params)),
      query: () => (this.headerOn ? '1' : '0'),
    });
  }

  add(pattern: string, handlers: ScpiHandlers): void {
    this.#entries.push({ nodes: compileHeader(pattern), handlers });
  }

  addCommon(name: string, handlers: ScpiHandlers): void {
    this.#common.set(name.toUpperCase(), handlers);
  }

  pushError(code: number, message: string): void {
    if (this.#errors.length >= ERROR_QUEUE_SIZE) {
      this.#errors[ERROR_QUEUE_SIZE - 1] = new ScpiError(SCPI_QUEUE_OVERFLOW, 'Queue overflow');
      return;
    }
    this.#errors.push(new ScpiError(code, message));
  }

  errorCount(): number {
    return this.#errors.length;
  }

  /** Execute one program message; returns the response message (without terminator) if it had queries. */
  handleMessage(message: string): Uint8Array | undefined {
    const answers: ScpiAnswer[] = [];
    let path: string[] = [];
    let units: string[];
    try {
      units = splitProgramMessage(message);
    } catch (e) {
      this.#fail(e);
      return undefined;
    }
    for (const text of units) {
      try {
        const unit = parseProgramUnit(text);
        if (unit.common) {
          const answer = this.#run(this.#common.get(unit.nodes[0]!), unit, [], text);
          if (answer !== undefined) answers.push(answer);
          continue;
        }
        const nodes = unit.absolute ? unit.nodes : [...path, ...unit.nodes];
        const { entry, suffixes } = this.#resolve(nodes, text);
        path = nodes.slice(0, -1);
        const answer = this.#run(entry.handlers, unit, suffixes, text);
        if (answer !== undefined) {
          answers.push(this.headerOn && typeof answer === 'string' ? `:${describeHeader(entry.nodes, suffixes)} ${answer}` : answer);
        }
      } catch (e) {
        this.#fail(e);
      }
    }
    if (!answers.length) return undefined;
    const enc = new TextEncoder();
    const parts = answers.map((a) => (typeof a === 'string' ? enc.encode(a) : a));
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + parts.length - 1);
    let o = 0;
    parts.forEach((p, i) => {
      if (i) out[o++] = 0x3b;
      out.set(p, o);
      o += p.length;
    });
    return out;
  }

  #resolve(nodes: string[], text: string): { entry: Entry; suffixes: number[] } {
    for (const entry of this.#entries) {
      if (entry.nodes.length !== nodes.length) continue;
      const suffixes: number[] = [];
      let ok = true;
      for (let i = 0; i < nodes.length && ok; i++) {
        const s = matchMnemonic(entry.nodes[i]!, nodes[i]!);
        if (s === undefined) ok = false;
        else if (entry.nodes[i]!.suffix) suffixes.push(s);
      }
      if (ok) return { entry, suffixes };
    }
    throw new ScpiError(SCPI_UNDEFINED_HEADER, `Undefined header; ${text}`);
  }

  #run(h: ScpiHandlers | undefined, unit: ProgramUnit, suffixes: number[], text: string): ScpiAnswer | undefined {
    const call = { params: unit.params, suffixes };
    if (unit.query) {
      if (!h?.query) throw new ScpiError(SCPI_UNDEFINED_HEADER, `Undefined header; ${text}`);
      return h.query(call);
    }
    if (!h?.set) throw new ScpiError(SCPI_UNDEFINED_HEADER, `Undefined header; ${text}`);
    h.set(call);
    return undefined;
  }

  #fail(e: unknown): void {
    if (e instanceof ScpiError) this.pushError(e.code, e.message);
    else throw e;
  }

  #popError(): string {
    const e = this.#errors.shift();
    // The queue reports the error's description only (the offending text is not echoed).
    return e ? `${e.code},"${e.message.split(';')[0]}"` : '0,"No error"';
  }
}

/** `ON|OFF|1|0` boolean parameter. */
export function parseBoolean(params: string[]): boolean {
  const p = params[0]?.toUpperCase();
  if (p === 'ON' || p === '1') return true;
  if (p === 'OFF' || p === '0') return false;
  throw new ScpiError(SCPI_ILLEGAL_PARAMETER, 'Illegal parameter value');
}

function describeHeader(nodes: MnemonicPattern[], suffixes: number[]): string {
  let s = 0;
  return nodes.map((n) => (n.suffix ? `${n.long}${suffixes[s++]}` : n.long)).join(':');
}
