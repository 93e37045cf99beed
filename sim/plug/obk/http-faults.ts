import { mulberry32 } from '../../../rig/core/prng.ts';
import { PLUG_HTTP_FAULT_KINDS, PLUG_REPLY_FIELD_FAULT_KINDS } from '../../../rig/jig/fault-spec.ts';

/**
 * Transport-level faults of a virtual OpenBeken plug's HTTP server (issue 10): what a flaky or
 * broken unit does to the bytes on the wire, whatever the request was. The firmware's handler still
 * answers correctly; the fault sits between it and the socket.
 *
 * - `timeout`: every reply leaves `delayMs` late (model time), longer than a client waits;
 * - `stall-mid-body`: the status line, the headers and part of the body go out, then nothing more
 *   (the connection stays open);
 * - `refuse-during-boot`: after each boot nothing listens on the port for `refuseMs` (the SYN is
 *   refused), then the server comes up;
 * - `truncated-json`: a JSON reply is cut short and the connection closed (OpenBeken sends no
 *   Content-Length, so a client only notices from the JSON);
 * - `malformed-json`: a JSON reply arrives whole but is not JSON (its first key's opening quote lost);
 * - `negative-status`: the status line carries a negative code, `HTTP/1.1 -1 OK`, as OpenBeken's
 *   http_rest_error emits for some REST errors (openbeken-http.md §1.1); no client accepts it.
 * - `missing-field` / `wrong-type`: a JSON reply to a request under `path` arrives whole and well
 *   formed, but without its `field` (dotted path into the object), or with that field of another
 *   JSON type (a string becomes a number, anything else its JSON text): a firmware build whose
 *   replies differ from the documented ones.
 *
 * `afterRequests` lets the first requests through (counted over the plug's life, across reboots), so a
 * fault can start in a later suite; `rate` hits a seeded share of the requests after that.
 */
export const OBK_HTTP_FAULT_KINDS = [...PLUG_HTTP_FAULT_KINDS, ...PLUG_REPLY_FIELD_FAULT_KINDS] as const;
export type ObkHttpFaultKind = (typeof OBK_HTTP_FAULT_KINDS)[number];

export interface ObkHttpFaultSpec {
  kind: ObkHttpFaultKind;
  /** Share of the requests (after `afterRequests`) that are hit, seeded. Default 1. */
  rate?: number;
  /** Requests answered normally before the fault starts (not for refuse-during-boot). Default 0. */
  afterRequests?: number;
  /** timeout: how late each reply leaves, ms of model time. Default 10 000. */
  delayMs?: number;
  /** refuse-during-boot: how long after each boot the port refuses connections, ms. Default 60 000. */
  refuseMs?: number;
  seed?: number;
  /** missing-field / wrong-type: request path prefix the fault hits (default: every request). */
  path?: string;
  /** missing-field / wrong-type: dotted field of the reply object. */
  field?: string;
}

export const DEFAULT_FAULT_DELAY_MS = 10_000;
export const DEFAULT_REFUSE_MS = 60_000;

/** What the server does with one reply. */
export type ReplyPlan =
  | { kind: 'send'; bytes: string }
  | { kind: 'send-late'; bytes: string; delayMs: number }
  /** Write these bytes and never close (the socket is dropped at power loss). */
  | { kind: 'send-and-hang'; bytes: string };

const HEAD_END = '\r\n\r\n';

/** The plug's HTTP faults; one instance lives as long as the plug (its request count survives reboots). */
export class ObkHttpFaults {
  readonly spec: Readonly<ObkHttpFaultSpec>;
  readonly #rnd: () => number;
  #requests = 0;

  constructor(spec: ObkHttpFaultSpec) {
    this.spec = { ...spec };
    this.#rnd = mulberry32((spec.seed ?? 1) * 2654435761);
  }

  /** How long after a boot the port refuses connections (0: it listens at once). */
  refuseAfterBootMs(): number {
    return this.spec.kind === 'refuse-during-boot' ? (this.spec.refuseMs ?? DEFAULT_REFUSE_MS) : 0;
  }

  /** Decide what happens to this reply (`reply` is the full bytes the firmware would send). */
  planReply(reply: string, request = ''): ReplyPlan {
    this.#requests++;
    const s = this.spec;
    if (s.kind === 'refuse-during-boot') return { kind: 'send', bytes: reply };
    // Field faults hit the replies to one request path (the request line's target starts with it).
    if ((s.kind === 'missing-field' || s.kind === 'wrong-type') && s.path !== undefined && !(/^\S+ (\S+)/.exec(request)?.[1] ?? '').startsWith(s.path)) return { kind: 'send', bytes: reply };
    if (this.#requests <= (s.afterRequests ?? 0)) return { kind: 'send', bytes: reply };
    if ((s.rate ?? 1) < 1 && this.#rnd() >= (s.rate ?? 1)) return { kind: 'send', bytes: reply };
    const headEnd = reply.indexOf(HEAD_END);
    const head = headEnd < 0 ? reply : reply.slice(0, headEnd + HEAD_END.length);
    const body = headEnd < 0 ? '' : reply.slice(headEnd + HEAD_END.length);
    const json = /^Content-type: application\/json\r$/im.test(head);
    switch (s.kind) {
      case 'timeout':
        return { kind: 'send-late', bytes: reply, delayMs: s.delayMs ?? DEFAULT_FAULT_DELAY_MS };
      case 'stall-mid-body':
        return { kind: 'send-and-hang', bytes: head + body.slice(0, Math.floor(body.length / 2)) };
      case 'truncated-json':
        return json && body.length > 1 ? { kind: 'send', bytes: head + body.slice(0, Math.max(1, Math.floor(body.length / 2))) } : { kind: 'send', bytes: reply };
      case 'malformed-json': {
        const q = body.indexOf('"');
        return json && q >= 0 ? { kind: 'send', bytes: head + body.slice(0, q) + body.slice(q + 1) } : { kind: 'send', bytes: reply };
      }
      case 'negative-status':
        return { kind: 'send', bytes: reply.replace(/^HTTP\/1\.1 \d+ /, 'HTTP/1.1 -1 ') };
      case 'missing-field':
      case 'wrong-type': {
        const changed = json ? withField(body, s.field ?? '', s.kind) : undefined;
        return { kind: 'send', bytes: changed === undefined ? reply : head + changed };
      }
    }
  }
}

/** The JSON body with `field` (dotted) removed or of another type; undefined when the body has no such field. */
function withField(body: string, field: string, kind: 'missing-field' | 'wrong-type'): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return undefined;
  }
  const keys = field.split('.');
  let at: unknown = doc;
  for (const k of keys.slice(0, -1)) at = at !== null && typeof at === 'object' ? (at as Record<string, unknown>)[k] : undefined;
  const last = keys.at(-1)!;
  if (at === null || typeof at !== 'object' || !(last in at)) return undefined;
  const obj = at as Record<string, unknown>;
  if (kind === 'missing-field') delete obj[last];
  else obj[last] = typeof obj[last] === 'string' ? 12345 : JSON.stringify(obj[last]);
  return JSON.stringify(doc);
}
