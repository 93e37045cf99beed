/**
 * SCPI program-message parsing for simulated instruments (IEEE 488.2 / SCPI-99 rules, the subset a
 * bench instrument uses): `;`-separated program units, `:`-separated headers with long/short mnemonic
 * forms (`NUMeric` = `NUM` or `NUMERIC`, any case), numeric suffixes (`ITEM3`), `?` queries, common
 * commands (`*IDN?`), comma-separated parameters with quoted strings. Pure functions.
 */

/** A SCPI error for the error queue (negative codes are SCPI-standard). */
export class ScpiError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'ScpiError';
  }
}

export const SCPI_SYNTAX_ERROR = -102;
export const SCPI_PARAMETER_NOT_ALLOWED = -108;
export const SCPI_MISSING_PARAMETER = -109;
export const SCPI_UNDEFINED_HEADER = -113;
export const SCPI_SETTINGS_CONFLICT = -221;
export const SCPI_ILLEGAL_PARAMETER = -224;
export const SCPI_QUEUE_OVERFLOW = -350;

export interface ProgramUnit {
  /** `*IDN?` style. */
  common: boolean;
  /** Header began with ':' (resolved from the root, not from the previous unit's path). */
  absolute: boolean;
  /** Header nodes as typed, e.g. ['NUM', 'NORM', 'ITEM1']; for common commands ['IDN']. */
  nodes: string[];
  query: boolean;
  params: string[];
}

/** Split `text` at `sep` outside double or single quotes. */
function splitOutsideQuotes(text: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quote: string | null = null;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null;
      cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      cur += ch;
    } else if (ch === sep) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (quote) throw new ScpiError(SCPI_SYNTAX_ERROR, 'Syntax error; unterminated string');
  out.push(cur);
  return out;
}

/** Program units of one message (terminator already removed); empty units are dropped. */
export function splitProgramMessage(message: string): string[] {
  return splitOutsideQuotes(message, ';').map((u) => u.trim()).filter((u) => u.length > 0);
}

const NODE = /^[A-Za-z][A-Za-z0-9_]*$/;

export function parseProgramUnit(unit: string): ProgramUnit {
  const m = /^(\S+)(?:\s+([\s\S]*))?$/.exec(unit.trim());
  if (!m) throw new ScpiError(SCPI_SYNTAX_ERROR, 'Syntax error');
  let header = m[1]!;
  const paramText = (m[2] ?? '').trim();
  const params = paramText ? splitOutsideQuotes(paramText, ',').map((p) => p.trim()) : [];
  if (params.some((p) => p === '')) throw new ScpiError(SCPI_SYNTAX_ERROR, 'Syntax error; empty parameter');
  const query = header.endsWith('?');
  if (query) header = header.slice(0, -1);
  if (header.startsWith('*')) {
    const name = header.slice(1);
    if (!NODE.test(name)) throw new ScpiError(SCPI_SYNTAX_ERROR, 'Syntax error; bad common command');
    return { common: true, absolute: true, nodes: [name.toUpperCase()], query, params };
  }
  const absolute = header.startsWith(':');
  const nodes = (absolute ? header.slice(1) : header).split(':');
  if (nodes.some((n) => !NODE.test(n))) throw new ScpiError(SCPI_SYNTAX_ERROR, 'Syntax error; bad header');
  return { common: false, absolute, nodes, query, params };
}

/** One node of a command pattern: long form with the short form in capitals, optional numeric suffix. */
export interface MnemonicPattern {
  long: string;
  short: string;
  suffix: boolean;
}

/** 'ITEM#' -> suffix node; 'NUMeric' -> short 'NUM'. */
export function compileMnemonic(p: string): MnemonicPattern {
  const suffix = p.endsWith('#');
  const long = suffix ? p.slice(0, -1) : p;
  const short = long.replace(/[a-z]/g, '') || long;
  return { long: long.toUpperCase(), short: short.toUpperCase(), suffix };
}

/** Compile ':NUMeric:NORMal:ITEM#' into its nodes. */
export function compileHeader(pattern: string): MnemonicPattern[] {
  return pattern.replace(/^:/, '').split(':').map(compileMnemonic);
}

/**
 * Match a typed token against a pattern node: exactly the short or the long form, any case.
 * Returns the numeric suffix (1 when omitted) or undefined for no match.
 */
export function matchMnemonic(p: MnemonicPattern, token: string): number | undefined {
  let word = token.toUpperCase();
  let suffix = 1;
  if (p.suffix) {
    const m = /^(.*?)(\d+)$/.exec(word);
    if (m) {
      word = m[1]!;
      suffix = Number(m[2]);
    }
  } else if (/\d$/.test(word) && word !== p.short && word !== p.long) return undefined;
  return word === p.short || word === p.long ? suffix : undefined;
}

/** Match a character-data parameter (e.g. 'ASCii', 'LAMBda') against its allowed choices; returns the long form. */
export function matchChoice(param: string, choices: readonly string[]): string | undefined {
  for (const c of choices) if (matchMnemonic(compileMnemonic(c), param) !== undefined) return compileMnemonic(c).long;
  return undefined;
}

/** NR3 as WT-series instruments print it: 5 significant digits, 2-digit exponent ("2.2570E+02"). */
export function formatNr3(v: number): string {
  const [mant, exp] = v.toExponential(4).toUpperCase().split('E') as [string, string];
  const sign = exp.startsWith('-') ? '-' : '+';
  return `${mant}E${sign}${exp.replace(/^[+-]/, '').padStart(2, '0')}`;
}
