/**
 * Client for OpenBeken's HTTP API (openbeken-http.md §1) over raw TCP sockets: Node's http parser
 * rejects the bare-LF status line, so replies go through ObkReplyParser. OpenBeken serves one
 * request per connection and its listen backlog is one, so requests to one plug are serialised by a
 * per-plug lock, each on a fresh connection, with the whole request in one write (the server reads
 * only the first burst). Commands whose failure matters go through POST /api/cmnd: /cm always
 * answers 200.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { z } from 'zod';
import { RealClock, type Clock } from '../core/clock.ts';
import { DutError, PlugrigError, ProtocolError, TimeoutError, TransportError } from '../core/errors.ts';
import { rootLogger, type Logger } from '../core/log.ts';
import { ObkReplyParser, type ObkReply } from './obk-http-reply-parser.ts';
import { parseObkJson, parseRepeatedKeyObject } from './obk-json.ts';
import { redactCommand, scrubBytes, scrubText } from './redact.ts';

/** Opens one connection to the plug. The default is TCP; an in-process virtual plug may hand over a stream. */
export type ObkConnector = (signal: AbortSignal) => Promise<Duplex>;

export interface ObkHttpClientOptions {
  /** `http://host[:port]` of the plug. */
  url: string;
  /** Overrides TCP (e.g. an in-process virtual plug). The url still names the plug in errors. */
  connect?: ObkConnector;
  clock?: Clock;
  /** Per attempt: connect, send, and the whole reply up to the close. Default 5000 ms. */
  timeoutMs?: number;
  /** Extra attempts for requests that are safe to repeat. Default 2. */
  retries?: number;
  /** Wait before a retry, doubled each time. Default 200 ms. */
  retryDelayMs?: number;
  /** Web password (Basic auth, user admin), when one is set on the plug. */
  webPassword?: string;
  /** Values scrubbed from every message, log line and error (passwords this client may send). */
  secrets?: readonly string[];
  log?: Logger;
  slot?: number;
}

export interface ObkRequest {
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  contentType?: string;
  /** Safe to send twice (reads, and commands that set absolute values). */
  idempotent: boolean;
  /** For humans: what this request is, secrets already removed. */
  label: string;
}

export const ObkInfoSchema = z
  .object({
    uptime_s: z.number(),
    build: z.string(),
    ip: z.string(),
    mac: z.string(),
    flags: z.string(),
    mqtthost: z.string(),
    mqtttopic: z.string(),
    chipset: z.string(),
    webapp: z.string(),
    shortName: z.string(),
    startcmd: z.string(),
    supportsSSDP: z.number(),
    supportsClientDeviceDB: z.boolean(),
  })
  .passthrough();
export type ObkInfo = z.infer<typeof ObkInfoSchema>;

export const ObkPinsSchema = z
  .object({
    rolenames: z.array(z.string()),
    roles: z.array(z.number().int()),
    channels: z.array(z.number().int()),
    channels2: z.array(z.number().int()).optional(),
    states: z.array(z.number()),
  })
  .passthrough();
export type ObkPins = z.infer<typeof ObkPinsSchema>;

/** POST /api/cmnd reply: `{"success":200, "msg":"OK", "res":...}` or `{"error":4xx/501, ...}`. */
export interface ObkCommandReply {
  code: number;
  msg: string;
  res: unknown;
}

export interface ObkEnergy {
  power: number;
  apparentPower: number;
  reactivePower: number;
  factor: number;
  voltage: number;
  current: number;
  consumptionTotalWh: number;
}

const locks = new Map<string, Promise<void>>();

/** Run fn while holding the plug's lock: one connection at a time per plug, process-wide. */
async function withPlugLock<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = locks.get(key) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const tail = prev.then(() => mine);
  locks.set(key, tail);
  await prev;
  try {
    return await fn();
  } finally {
    release();
    if (locks.get(key) === tail) locks.delete(key);
  }
}

export class ObkHttpClient {
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly #o: ObkHttpClientOptions;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #secrets: string[];

  constructor(o: ObkHttpClientOptions) {
    let u: URL;
    try {
      u = new URL(o.url);
    } catch {
      throw new DutError(`plug URL ${JSON.stringify(o.url)} is not a URL (expected http://host[:port])`, { step: 'plug-url' });
    }
    if (u.protocol !== 'http:') throw new DutError(`plug URL ${o.url}: only http:// is served by OpenBeken`, { step: 'plug-url' });
    this.host = u.hostname.replace(/^\[|\]$/g, '');
    this.port = u.port ? Number(u.port) : 80;
    this.url = `http://${u.host}`;
    this.#o = o;
    this.#clock = o.clock ?? new RealClock();
    this.#log = (o.log ?? rootLogger()).child({ component: 'obk-http', plug: this.url });
    this.#secrets = [...(o.secrets ?? []), ...(o.webPassword ? [o.webPassword] : [])].filter((s) => s.length > 0);
  }

  /** The same plug with other timing (e.g. one long-waiting diagnostic request without retries). */
  withTiming(o: Pick<ObkHttpClientOptions, 'timeoutMs' | 'retries'>): ObkHttpClient {
    return new ObkHttpClient({ ...this.#o, clock: this.#clock, ...o });
  }

  /** Per-attempt timeout, ms. */
  get timeoutMs(): number {
    return this.#o.timeoutMs ?? 5000;
  }

  /** `/cm?cmnd=`: Tasmota-style; always HTTP 200, so a failure is invisible here. Returns the body text. */
  async cm(command: string, o: { idempotent?: boolean } = {}): Promise<{ text: string; json: unknown }> {
    const r = await this.request({
      method: 'GET',
      path: `/cm?cmnd=${encodeURIComponent(command)}`,
      idempotent: o.idempotent ?? false,
      label: `GET /cm ${JSON.stringify(this.#redactCmd(command))}`,
    });
    const text = bodyText(r);
    this.#expectStatus(r, 200, `GET /cm ${JSON.stringify(this.#redactCmd(command))}`);
    return { text, json: text.trim() === '' ? undefined : parseObkJson(text, `/cm ${this.#redactCmd(command)}`) };
  }

  /**
   * `POST /api/cmnd` with the raw command as the body (not trimmed by OpenBeken: no newline added).
   * A non-200 code throws a DutError naming the command and OpenBeken's message, unless allowFailure.
   */
  async cmnd(command: string, o: { idempotent?: boolean; allowFailure?: boolean } = {}): Promise<ObkCommandReply> {
    const label = `POST /api/cmnd ${JSON.stringify(this.#redactCmd(command))}`;
    const r = await this.request({ method: 'POST', path: '/api/cmnd', body: command, contentType: 'text/plain', idempotent: o.idempotent ?? false, label });
    const json = this.#json(r, label);
    const rec = (json && typeof json === 'object' ? json : {}) as Record<string, unknown>;
    const code = typeof rec.success === 'number' ? rec.success : typeof rec.error === 'number' ? rec.error : r.status;
    const reply: ObkCommandReply = { code, msg: typeof rec.msg === 'string' ? rec.msg : '', res: rec.res };
    if (code !== 200 && !o.allowFailure) {
      throw new DutError(`OpenBeken refused ${JSON.stringify(this.#redactCmd(command))}: ${code} ${reply.msg || '(no message)'}`, {
        ...this.#ctx(label),
        status: r.status,
        code,
        msg: reply.msg,
        bytesSeen: this.#scrub(r.body),
      });
    }
    return reply;
  }

  async info(): Promise<ObkInfo> {
    const r = await this.request({ method: 'GET', path: '/api/info', idempotent: true, label: 'GET /api/info' });
    return this.#validated(r, 'GET /api/info', ObkInfoSchema);
  }

  async pins(): Promise<ObkPins> {
    const r = await this.request({ method: 'GET', path: '/api/pins', idempotent: true, label: 'GET /api/pins' });
    return this.#validated(r, 'GET /api/pins', ObkPinsSchema);
  }

  /** `POST /api/pins`: roles and channels by pin index, applied at once; deviceFlag 0..10 sets that one flag. */
  async setPins(p: { roles: number[]; channels: number[]; deviceFlag?: number; deviceCommand?: string }): Promise<void> {
    const label = 'POST /api/pins';
    const r = await this.request({ method: 'POST', path: '/api/pins', body: JSON.stringify(p), contentType: 'application/json', idempotent: true, label });
    const json = this.#json(r, label) as Record<string, unknown>;
    if (r.status !== 200 || json?.success !== 200) {
      throw new DutError(`OpenBeken refused the pin settings: ${r.status} ${String(json?.msg ?? '').trim()}`, { ...this.#ctx(label), status: r.status, bytesSeen: this.#scrub(r.body) });
    }
  }

  /** `GET /api/channels`: one [channel, value] per pin with a role, in pin order; channels repeat. */
  async channels(): Promise<Array<[string, number]>> {
    const r = await this.request({ method: 'GET', path: '/api/channels', idempotent: true, label: 'GET /api/channels' });
    this.#expectStatus(r, 200, 'GET /api/channels');
    return parseRepeatedKeyObject(bodyText(r), 'GET /api/channels');
  }

  /** `STATUS` / `STATUS n` over /cm (reads only): the parsed Tasmota-style object. */
  async status(n?: number): Promise<Record<string, unknown>> {
    const cmd = n === undefined ? 'STATUS' : `STATUS ${n}`;
    const { json } = await this.cm(cmd, { idempotent: true });
    if (!json || typeof json !== 'object') throw new ProtocolError(`${cmd}: expected a JSON object`, this.#ctx(`GET /cm "${cmd}"`));
    return json as Record<string, unknown>;
  }

  /** The ENERGY block of STATUS 8, or undefined while no metering driver runs. */
  async energy(): Promise<ObkEnergy | undefined> {
    const s = (await this.status(8)).StatusSNS as Record<string, unknown> | undefined;
    const e = s?.ENERGY as Record<string, unknown> | undefined;
    if (!e) return undefined;
    const num = (k: string): number => {
      const v = e[k];
      if (typeof v !== 'number') {
        const why = v === undefined ? `has no field "StatusSNS.ENERGY.${k}"` : `has field "StatusSNS.ENERGY.${k}" as ${jsonType(v)}, not a number`;
        throw new DutError(`GET /cm "STATUS 8": the plug's reply ${why}`, { ...this.#ctx('GET /cm "STATUS 8"'), replyShape: true });
      }
      return v;
    };
    return {
      power: num('Power'),
      apparentPower: num('ApparentPower'),
      reactivePower: num('ReactivePower'),
      factor: num('Factor'),
      voltage: num('Voltage'),
      current: num('Current'),
      consumptionTotalWh: num('ConsumptionTotal'),
    };
  }

  /**
   * `/cfg_wifi_set`: stores the credentials; OpenBeken reboots 3 s later only if something changed.
   * Without webPassword the plug's web password is cleared (its side effect), so pass it to keep one.
   */
  async wifiSet(w: { ssid: string; pass: string; ssid2?: string; pass2?: string; webPassword?: string }): Promise<void> {
    const q = new URLSearchParams({ ssid: w.ssid, pass: w.pass });
    if (w.ssid2 !== undefined) q.set('ssid2', w.ssid2);
    if (w.pass2 !== undefined) q.set('pass2', w.pass2);
    if (w.webPassword !== undefined) {
      q.set('web_admin_password_enabled', '1');
      q.set('web_admin_password', w.webPassword);
    }
    const secrets = [w.pass, w.pass2 ?? '', w.webPassword ?? ''];
    this.#secrets.push(...secrets.filter((s) => s.length > 0 && !this.#secrets.includes(s)));
    const r = await this.request({ method: 'GET', path: `/cfg_wifi_set?${q.toString()}`, idempotent: true, label: 'GET /cfg_wifi_set?<redacted>' });
    this.#expectStatus(r, 200, 'GET /cfg_wifi_set?<redacted>');
  }

  /** `restart` through /api/cmnd: OpenBeken reboots after a 3-tick countdown (2–3 s). */
  async restart(): Promise<void> {
    await this.cmnd('restart');
  }

  /**
   * Poll /api/info until the plug answers and `until` (if given) accepts the reply; `until` returns
   * true or the reason it is not there yet ("still up for 40 s").
   */
  async waitOnline(o: { timeoutMs: number; pollMs?: number; until?: (info: ObkInfo) => true | string; what?: string }): Promise<ObkInfo> {
    const deadline = this.#clock.now() + o.timeoutMs;
    const probe = new ObkHttpClient({ ...this.#o, clock: this.#clock, retries: 0, timeoutMs: Math.min(this.#o.timeoutMs ?? 5000, 2000) });
    let last: unknown;
    for (;;) {
      try {
        const info = await probe.info();
        const verdict = o.until ? o.until(info) : true;
        if (verdict === true) return info;
        last = new DutError(verdict, this.#ctx('GET /api/info'));
      } catch (e) {
        if (!(e instanceof PlugrigError)) throw e;
        // It answered, well-formed, with fields missing or of the wrong type: waiting changes nothing.
        if (e.context.replyShape === true) throw e;
        last = e;
      }
      if (this.#clock.now() >= deadline) break;
      await this.#clock.sleep(Math.min(o.pollMs ?? 500, Math.max(0, deadline - this.#clock.now())));
    }
    const why = last instanceof Error ? last.message : 'no answer';
    throw new TimeoutError(
      `plug ${this.url} not ${o.what ?? 'online'} within ${(o.timeoutMs / 1000).toFixed(1)} s: ${why}`,
      {
        ...this.#ctx('GET /api/info'),
        ...(last instanceof PlugrigError && last.context.bytesSeen ? { bytesSeen: last.context.bytesSeen } : {}),
      },
      // The last attempt's own error says what kind of failure it was (refused, timed out, garbled).
      last instanceof Error ? { cause: last } : undefined,
    );
  }

  /** One request with bounded retries, under the plug's lock. */
  async request(req: ObkRequest): Promise<ObkReply> {
    const retries = this.#o.retries ?? 2;
    return withPlugLock(`${this.host}:${this.port}`, async () => {
      let delay = this.#o.retryDelayMs ?? 200;
      for (let attempt = 0; ; attempt++) {
        const t0 = this.#clock.now();
        try {
          const reply = await this.#once(req);
          this.#log.debug({ request: req.label, status: reply.status, ms: Math.round(this.#clock.now() - t0), attempt }, 'reply');
          if (reply.status === 401) {
            throw new DutError(`${this.url} asks for a web password (401): ${this.#o.webPassword ? 'the configured one was refused' : 'none configured'}`, {
              ...this.#ctx(req.label),
              status: 401,
            });
          }
          return reply;
        } catch (e) {
          const retryable = e instanceof AttemptError && (!e.sent || req.idempotent) && attempt < retries;
          const err = e instanceof AttemptError ? e.error : e;
          if (!retryable) throw err;
          this.#log.warn({ request: req.label, attempt, err: (err as Error).message }, 'request failed, retrying');
          await this.#clock.sleep(delay);
          delay *= 2;
        }
      }
    });
  }

  async #once(req: ObkRequest): Promise<ObkReply> {
    const ctrl = new AbortController();
    const timeoutMs = this.#o.timeoutMs ?? 5000;
    let sent = false;
    const parser = new ObkReplyParser();
    // A socket lives on wall time whatever the clock: a real timer, cleared when the reply is in
    // (a cancelled RealClock timer would keep the process alive until it was due). On a virtual
    // clock the plug's delays are model time, so the same bound runs on it too: a plug that answers
    // 10 s late in the model has timed out, however fast the wall clock got there.
    const timer = setTimeout(() => ctrl.abort(), timeoutMs);
    const cancelModelTimer = this.#clock.kind === 'virtual' ? this.#clock.at(this.#clock.now() + timeoutMs, () => ctrl.abort()) : undefined;
    let stream: Duplex | undefined;
    try {
      try {
        stream = await (this.#o.connect ?? ((s) => tcpConnect(this.host, this.port, s)))(ctrl.signal);
      } catch (e) {
        if (ctrl.signal.aborted) throw new AttemptError(false, this.#timeout(req, timeoutMs, 'connecting', parser));
        const errno = (e as NodeJS.ErrnoException).code;
        throw new AttemptError(false, new TransportError(`cannot connect to ${this.url} for ${req.label}: ${(e as Error).message}`, { ...this.#ctx(req.label), phase: 'connect', ...(errno ? { errno } : {}) }, { cause: e }));
      }
      return await new Promise<ObkReply>((resolve, reject) => {
        const s = stream!;
        let done = false;
        const finish = (f: () => void): void => {
          if (done) return;
          done = true;
          ctrl.signal.removeEventListener('abort', onAbort);
          f();
        };
        const onAbort = (): void => finish(() => reject(new AttemptError(sent, this.#timeout(req, timeoutMs, parser.headersComplete ? 'reading the body' : 'waiting for the reply', parser))));
        ctrl.signal.addEventListener('abort', onAbort, { once: true });
        s.on('data', (chunk: Buffer) => {
          try {
            parser.push(new Uint8Array(chunk));
          } catch (e) {
            finish(() => reject(new AttemptError(true, this.#protocol(req, e))));
          }
        });
        s.on('error', (e: NodeJS.ErrnoException) =>
          finish(() =>
            // lwIP may reset instead of closing; after complete headers that is the end of the body.
            e.code === 'ECONNRESET' && parser.headersComplete
              ? resolve(parser.end())
              : reject(
              new AttemptError(
                sent,
                new DutError(`${req.label} to ${this.url}: connection failed: ${e.message}`, { ...this.#ctx(req.label), phase: sent ? 'reply' : 'send', bytesSeen: this.#scrub(parser.bytesSeen()) }, { cause: e }),
              ),
            ),
          ),
        );
        s.on('end', () => {
          finish(() => {
            try {
              resolve(parser.end());
            } catch (e) {
              // A reply cut short (no status line / headers) is worth another try when the request is idempotent.
              reject(new AttemptError(sent, this.#protocol(req, e)));
            }
          });
        });
        s.on('close', () => finish(() => (parser.headersComplete ? resolve(parser.end()) : reject(new AttemptError(sent, this.#protocol(req, safeEnd(parser)))))));
        s.write(buildRequest(req, this.host, this.#o.webPassword));
        // The request is on its way once written; a failure after this point may follow its execution.
        sent = true;
      });
    } finally {
      clearTimeout(timer);
      cancelModelTimer?.();
      stream?.destroy();
    }
  }

  #timeout(req: ObkRequest, ms: number, what: string, parser: ObkReplyParser): TimeoutError {
    const seen = parser.bytesSeen();
    const body = parser.headersComplete ? ` after the headers and ${parser.bodyLength()} body bytes` : seen.length > 0 ? ` after ${seen.length} bytes` : '';
    return new TimeoutError(`${req.label} to ${this.url}: no complete reply within ${ms} ms (${what}${body})`, {
      ...this.#ctx(req.label),
      phase: 'reply',
      waiting: parser.headersComplete ? 'body' : seen.length > 0 ? 'headers' : 'reply',
      timeoutMs: ms,
      bytesSeen: this.#scrub(seen),
    });
  }

  #protocol(req: ObkRequest, e: unknown): PlugrigError {
    if (e instanceof ProtocolError) {
      return new ProtocolError(`${req.label} to ${this.url}: ${e.message}`, { ...e.context, ...this.#ctx(req.label), bytesSeen: this.#scrub(e.context.bytesSeen ?? new Uint8Array()) });
    }
    return new ProtocolError(`${req.label} to ${this.url}: ${(e as Error).message}`, this.#ctx(req.label), { cause: e });
  }

  #ctx(label: string): Record<string, unknown> & { command: string } {
    return { ...(this.#o.slot !== undefined ? { slot: this.#o.slot } : {}), plug: this.url, command: scrubText(label, this.#secrets) };
  }

  #redactCmd(command: string): string {
    return redactCommand(command, this.#secrets);
  }

  #scrub(bytes: Uint8Array): Uint8Array {
    return scrubBytes(bytes, this.#secrets);
  }

  #expectStatus(r: ObkReply, status: number, label: string): void {
    if (r.status !== status) throw new DutError(`${label}: HTTP ${r.status}, expected ${status}`, { ...this.#ctx(label), status: r.status, bytesSeen: this.#scrub(r.body) });
  }

  #json(r: ObkReply, label: string): unknown {
    const text = bodyText(r);
    if (/^\s*</.test(text)) {
      // Safe mode: /api/* is not registered and the server answers 200 with an HTML "Not found." page.
      throw new DutError(`${label}: the plug answered an HTML page${/Not found\./.test(text) ? ' "Not found." (is it in safe mode?)' : ''}`, {
        ...this.#ctx(label),
        status: r.status,
        bytesSeen: this.#scrub(r.body.subarray(0, 256)),
      });
    }
    try {
      return parseObkJson(text, `${label} to ${this.url}`);
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      throw new ProtocolError(e.message, { ...e.context, ...this.#ctx(label), bytesSeen: this.#scrub(e.context.bytesSeen ?? new Uint8Array()) });
    }
  }

  #validated<T>(r: ObkReply, label: string, schema: z.ZodType<T>): T {
    this.#expectStatus(r, 200, label);
    const parsed = schema.safeParse(this.#json(r, label));
    if (!parsed.success) {
      // Well-formed JSON of the wrong shape: the plug contradicts its documented API (a firmware that
      // differs), not the line; name each field the way a user would look for it.
      const why = parsed.error.issues.map(describeIssue).join('; ');
      throw new DutError(`${label}: the plug's reply ${why}`, { ...this.#ctx(label), replyShape: true, bytesSeen: this.#scrub(r.body.subarray(0, 512)) });
    }
    return parsed.data;
  }
}

/** One schema issue in a user's words: `has no field "mac"`, `has field "roles" as a string, not an array`. */
function describeIssue(i: z.ZodIssue): string {
  const field = i.path.length ? `"${i.path.join('.')}"` : '(the whole reply)';
  if (i.code === 'invalid_type') return i.received === 'undefined' ? `has no field ${field}` : `has field ${field} as ${article(i.received)}, not ${article(i.expected)}`;
  return `has field ${field} ${i.message.charAt(0).toLowerCase()}${i.message.slice(1)}`;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function jsonType(v: unknown): string {
  return article(v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
}

/** Carries whether the request had left before the failure (then only idempotent requests are retried). */
class AttemptError extends Error {
  constructor(
    readonly sent: boolean,
    readonly error: unknown,
  ) {
    super('attempt failed');
  }
}

function safeEnd(p: ObkReplyParser): unknown {
  try {
    p.end();
    return new Error('connection closed early');
  } catch (e) {
    return e;
  }
}

export function bodyText(r: ObkReply): string {
  return Buffer.from(r.body).toString('utf8');
}

/** The whole request as one buffer (OpenBeken reads the headers and body from its first recv burst). */
export function buildRequest(req: Pick<ObkRequest, 'method' | 'path' | 'body' | 'contentType'>, host: string, webPassword?: string): Buffer {
  const body = req.body === undefined ? undefined : Buffer.from(req.body, 'utf8');
  const lines = [`${req.method} ${req.path} HTTP/1.1`, `Host: ${host}`, 'Connection: close'];
  if (webPassword) lines.push(`Authorization: Basic ${Buffer.from(`admin:${webPassword}`).toString('base64')}`);
  if (body) lines.push(`Content-Type: ${req.contentType ?? 'text/plain'}`, `Content-Length: ${body.length}`);
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1');
  return body ? Buffer.concat([head, body]) : head;
}

function tcpConnect(host: string, port: number, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port });
    s.setNoDelay(true);
    const onAbort = (): void => {
      s.destroy();
      reject(new Error('aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    s.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(s);
    });
    s.once('error', (e) => {
      signal.removeEventListener('abort', onAbort);
      reject(e);
    });
  });
}

