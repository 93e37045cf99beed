/**
 * OpenBeken's argument tokenizer (Tokenizer_TokenizeString) and its numeric readers. Arguments are
 * split on whitespace (space, tab, CR, LF, 0xA0); with quotes allowed a `"` at the start of an
 * argument runs to the next `"` (no escapes), which is why `StartupCommand startDriver NTP` keeps only
 * `startDriver` while `StartupCommand "startDriver NTP"` keeps both words. A line starting with `"`
 * opens a quoted argument even when quotes are not allowed. At most 511 chars and 32 arguments.
 */
const MAX_LINE = 511;
const MAX_ARGS = 32;

export function isWhiteSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\u00a0';
}

export function tokenize(line: string, options: { allowQuotes?: boolean } = {}): string[] {
  const allowQuotes = options.allowQuotes ?? false;
  let start = 0;
  while (start < line.length && isWhiteSpace(line[start])) start++;
  if (start >= line.length) return [];
  // Model the C buffer: separators and closing quotes become NUL, each argument runs to its NUL.
  const buf = [...line.slice(start, start + MAX_LINE)];
  const NUL = '\0';
  const at = (i: number): string => (i < buf.length ? buf[i]! : NUL);
  const starts: number[] = [];
  let p = 0;
  // A quoted argument: NUL the opening quote, the argument starts after it and ends at the next quote.
  const quoted = (q: number): number => {
    buf[q] = NUL;
    starts.push(q + 1);
    let i = q + 1;
    while (at(i) !== NUL) {
      if (buf[i] === '"') {
        buf[i] = NUL;
        break;
      }
      i++;
    }
    return i;
  };
  if (at(0) === '"') p = quoted(0) + 1;
  else starts.push(0);
  while (at(p) !== NUL && starts.length < MAX_ARGS) {
    if (isWhiteSpace(buf[p])) {
      buf[p] = NUL;
      const next = at(p + 1);
      if (next !== NUL && !isWhiteSpace(next)) {
        // A quote is only recognised right after whitespace (or at the very start).
        if (allowQuotes && next === '"') p = quoted(p + 1);
        else starts.push(p + 1);
      }
    }
    p++;
  }
  return starts.map((s) => {
    let e = s;
    while (e < buf.length && buf[e] !== NUL) e++;
    return buf.slice(s, e).join('');
  });
}

/** atof: the longest numeric prefix (after leading whitespace), 0 when there is none. */
export function atof(s: string): number {
  const m = /^[\s]*([+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)/.exec(s);
  return m ? Number(m[1]) : 0;
}

/** atoi: the longest integer prefix, 0 when there is none (32-bit wrap). */
export function atoi(s: string): number {
  const m = /^[\s]*([+-]?\d+)/.exec(s);
  return m ? Number(BigInt.asIntN(32, BigInt(m[1]!))) : 0;
}

/**
 * The value of a numeric argument as OpenBeken's expression evaluator gives it: plain arithmetic
 * (+ - * / and parentheses, so `2*115` works) and `$CH<n>` channel references; anything it cannot
 * parse falls back to atof (non-numeric text is 0).
 */
export function evaluateNumber(s: string, channel: (ch: number) => number = () => 0): number {
  const parsed = parseExpression(s.trim(), channel);
  return parsed ?? atof(s);
}

function parseExpression(s: string, channel: (ch: number) => number): number | undefined {
  let i = 0;
  const ws = (): void => {
    while (s[i] === ' ') i++;
  };
  const primary = (): number | undefined => {
    ws();
    if (s[i] === '(') {
      i++;
      const v = sum();
      ws();
      if (v === undefined || s[i] !== ')') return undefined;
      i++;
      return v;
    }
    if (s[i] === '-' || s[i] === '+') {
      const neg = s[i] === '-';
      i++;
      const v = primary();
      return v === undefined ? undefined : neg ? -v : v;
    }
    const ch = /^\$CH(\d+)/.exec(s.slice(i));
    if (ch) {
      i += ch[0].length;
      return channel(Number(ch[1]));
    }
    const num = /^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(s.slice(i));
    if (!num) return undefined;
    i += num[0].length;
    return Number(num[0]);
  };
  const product = (): number | undefined => {
    let v = primary();
    for (;;) {
      ws();
      const op = s[i];
      if (v === undefined || (op !== '*' && op !== '/')) return v;
      i++;
      const r = primary();
      if (r === undefined) return undefined;
      v = op === '*' ? v * r : v / r;
    }
  };
  const sum = (): number | undefined => {
    let v = product();
    for (;;) {
      ws();
      const op = s[i];
      if (v === undefined || (op !== '+' && op !== '-')) return v;
      i++;
      const r = product();
      if (r === undefined) return undefined;
      v = op === '+' ? v + r : v - r;
    }
  };
  if (s === '') return undefined;
  const v = sum();
  ws();
  return v !== undefined && i === s.length ? v : undefined;
}

/** Tokenizer_GetArgInteger: `0x..` hex, otherwise the evaluated value truncated to an int. */
export function argInteger(s: string | undefined, channel?: (ch: number) => number): number {
  if (s === undefined) return 0;
  if (s.startsWith('0x')) {
    const m = /^0x([0-9a-fA-F]+)/.exec(s);
    return m ? Number(BigInt.asIntN(32, BigInt('0x' + m[1]))) : 0;
  }
  const v = evaluateNumber(s, channel);
  return Number.isFinite(v) ? Math.trunc(v) | 0 : 0;
}

/** skipToNextWord: the text after the first word and the whitespace that follows it. */
export function skipToNextWord(line: string): string {
  let i = 0;
  while (i < line.length && !isWhiteSpace(line[i])) i++;
  while (i < line.length && isWhiteSpace(line[i])) i++;
  return line.slice(i);
}
