import t from 'tap';
import { createServer, type Server, type Socket } from 'node:net';
import { get as httpGet } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { ObkReplyParser, parseObkReply, type ObkReply } from '../rig/dut/obk-http-reply-parser.ts';
import { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import { parseObkJson, parseRepeatedKeyObject } from '../rig/dut/obk-json.ts';
import { redactCommand, redactPath } from '../rig/dut/redact.ts';
import { DutError, PlugrigError, ProtocolError, TimeoutError, TransportError } from '../rig/core/errors.ts';
import * as T from './fixtures/obk-http-traces.ts';

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

function feedBytewise(bytes: Uint8Array): ObkReply {
  const p = new ObkReplyParser();
  for (const b of bytes) p.push(Uint8Array.of(b));
  return p.end();
}

const JSON_HEADERS = {
  'content-type': 'application/json',
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'Origin, X-Requested-With, Content-Type, Accept',
  connection: 'close',
};

t.test('parser: every recorded trace, one byte at a time', async (t) => {
  const cases: Array<[string, Uint8Array, number, string]> = [
    ['/api/info', T.API_INFO, 200, T.API_INFO_BODY],
    ['/api/pins', T.API_PINS, 200, T.API_PINS_BODY],
    ['/api/channels', T.API_CHANNELS, 200, T.API_CHANNELS_BODY],
    ['/api/cmnd POWER ON', T.CMND_POWER_ON, 200, '{"success":200, "msg":"OK", "res":{"POWER":"ON"}}'],
    ['/api/cmnd unknown', T.CMND_UNKNOWN, 501, '{"error":501, "msg":"Unknown command", "res":{}}'],
    ['/api/cmnd calibration without pulses', T.CMND_CAL_NO_PULSES, 400, '{"error":400, "msg":"Command found but returned error", "res":{}}'],
    ['/cm STATUS 8', T.CM_STATUS_8, 200, T.STATUS_SNS_BODY],
    ['/cm GetChannel 1', T.CM_GETCHANNEL_1, 200, '1'],
    ['/cm empty cmnd', T.CM_EMPTY, 200, ''],
  ];
  for (const [name, trace, status, body] of cases) {
    const r = feedBytewise(trace);
    t.equal(r.status, status, `${name}: status`);
    t.equal(r.reason, 'OK', `${name}: reason phrase is always OK`);
    t.same(r.headers, JSON_HEADERS, `${name}: headers (Content-type spelled OpenBeken's way, lower-cased here)`);
    t.equal(text(r.body), body, `${name}: body up to the close, no Content-Length`);
    t.same(parseObkReply(trace), r, `${name}: one chunk gives the same result`);
  }
});

t.test('parser: the status line ends in a bare LF, other headers in CRLF', async (t) => {
  const trace = text(T.API_INFO);
  t.ok(trace.startsWith('HTTP/1.1 200 OK\nContent-type: application/json\r\n'), 'trace has the bare LF');
  const r = feedBytewise(T.ROOT_REDIRECT);
  t.equal(r.status, 302, 'GET / redirect with LF on every line');
  t.same(r.headers, { location: '/index', connection: 'close' });
  t.equal(r.body.length, 0);
  const u = feedBytewise(T.UNAUTHORIZED);
  t.equal(u.status, 401, 'proper CRLF reply parses too');
  t.equal(u.reason, 'Unauthorized');
  t.equal(u.headers['www-authenticate'], 'Basic realm="OpenBeken HTTP Server"');
  const html = feedBytewise(T.NOT_FOUND_PAGE);
  t.equal(html.status, 200, 'unknown path is HTTP 200');
  t.match(text(html.body), /Not found\./);
  t.equal(feedBytewise(T.OPTIONS_REPLY).body.length, 0, 'OPTIONS: headers only');
});

t.test('parser: negative status is a typed protocol error with the bytes seen', async (t) => {
  const p = new ObkReplyParser();
  let err: unknown;
  try {
    for (const b of T.NEGATIVE_STATUS) p.push(Uint8Array.of(b));
  } catch (e) {
    err = e;
  }
  t.type(err, ProtocolError);
  t.equal((err as ProtocolError).context.status, -1);
  t.match((err as Error).message, /negative HTTP status -1/);
  t.equal(text((err as ProtocolError).context.bytesSeen!), 'HTTP/1.1 -1 OK\n', 'raised as soon as the status line is complete');
});

t.test('parser: truncated and foreign replies', async (t) => {
  t.throws(() => new ObkReplyParser().end(), /closed without a reply/);
  t.throws(() => parseObkReply(T.API_INFO.subarray(0, 10)), /inside the status line/);
  t.throws(() => parseObkReply(T.API_INFO.subarray(0, 40)), /before the end of the headers/);
  t.throws(() => parseObkReply(new TextEncoder().encode('SSH-2.0-OpenSSH\r\n')), /not an HTTP status line/);
  t.throws(() => parseObkReply(new TextEncoder().encode('HTTP/1.1 200 OK\nbogus\r\n\r\n')), /malformed header line/);
  t.throws(() => parseObkReply(new TextEncoder().encode('HTTP/1.1 999 OK\n\n')), /out of range/);
  const long = new ObkReplyParser();
  t.throws(() => long.push(new Uint8Array(5000).fill(0x41)), /longer than 4096/);
});

t.test('OpenBeken JSON quirks', async (t) => {
  t.same(parseRepeatedKeyObject(T.API_CHANNELS_BODY, 'channels'), [['0', 0], ['0', 0], ['0', 0], ['1', 0], ['0', 0], ['1', 0]], 'repeated keys all kept, in order');
  t.same(JSON.parse(T.API_CHANNELS_BODY), { '0': 0, '1': 0 }, '(JSON.parse would lose them)');
  const bad = text(parseObkReply(T.PINS_POST_BAD).body);
  t.throws(() => JSON.parse(bad), 'the 400 body is invalid JSON (raw newline)');
  t.same(parseObkJson(bad, 'pins'), { error: 400, msg: 'Object expected\n' }, 'read anyway');
  t.same(parseObkJson('{"startcmd":"echo C:\\q"}', 'info'), { startcmd: 'echo C:\\q' }, 'lone backslash in startcmd');
  t.throws(() => parseObkJson('{"a":', 'x'), ProtocolError);
});

t.test('redaction of secret-bearing commands and paths', async (t) => {
  t.equal(redactCommand('Password1 hunter2'), 'Password1 ***');
  t.equal(redactCommand('backlog SSID1 lab; Password1 hunter2; restart'), 'backlog SSID1 lab; Password1 ***; restart');
  t.equal(redactCommand('MqttPassword x y'), 'MqttPassword ***');
  t.equal(redactCommand('POWER ON'), 'POWER ON');
  t.equal(redactPath('/cfg_wifi_set?ssid=lab&pass=hunter2'), '/cfg_wifi_set?<redacted>');
  t.equal(redactPath('/cm?cmnd=Password1%20hunter2'), '/cm?cmnd="Password1 ***"');
  t.equal(redactCommand('echo hunter2', ['hunter2']), 'echo ***', 'known secret values scrubbed anywhere');
});

// ---------------------------------------------------------------------------------------------
// A tiny raw-socket server that replays the recorded traces (as OpenBeken: one request, then close).

interface Replay {
  server: Server;
  url: string;
  requests: string[];
  maxConcurrent: number;
  close(): Promise<void>;
}

type Responder = (request: string, n: number, sock: Socket) => Uint8Array | 'hang' | 'close' | Promise<Uint8Array | 'hang' | 'close'>;

async function replay(respond: Responder): Promise<Replay> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  let open = 0;
  const r: Replay = {
    server: createServer((sock) => {
      sockets.add(sock);
      open++;
      r.maxConcurrent = Math.max(r.maxConcurrent, open);
      let counted = true;
      const done = (): void => {
        if (counted) open--;
        counted = false;
      };
      sock.on('close', () => {
        done();
        sockets.delete(sock);
      });
      let buf = Buffer.alloc(0);
      let answered = false;
      sock.on('data', async (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0 || answered) return;
        const len = Number(/Content-Length: (\d+)/i.exec(buf.subarray(0, end).toString())?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        answered = true;
        requests.push(buf.toString('utf8'));
        const out = await respond(buf.toString('utf8'), requests.length, sock);
        if (out === 'hang') return;
        if (out === 'close') {
          done();
          sock.end();
          return;
        }
        // Dribble the reply in small pieces, like a 1 KiB-buffered embedded server would not even do.
        for (let i = 0; i < out.length; i += 7) sock.write(out.subarray(i, i + 7));
        // Served: the client cannot see the close before this, so a new connection now is not an overlap.
        done();
        sock.end();
      });
    }),
    url: '',
    requests,
    maxConcurrent: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => r.server.close(() => res()));
    },
  };
  await new Promise<void>((res) => r.server.listen(0, '127.0.0.1', () => res()));
  const addr = r.server.address();
  r.url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  return r;
}

const quiet = pino({ level: 'silent' });

function byPath(req: string): Uint8Array {
  const line = req.split('\r\n')[0]!;
  if (line.startsWith('GET /api/info ')) return T.API_INFO;
  if (line.startsWith('GET /api/pins ')) return T.API_PINS;
  if (line.startsWith('GET /api/channels ')) return T.API_CHANNELS;
  if (line.startsWith('GET /cm?cmnd=STATUS%208 ')) return T.CM_STATUS_8;
  if (line.startsWith('GET /cm?cmnd=STATUS%202 ')) return T.CM_STATUS_2;
  if (line.startsWith('GET /cm?cmnd=VoltageSet')) return T.CM_VOLTAGESET;
  if (line.startsWith('GET /cfg_wifi_set?')) return T.WIFI_SET;
  if (line.startsWith('POST /api/pins ')) return req.includes('"roles"') ? T.PINS_POST_OK : T.PINS_POST_BAD;
  if (line.startsWith('POST /api/cmnd ')) {
    const body = req.slice(req.indexOf('\r\n\r\n') + 4);
    if (body === 'POWER ON') return T.CMND_POWER_ON;
    if (body.startsWith('VoltageSet')) return T.CMND_CAL_NO_PULSES;
    if (body === 'restart') return T.CMND_OK_EMPTY;
    return T.CMND_UNKNOWN;
  }
  return T.NOT_FOUND_PAGE;
}

t.test('Node http.get rejects the recorded reply (why the client has its own parser)', async (t) => {
  const srv = await replay(() => T.API_INFO);
  t.teardown(() => srv.close());
  const err = await new Promise<NodeJS.ErrnoException>((resolve) => {
    httpGet(`${srv.url}/api/info`, (res) => {
      res.resume();
      resolve(Object.assign(new Error('unexpectedly parsed'), { code: 'NONE' }));
    }).on('error', resolve);
  });
  t.equal(err.code, 'HPE_CR_EXPECTED');
  const info = await new ObkHttpClient({ url: srv.url, log: quiet }).info();
  t.equal(info.mac, T.UNIT_MAC, 'our client reads the same bytes');
});

t.test('client against the replayed traces', async (t) => {
  const srv = await replay(byPath);
  t.teardown(() => srv.close());
  const c = new ObkHttpClient({ url: srv.url, log: quiet });

  const info = await c.info();
  t.equal(info.shortName, T.UNIT_SHORT_NAME);
  t.equal(info.flags, '1024');
  t.equal(info.startcmd, 'startDriver NTP');
  t.equal(info.chipset, 'BK7231N');

  const pins = await c.pins();
  t.equal(pins.roles.length, 29);
  t.same([pins.roles[6], pins.roles[7], pins.roles[8], pins.roles[10], pins.roles[24], pins.roles[26]], [19, 18, 9, 3, 17, 1]);
  t.equal(pins.channels[26], 1);
  t.equal(pins.channels2, undefined, 'channels2 absent when all zero');

  t.same(await c.channels(), [['0', 0], ['0', 0], ['0', 0], ['1', 0], ['0', 0], ['1', 0]]);

  const e = await c.energy();
  t.same(e, { power: 60, apparentPower: 61.199996, reactivePower: 12.199999, factor: 0.980392, voltage: 229.960006, current: 0.266099, consumptionTotalWh: 12.345 });
  const fwr = (await c.status(2)).StatusFWR as Record<string, unknown>;
  t.equal(fwr.Version, 'OpenBK7231N_1.18.299');

  const ok = await c.cmnd('POWER ON');
  t.same(ok, { code: 200, msg: 'OK', res: { POWER: 'ON' } });

  const cm = await c.cm('VoltageSet 230');
  t.same(cm.json, {}, '/cm hides a failed calibration behind 200 {}');
  const refused = await c.cmnd('VoltageSet 230').catch((x: unknown) => x);
  t.type(refused, DutError, 'POST /api/cmnd shows it');
  t.match((refused as DutError).message, /OpenBeken refused "VoltageSet 230": 400 Command found but returned error/);
  t.equal((refused as DutError).context.command, 'POST /api/cmnd "VoltageSet 230"');
  t.match(text((refused as DutError).context.bytesSeen!), /"error":400/);
  const unknown = await c.cmnd('frobnicate', { allowFailure: true });
  t.same(unknown, { code: 501, msg: 'Unknown command', res: {} });

  await c.setPins({ roles: [0, 1], channels: [0, 1], deviceFlag: 10 });
  t.match(srv.requests.at(-1)!, /\r\n\r\n\{"roles":\[0,1\],"channels":\[0,1\],"deviceFlag":10\}$/);

  await c.restart();
  await c.wifiSet({ ssid: 'lab', pass: 'pw' });
  t.match(srv.requests.at(-1)!, /^GET \/cfg_wifi_set\?ssid=lab&pass=pw HTTP\/1\.1\r\n/);
});

t.test('request bytes: one request per connection, the whole request at once', async (t) => {
  const srv = await replay(byPath);
  t.teardown(() => srv.close());
  const c = new ObkHttpClient({ url: srv.url, log: quiet });
  await c.cmnd('POWER ON');
  t.equal(srv.requests[0], 'POST /api/cmnd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nPOWER ON', 'raw body, no newline added');
  await c.cm('STATUS 8', { idempotent: true });
  t.equal(srv.requests[1], 'GET /cm?cmnd=STATUS%208 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n', 'space encoded (an unencoded one would drop the argument)');
  const authed = new ObkHttpClient({ url: srv.url, log: quiet, webPassword: 'pw' });
  await authed.info();
  t.match(srv.requests[2]!, /\r\nAuthorization: Basic YWRtaW46cHc=\r\n/, 'Basic auth as admin');
});

t.test('one connection at a time per plug (its backlog is one)', async (t) => {
  const srv = await replay(async (req) => {
    await new Promise((r) => setTimeout(r, 20));
    return byPath(req);
  });
  t.teardown(() => srv.close());
  const a = new ObkHttpClient({ url: srv.url, log: quiet });
  const b = new ObkHttpClient({ url: srv.url, log: quiet });
  const results = await Promise.all([a.info(), b.pins(), a.channels(), b.info(), a.status(8)]);
  t.equal(results.length, 5);
  t.equal(srv.requests.length, 5);
  t.equal(srv.maxConcurrent, 1, 'two clients of the same plug never overlap');
});

t.test('timeouts, bounded retries, typed errors', async (t) => {
  // First two connections get nothing back (closed), the third the reply: idempotent reads retry.
  const flaky = await replay((req, n) => (n < 3 ? 'close' : byPath(req)));
  t.teardown(() => flaky.close());
  const c = new ObkHttpClient({ url: flaky.url, log: quiet, retryDelayMs: 5 });
  t.equal((await c.info()).mac, T.UNIT_MAC, 'succeeded on the third attempt');
  t.equal(flaky.requests.length, 3);

  const flaky2 = await replay((req, n) => (n < 2 ? 'close' : byPath(req)));
  t.teardown(() => flaky2.close());
  const c2 = new ObkHttpClient({ url: flaky2.url, log: quiet, retryDelayMs: 5 });
  const once = await c2.cmnd('POWER ON').catch((x: unknown) => x);
  t.type(once, ProtocolError, 'a command that may have run is not sent again');
  t.match((once as Error).message, /POST \/api\/cmnd "POWER ON" to http:\/\/127\.0\.0\.1:\d+: OpenBeken HTTP reply: connection closed without a reply/);
  t.equal(flaky2.requests.length, 1);

  const dead = await replay(() => 'close');
  t.teardown(() => dead.close());
  const c3 = new ObkHttpClient({ url: dead.url, log: quiet, retries: 2, retryDelayMs: 5 });
  await t.rejects(c3.info(), ProtocolError, 'bounded: gives up');
  t.equal(dead.requests.length, 3, '1 + 2 retries');

  const half = await replay((_req, _n, sock) => {
    sock.write(T.API_INFO.subarray(0, 60));
    return 'hang';
  });
  t.teardown(() => half.close());
  const c4 = new ObkHttpClient({ url: half.url, log: quiet, timeoutMs: 150, retries: 0 });
  const to = await c4.info().catch((x: unknown) => x);
  t.type(to, TimeoutError);
  t.match((to as Error).message, /GET \/api\/info to http:\/\/127\.0\.0\.1:\d+: no complete reply within 150 ms \(waiting for the reply after 60 bytes\)/);
  t.equal(text((to as TimeoutError).context.bytesSeen!), text(T.API_INFO.subarray(0, 60)), 'the bytes seen are in the error');
  t.equal((to as TimeoutError).context.command, 'GET /api/info');

  const neg = await replay(() => T.NEGATIVE_STATUS);
  t.teardown(() => neg.close());
  const n = await new ObkHttpClient({ url: neg.url, log: quiet, retries: 0 }).info().catch((x: unknown) => x);
  t.type(n, ProtocolError);
  t.equal((n as ProtocolError).context.status, -1);

  const refused = await replay(() => T.API_INFO);
  const port = refused.url;
  await refused.close();
  const r = await new ObkHttpClient({ url: port, log: quiet, retries: 1, retryDelayMs: 5 }).info().catch((x: unknown) => x);
  t.type(r, TransportError, 'nothing listening');
  t.match((r as Error).message, /cannot connect to http:\/\/127\.0\.0\.1:\d+ for GET \/api\/info: .*ECONNREFUSED/);

  const auth = await replay(() => T.UNAUTHORIZED);
  t.teardown(() => auth.close());
  await t.rejects(new ObkHttpClient({ url: auth.url, log: quiet }).info(), { name: 'DutError', message: /asks for a web password \(401\): none configured/ });

  const safe = await replay(() => T.NOT_FOUND_PAGE);
  t.teardown(() => safe.close());
  await t.rejects(new ObkHttpClient({ url: safe.url, log: quiet }).info(), { name: 'DutError', message: /HTML page "Not found\." \(is it in safe mode\?\)/ });

  t.throws(() => new ObkHttpClient({ url: 'not a url' }), /not a URL/);
  t.throws(() => new ObkHttpClient({ url: 'https://10.0.0.1' }), /only http/);
});

t.test('passwords never appear in errors or logs', async (t) => {
  const PASS = 'Sup3r-Secret/Pass word';
  const WEB = 'web-Secret-42';
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const log = pino({ level: 'trace' }, sink);
  const stall = await replay((req, _n, sock) => {
    // Echo the request back as a "reply" fragment, then hang: the worst case for leaking.
    sock.write(`HTTP/1.1 200 OK\n${req.split('\r\n')[0]}`);
    return 'hang';
  });
  t.teardown(() => stall.close());
  const c = new ObkHttpClient({ url: stall.url, log, timeoutMs: 120, retries: 1, retryDelayMs: 5, webPassword: WEB });
  const errors: unknown[] = [];
  errors.push(await c.wifiSet({ ssid: 'lab', pass: PASS }).catch((x: unknown) => x));
  errors.push(await c.cmnd(`backlog SSID1 lab; Password1 ${PASS}`).catch((x: unknown) => x));
  errors.push(await c.cm(`Password1 ${PASS}`).catch((x: unknown) => x));
  t.equal(stall.requests.length, 4, 'the requests did go out (wifiSet retried once: it is idempotent)');
  t.ok(stall.requests[0]!.includes(encodeURIComponent(PASS).replace(/%20/g, '+')) || stall.requests[0]!.includes('Sup3r-Secret'), 'the password was on the wire');
  for (const e of errors) {
    t.type(e, PlugrigError);
    const seen = (e as PlugrigError).context.bytesSeen;
    // toJSON renders bytesSeen as hex: look at the bytes as text too.
    const all = [(e as Error).message, JSON.stringify((e as PlugrigError).toJSON()), String((e as Error).stack), seen ? Buffer.from(seen).toString('latin1') : ''].join('\n');
    for (const secret of [PASS, encodeURIComponent(PASS), 'Sup3r-Secret', WEB, Buffer.from(`admin:${WEB}`).toString('base64')]) {
      t.notOk(all.includes(secret), `error ${(e as Error).message.slice(0, 50)}… does not contain ${secret.slice(0, 6)}…`);
    }
  }
  const logText = lines.join('');
  t.ok(logText.length > 0, 'something was logged');
  t.notOk(logText.includes('Sup3r-Secret'), 'log has no password');
  t.notOk(logText.includes(WEB), 'log has no web password');
  t.match((errors[1] as Error).message, /Password1 \*\*\*/);
  t.match(Buffer.from((errors[0] as PlugrigError).context.bytesSeen!).toString(), /GET \/cfg_wifi_set\?ssid=lab&pass=\*\*\*/, 'the echoed request is in the bytes seen, its password scrubbed');
});
