import net from 'node:net';
import t, { type Test } from 'tap';
import { RealClock } from '../rig/core/clock.ts';
import { ProtocolError, TimeoutError, TransportError } from '../rig/core/errors.ts';
import { createLogger } from '../rig/core/log.ts';
import { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import { FaultsSchema } from '../rig/jig/fault-spec.ts';
import { ObkHttpFaults, type ObkHttpFaultSpec } from '../sim/plug/obk/http-faults.ts';
import { ObkHttpServer } from '../sim/plug/obk/http-server.ts';

/**
 * The virtual plug's HTTP transport faults on their own (raw sockets, exact bytes), then what the
 * rig's client makes of each: one typed error that names it.
 */
const HEAD = 'HTTP/1.1 200 OK\nContent-type: application/json\r\nAccess-Control-Allow-Origin: *\r\nAccess-Control-Allow-Headers: Origin, X-Requested-With, Content-Type, Accept\r\nConnection: close\r\n\r\n';
const BODY = '{"uptime_s":12,"build":"Build on Jul 24 2026 10:30:00 version 1.18.42","ip":"127.0.0.1"}';
const REPLY = HEAD + BODY;
const clock = new RealClock();

async function serve(t: Test, fault: ObkHttpFaultSpec | undefined): Promise<{ port: number; server: ObkHttpServer }> {
  const server = new ObkHttpServer({ clock, handle: () => REPLY, acceptDelayMs: 0, clientDelayMs: 0, ...(fault ? { faults: new ObkHttpFaults(fault) } : {}) });
  const { port } = await server.start();
  t.teardown(() => server.stop());
  return { port, server };
}

/** One raw request: every byte back until the server closes, or what arrived when `waitMs` ran out. */
function raw(port: number, waitMs = 2000): Promise<{ bytes: string; closed: boolean; ms: number } | { refused: true }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const done = (closed: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve({ bytes: Buffer.concat(chunks).toString('latin1'), closed, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => done(false), waitMs);
    s.on('connect', () => s.write('GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('data', (c) => chunks.push(c));
    s.on('end', () => done(true));
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === 'ECONNREFUSED' ? { refused: true } : { bytes: `error ${e.code}`, closed: true, ms: 0 });
    });
  });
}

t.test('without a fault the reply is untouched', async (t) => {
  const r = await raw((await serve(t, undefined)).port);
  t.same(r, { ...r, bytes: REPLY, closed: true });
});

t.test('each fault, byte for byte', async (t) => {
  const half = BODY.slice(0, Math.floor(BODY.length / 2));
  const truncated = await raw((await serve(t, { kind: 'truncated-json' })).port);
  t.same(truncated, { ...truncated, bytes: HEAD + half, closed: true }, 'truncated-json: headers and the first half of the body, then a clean close');

  const malformed = await raw((await serve(t, { kind: 'malformed-json' })).port);
  t.same(malformed, { ...malformed, bytes: HEAD + BODY.replace('"', ''), closed: true }, 'malformed-json: the whole reply with its first quote lost');

  const negative = await raw((await serve(t, { kind: 'negative-status' })).port);
  t.same(negative, { ...negative, bytes: REPLY.replace('HTTP/1.1 200 OK\n', 'HTTP/1.1 -1 OK\n'), closed: true }, 'negative-status: "HTTP/1.1 -1 OK" and the rest as sent');

  const stall = await raw((await serve(t, { kind: 'stall-mid-body' })).port, 400);
  t.same(stall, { ...stall, bytes: HEAD + half, closed: false }, 'stall-mid-body: headers and half the body, then the connection stays open');

  const late = await raw((await serve(t, { kind: 'timeout', delayMs: 300 })).port);
  t.same(late, { ...late, bytes: REPLY, closed: true }, 'timeout: the whole reply, late');
  t.ok('ms' in late && late.ms >= 290, `not before the delay (${'ms' in late ? late.ms.toFixed(0) : '?'} ms)`);
});

t.test('refuse-during-boot: the port refuses connections for refuseMs after start, then serves; the address is known all along', async (t) => {
  const { port, server } = await serve(t, { kind: 'refuse-during-boot', refuseMs: 300 });
  t.same(server.address(), { host: '127.0.0.1', port }, 'the address is reported while refusing');
  t.same(await raw(port), { refused: true }, 'connection refused at first');
  await clock.sleep(400);
  const r = await raw(port);
  t.same(r, { ...r, bytes: REPLY, closed: true }, 'served after the refusal');
});

t.test('afterRequests lets the first requests through; rate hits a seeded share; the count lives in the faults object', async (t) => {
  const faults = new ObkHttpFaults({ kind: 'negative-status', afterRequests: 2 });
  const codes = Array.from({ length: 4 }, () => faults.planReply(REPLY).bytes.slice(0, 12));
  t.same(codes, ['HTTP/1.1 200', 'HTTP/1.1 200', 'HTTP/1.1 -1 ', 'HTTP/1.1 -1 ']);
  const some = new ObkHttpFaults({ kind: 'negative-status', rate: 0.3, seed: 7 });
  const hit = Array.from({ length: 1000 }, () => some.planReply(REPLY).bytes.startsWith('HTTP/1.1 -1')).filter(Boolean).length;
  t.ok(hit > 240 && hit < 360, `about 30 % hit (${hit} of 1000)`);
  const again = new ObkHttpFaults({ kind: 'negative-status', rate: 0.3, seed: 7 });
  t.equal(Array.from({ length: 1000 }, () => again.planReply(REPLY).bytes.startsWith('HTTP/1.1 -1')).filter(Boolean).length, hit, 'same seed, same requests hit');
  t.equal(new ObkHttpFaults({ kind: 'truncated-json' }).planReply(HEAD.replace('application/json', 'text/html') + '<p>x</p>').bytes.endsWith('<p>x</p>'), true, 'JSON faults leave other replies alone');
});

t.test('the jig file faults block takes plug.http and plug.rebootLoop, and refuses unknown kinds and keys', async (t) => {
  t.ok(FaultsSchema.safeParse({ plug: { http: { kind: 'stall-mid-body', afterRequests: 3, rate: 0.5 }, rebootLoop: true } }).success);
  const bad = FaultsSchema.safeParse({ plug: { http: { kind: 'slow' } } });
  t.notOk(bad.success, 'unknown kind refused');
  t.notOk(FaultsSchema.safeParse({ plug: { http: { kind: 'timeout', delay: 5 } } }).success, 'unknown key refused');
});

t.test('the rig client: one typed error per fault, naming it', async (t) => {
  const log = createLogger({}, 'silent');
  const client = async (fault: ObkHttpFaultSpec): Promise<unknown> => {
    const { port } = await serve(t, fault);
    return new ObkHttpClient({ url: `http://127.0.0.1:${port}`, clock, log, retries: 0, timeoutMs: 300 }).info().catch((e: unknown) => e);
  };
  const trunc = await client({ kind: 'truncated-json' });
  t.type(trunc, ProtocolError);
  t.match((trunc as ProtocolError).message, /^GET \/api\/info to http:\/\/127\.0\.0\.1:\d+: reply JSON is truncated: it ends after 44 bytes with an object and a string still open$/);
  t.equal((trunc as ProtocolError).context.jsonFault, 'truncated');
  const bad = await client({ kind: 'malformed-json' });
  t.match((bad as ProtocolError).message, /: reply is malformed JSON: /);
  t.equal((bad as ProtocolError).context.jsonFault, 'malformed');
  const neg = await client({ kind: 'negative-status' });
  t.match((neg as ProtocolError).message, /negative HTTP status -1 \(OpenBeken REST error\)$/);
  t.equal((neg as ProtocolError).context.status, -1);
  const stall = await client({ kind: 'stall-mid-body' });
  t.type(stall, TimeoutError);
  t.match((stall as TimeoutError).message, /no complete reply within 300 ms \(reading the body after the headers and 44 body bytes\)$/);
  t.equal((stall as TimeoutError).context.waiting, 'body');
  const slow = await client({ kind: 'timeout', delayMs: 2000 });
  t.match((slow as TimeoutError).message, /no complete reply within 300 ms \(waiting for the reply\)$/);
  t.equal((slow as TimeoutError).context.waiting, 'reply');
  const refused = await client({ kind: 'refuse-during-boot', refuseMs: 5000 });
  t.type(refused, TransportError);
  t.equal((refused as TransportError).context.errno, 'ECONNREFUSED');
});

t.test('field faults, byte for byte: the reply to their path only, well-formed JSON without the field or with another type', async (t) => {
  const gone = await raw((await serve(t, { kind: 'missing-field', path: '/api/info', field: 'ip' })).port);
  t.same(gone, { ...gone, bytes: HEAD + '{"uptime_s":12,"build":"Build on Jul 24 2026 10:30:00 version 1.18.42"}', closed: true }, 'missing-field: the field is gone');
  const typed = await raw((await serve(t, { kind: 'wrong-type', field: 'uptime_s' })).port);
  t.same(typed, { ...typed, bytes: HEAD + BODY.replace('"uptime_s":12', '"uptime_s":"12"'), closed: true }, 'wrong-type: a number becomes its JSON text');
  const other = await raw((await serve(t, { kind: 'missing-field', path: '/api/pins', field: 'ip' })).port);
  t.same(other, { ...other, bytes: REPLY, closed: true }, 'another path: untouched');
  t.notOk(FaultsSchema.safeParse({ plug: { http: { kind: 'missing-field' } } }).success, 'a field fault without its field is refused');
});
