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
      throw new ProtocolError(`${what}: reply is not JSON: ${(e as Error).message}`, {
        phase: 'json',
        bytesSeen: new TextEncoder().encode(text.slice(0, 512)),
      });
    }
  }
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
