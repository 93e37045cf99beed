/**
 * OpenBeken's HTTP wire format, byte for byte (openbeken-http.md §1.1, reqs 2-4, 6, 7).
 *
 * Requests (HTTP_ProcessPacket): the method is recognised by the prefixes GET, PUT, POST, OPTIONS
 * (case-sensitive); anything else gets no reply at all. The URL starts "method + 2 chars" in (space
 * and slash assumed) and is cut at the first space, so an unencoded space drops the rest. Headers are
 * split on CR (each line must end CRLF); the body is whatever follows the blank line in the bytes
 * that were read. Arguments are read with OpenBeken's own `name=value` scanner, which decodes %XX and
 * `+` and stops at `&` or a space.
 *
 * Replies: `HTTP/1.1 <code> OK\n` (a bare LF, and the reason is always OK) then CRLF headers, no
 * Content-Length, `Connection: close`; the body ends when the socket closes.
 */

/** Bytes on the wire are handled as latin1 so every byte maps to one char and back. */
export const WIRE_ENCODING = 'latin1' as const;

export type ObkHttpMethod = 'GET' | 'PUT' | 'POST' | 'OPTIONS';
const METHODS: readonly ObkHttpMethod[] = ['GET', 'PUT', 'POST', 'OPTIONS'];

export interface ObkHttpRequest {
  method: ObkHttpMethod;
  /** The URL without its leading slash, query included, cut at the first space ('' for OPTIONS). */
  url: string;
  /** Header lines as received ("Name: value"), in order. */
  headers: string[];
  /** Everything after the blank line (empty when there is none). */
  body: string;
}

export type ObkParseResult =
  | { kind: 'request'; request: ObkHttpRequest }
  /** Not GET/PUT/POST/OPTIONS, or no space after the URL: OpenBeken closes without a byte. */
  | { kind: 'drop'; reason: string };

export function parseObkRequest(raw: string): ObkParseResult {
  const method = METHODS.find((m) => raw.startsWith(m));
  if (!method) return { kind: 'drop', reason: `unsupported method ${JSON.stringify(raw.slice(0, 7))}` };
  if (method === 'OPTIONS') return { kind: 'request', request: { method, url: '', headers: [], body: '' } };
  const rest = raw.slice(method.length + 2);
  const space = rest.indexOf(' ');
  if (space < 0) return { kind: 'drop', reason: 'invalid request (no space after the URL)' };
  const url = rest.slice(0, space);
  const afterUrl = rest.slice(space + 1);
  const headers: string[] = [];
  // The protocol token runs to the first CR; without one there are no headers and no body.
  const protocolEnd = afterUrl.indexOf('\r');
  if (protocolEnd < 0) return { kind: 'request', request: { method, url, headers, body: '' } };
  let p = protocolEnd + 2;
  let body = '';
  for (;;) {
    if (afterUrl[p] === '\r') {
      body = afterUrl.slice(p + 2);
      break;
    }
    const cr = afterUrl.indexOf('\r', p);
    if (cr < 0) break; // headers never ended: no body
    headers.push(afterUrl.slice(p, cr));
    p = cr + 2;
  }
  return { kind: 'request', request: { method, url, headers, body } };
}

/**
 * http_getRawArg: the value of `name` in `a=1&b=2` (exact, case-sensitive name, matched only at the
 * start of a segment), decoded, or undefined when absent. Callers apply OpenBeken's buffer limits.
 */
export function getRawArg(base: string, name: string): string | undefined {
  let i = 0;
  while (i < base.length) {
    if (base.startsWith(name, i)) {
      const after = i + name.length;
      if (after >= base.length) return '';
      if (base[after] === '=') return decodeArgValue(base, after + 1);
    }
    const amp = base.indexOf('&', i);
    if (amp < 0) return undefined;
    i = amp + 1;
  }
  return undefined;
}

/** http_getArg: like getRawArg on what follows the first `?` of a URL. */
export function getArg(url: string, name: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  return getRawArg(url.slice(q + 1), name);
}

/** http_copyCarg: decode up to `&`, space or the end; %XX (two hex digits) and `+` are decoded. */
function decodeArgValue(s: string, from: number): string {
  let out = '';
  for (let i = from; i < s.length; ) {
    const c = s[i]!;
    if (c === '&' || c === ' ' || c === '\0') break;
    if (c === '%' && isHex(s[i + 1]) && isHex(s[i + 2])) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 3;
    } else if (c === '+') {
      out += ' ';
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function isHex(c: string | undefined): boolean {
  return c !== undefined && /^[0-9a-fA-F]$/.test(c);
}

/** OpenBeken's MIME type strings. */
export const MIME = Object.freeze({ html: 'text/html', text: 'text/plain', json: 'application/json' });

/** http_setup: status line with a bare LF, then CRLF headers. */
export function replyHead(code: number, mime: string): string {
  return (
    `HTTP/1.1 ${code} OK\nContent-type: ${mime}\r\n` +
    'Access-Control-Allow-Origin: *\r\n' +
    'Access-Control-Allow-Headers: Origin, X-Requested-With, Content-Type, Accept\r\n' +
    'Connection: close\r\n\r\n'
  );
}

/** GET / (http_fn_empty_url): every line ends in a bare LF. */
export const REDIRECT_TO_INDEX = 'HTTP/1.1 302 OK\nLocation: /index\nConnection: close\n\n';

/** The Basic-auth refusal (http_basic_auth_run), with proper CRLFs. */
export const UNAUTHORIZED_REPLY =
  'HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n' +
  'WWW-Authenticate: Basic realm="OpenBeken HTTP Server"\r\n\r\n';

/**
 * The reply being written. OpenBeken builds it from `poststr` (any length) and `hprintf255` pieces;
 * the latter are formatted into a 255-byte buffer, so each printf piece keeps at most 254 chars.
 */
export class ReplyWriter {
  #out = '';

  /** poststr: raw text of any length. */
  post(text: string): this {
    this.#out += text;
    return this;
  }

  /** hprintf255: one formatted piece, truncated to 254 chars. */
  printf(text: string): this {
    this.#out += text.length > 254 ? text.slice(0, 254) : text;
    return this;
  }

  text(): string {
    return this.#out;
  }
}
