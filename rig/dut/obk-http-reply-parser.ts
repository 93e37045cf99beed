/**
 * Reply parser for OpenBeken's HTTP server (openbeken-http.md §1.1), bytes in, {status, headers,
 * body} out. OpenBeken ends the status line with a bare LF (the other headers with CRLF; the `GET /`
 * redirect uses LF everywhere), sends no Content-Length and no chunking, and the body ends when the
 * server closes. Node's llhttp rejects the bare LF (HPE_CR_EXPECTED), hence this parser.
 */
import { ProtocolError } from '../core/errors.ts';

export interface ObkReply {
  status: number;
  reason: string;
  /** Header names lower-cased; a repeated header keeps the last value. */
  headers: Record<string, string>;
  body: Uint8Array;
}

const LF = 0x0a;
const CR = 0x0d;
/** A status line or header longer than this is not OpenBeken talking. */
const MAX_LINE = 4096;
const STATUS_LINE = /^HTTP\/1\.[01] (-?\d{1,4})(?: (.*))?$/;

/** Feed bytes as they arrive with push(); end() when the socket closed returns the reply. */
export class ObkReplyParser {
  #head: number[] = [];
  #lines: string[] = [];
  #bodyChunks: Uint8Array[] = [];
  #inBody = false;
  #status: { code: number; reason: string } | undefined;
  #seen: Uint8Array[] = [];
  #seenLength = 0;

  /** Every byte received so far (for error context). */
  bytesSeen(): Uint8Array {
    return concat(this.#seen, this.#seenLength);
  }

  get headersComplete(): boolean {
    return this.#inBody;
  }

  /** Body bytes received so far. */
  bodyLength(): number {
    return this.#bodyChunks.reduce((n, c) => n + c.length, 0);
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#seen.push(chunk);
    this.#seenLength += chunk.length;
    let i = 0;
    while (!this.#inBody && i < chunk.length) {
      const b = chunk[i++]!;
      if (b !== LF) {
        this.#head.push(b);
        if (this.#head.length > MAX_LINE) throw this.#error(`header line longer than ${MAX_LINE} bytes`);
        continue;
      }
      if (this.#head[this.#head.length - 1] === CR) this.#head.pop();
      const line = Buffer.from(this.#head).toString('latin1');
      this.#head = [];
      this.#line(line);
    }
    if (this.#inBody && i < chunk.length) this.#bodyChunks.push(chunk.slice(i));
  }

  /** The server closed the connection: the reply is complete. */
  end(): ObkReply {
    if (!this.#status) throw this.#error(this.#seenLength === 0 ? 'connection closed without a reply' : 'connection closed inside the status line');
    if (!this.#inBody) throw this.#error('connection closed before the end of the headers');
    const headers: Record<string, string> = {};
    for (const l of this.#lines) {
      const c = l.indexOf(':');
      headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
    }
    const body = concat(this.#bodyChunks, this.#bodyChunks.reduce((n, c) => n + c.length, 0));
    return { status: this.#status.code, reason: this.#status.reason, headers, body };
  }

  #line(line: string): void {
    if (!this.#status) {
      const m = STATUS_LINE.exec(line);
      if (!m) throw this.#error(`not an HTTP status line: ${JSON.stringify(line.slice(0, 80))}`);
      const code = Number(m[1]);
      // http_rest_error can emit "HTTP/1.1 -1 OK" (bad /api/flash URL) or -20 (LFS size mismatch).
      if (code < 0) throw this.#error(`negative HTTP status ${code} (OpenBeken REST error)`, { status: code });
      if (code < 100 || code > 599) throw this.#error(`HTTP status ${code} out of range`, { status: code });
      this.#status = { code, reason: m[2] ?? '' };
      return;
    }
    if (line === '') {
      this.#inBody = true;
      return;
    }
    if (line.indexOf(':') <= 0) throw this.#error(`malformed header line: ${JSON.stringify(line.slice(0, 80))}`);
    this.#lines.push(line);
  }

  #error(message: string, extra: Record<string, unknown> = {}): ProtocolError {
    return new ProtocolError(`OpenBeken HTTP reply: ${message}`, { phase: 'http-reply', bytesSeen: this.bytesSeen(), ...extra });
  }
}

/** Parse a whole reply (the bytes up to the server's close). */
export function parseObkReply(bytes: Uint8Array): ObkReply {
  const p = new ObkReplyParser();
  p.push(bytes);
  return p.end();
}

function concat(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}
