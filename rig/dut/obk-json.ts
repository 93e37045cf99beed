/**
 * OpenBeken's JSON is not always JSON: POST /api/pins errors carry a raw newline inside a string,
 * `startcmd` does not escape backslashes, and /api/channels repeats keys (openbeken-http.md §1.3).
 */
import { ProtocolError } from '../core/errors.ts';

/** JSON.parse, then a second try with raw control characters and lone backslashes inside strings escaped. */
export function parseObkJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    try {
      return JSON.parse(escapeInsideStrings(text));
    } catch (e) {
      const bytesSeen = new TextEncoder().encode(text.slice(0, 512));
      if (endsEarly(text)) {
        throw new ProtocolError(`${what}: reply JSON is truncated: it ends after ${text.length} bytes with ${openers(text)} still open`, { phase: 'json', jsonFault: 'truncated', bytesSeen });
      }
      throw new ProtocolError(`${what}: reply is malformed JSON: ${(e as Error).message}`, { phase: 'json', jsonFault: 'malformed', bytesSeen });
    }
  }
}

/**
 * Is `text` the beginning of a JSON object or array cut before its end (nothing wrong in what did
 * arrive)? It is when closing what is open (the string, then every bracket), after finishing or
 * dropping a dangling key, colon, comma or literal, gives text JSON.parse accepts. A reply that is
 * whole but garbled (a quote lost, a wrong bracket) cannot be completed that way.
 */
function endsEarly(text: string): boolean {
  const t = text.trim();
  if (t === '' || (t[0] !== '{' && t[0] !== '[')) return false;
  const { ok, stack, inString } = scan(t);
  if (!ok || (stack.length === 0 && !inString)) return false;
  const closers = stack.map((c) => (c === '{' ? '}' : ']')).reverse().join('');
  const base = inString ? `${t}"` : t.replace(/[A-Za-z0-9.+-]+$/, (tail) => (/^-?\d/.test(tail) ? tail.replace(/[.eE+-]+$/, '') : ''));
  const stem = base.replace(/\s+$/, '');
  const candidates = [stem, `${stem}:null`, `${stem}null`, stem.replace(/,$/, ''), stem.replace(/,?\s*"[^"]*"$/, '')];
  return candidates.some((c) => {
    try {
      JSON.parse(c + closers);
      return true;
    } catch {
      return false;
    }
  });
}

/** What is still open at the end: e.g. `an object and a string`. '' when balanced. */
function openers(text: string): string {
  const { stack, inString } = scan(text.trim());
  const names: string[] = stack.map((c) => (c === '{' ? 'an object' : 'an array'));
  if (inString) names.push('a string');
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/** Brackets and strings up to the end; ok false at a bracket that closes the wrong opener or text after the value. */
function scan(text: string): { ok: boolean; stack: string[]; inString: boolean } {
  const stack: string[] = [];
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') stack.push(c);
    else if (c === '}' || c === ']') {
      if (stack.pop() !== (c === '}' ? '{' : '[')) return { ok: false, stack, inString };
      if (stack.length === 0 && text.slice(i + 1).trim() !== '') return { ok: false, stack, inString };
    }
  }
  return { ok: true, stack, inString };
}

function escapeInsideStrings(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (!inString) {
      if (c === '"') inString = true;
      out += c;
      continue;
    }
    if (c === '\\') {
      const n = text[i + 1];
      if (n !== undefined && '"\\/bfnrtu'.includes(n)) {
        out += c + n;
        i++;
      } else out += '\\\\';
      continue;
    }
    if (c === '"') inString = false;
    const code = c.charCodeAt(0);
    out += code < 0x20 ? '\\u' + code.toString(16).padStart(4, '0') : c;
  }
  return out;
}

/**
 * A flat JSON object of numbers whose keys may repeat, as ordered [key, value] pairs
 * (`{"0":0,"0":0,"1":0}` from /api/channels). JSON.parse would keep only the last of each key.
 */
export function parseRepeatedKeyObject(text: string, what: string): Array<[string, number]> {
  const body = text.trim();
  const fail = (why: string): never => {
    throw new ProtocolError(`${what}: ${why}`, { phase: 'json', bytesSeen: new TextEncoder().encode(body.slice(0, 512)) });
  };
  if (!body.startsWith('{') || !body.endsWith('}')) fail('not a JSON object');
  const inner = body.slice(1, -1).trim();
  if (inner === '') return [];
  const out: Array<[string, number]> = [];
  for (const part of inner.split(',')) {
    const m = /^\s*"([^"]*)"\s*:\s*(-?\d+(?:\.\d+)?)\s*$/.exec(part);
    if (!m) fail(`unexpected entry ${JSON.stringify(part)}`);
    out.push([m![1]!, Number(m![2])]);
  }
  return out;
}
