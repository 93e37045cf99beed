import t from 'tap';
import { runSuites, SAFE_END, step, summary, verifyEntry } from './fixtures/verify-run.ts';

t.test('identity on a flashed, provisioned virtual plug: every step passes', async (t) => {
  const { result: r, end } = await runSuites([verifyEntry('identity')]);
  t.equal(r.verdict, 'pass', summary(r));
  t.match(step(r, 'MAC and chip over the ROM').data, { mac: /^c8:47:8c:/, chip: 'BK7231N' }, 'the ROM was read in a session of its own (no flash in the plan)');
  t.match(r.unit, { mac: /^c8:47:8c:/, build: /version 1\.18\.42/ });
  t.match(step(r, 'network identity').data, { mode: 'sta' });
  t.match(end, SAFE_END);
});

t.test('identity: a different expected build fails the build check, by name', async (t) => {
  const { result: r } = await runSuites([verifyEntry('identity', (e) => (e.expectVersion = '1.18.99'))]);
  const s = step(r, 'build, chipset and MAC');
  t.equal(s.status, 'fail');
  t.equal(s.reason, 'check failed: build is version 1.18.99');
});

t.test('identity: stock Tuya firmware and a unit that boots nothing are told apart', async (t) => {
  const stock = await runSuites([verifyEntry('identity', (e) => (e.bootWithinMs = 12_000))], { stock: true });
  const boot = step(stock.result, 'boots OpenBeken');
  t.equal(boot.status, 'fail', summary(stock.result));
  t.match(boot.reason, /^stock firmware still running: no OpenBeken HTTP within 12 s, LED blinking/);
  t.equal(step(stock.result, 'build, chipset').status, 'skip', 'the later identity steps are skipped');
  t.match(stock.end, SAFE_END, 'the jig ends in its safe state');

  const dead = await runSuites([verifyEntry('identity', (e) => (e.bootWithinMs = 12_000))], { defects: ['image-does-not-boot'] });
  const b2 = step(dead.result, 'boots OpenBeken');
  t.equal(b2.status, 'fail', summary(dead.result));
  t.match(b2.reason, /^nothing boots: no HTTP within 12 s and the LED stayed dark/);
  t.match(dead.end, SAFE_END);
});

t.test('identity: Wi-Fi never joins, a stalled HTTP server and a boot loop are each named, not taken for the stock app', async (t) => {
  const boot = (r: Awaited<ReturnType<typeof runSuites>>) => step(r.result, 'boots OpenBeken');
  const wifi = await runSuites([verifyEntry('identity')], { defects: ['wifi-never-joins'] });
  t.match(boot(wifi).reason, /^Wi-Fi never joins: OpenBeken runs but does not get onto the station network within 30 s \(LED toggles every ~525 ms, its not-connected pattern\)/, summary(wifi.result));
  t.match(wifi.end, SAFE_END);
  const stalls = await runSuites([verifyEntry('identity')], { defects: ['http-stalls'] });
  t.match(boot(stalls).reason, /^HTTP stalls: OpenBeken is on the station network \(LED solid\) and accepts the connection, but GET \/api\/info gets no reply within 30 s nor in 15 s more/, summary(stalls.result));
  t.ok(boot(stalls).ms < 47_000, `classified within the boot budget and one 15 s diagnostic request, not ended by the step timeout (${boot(stalls).ms} ms)`);
  t.match(stalls.end, SAFE_END);
  const loop = await runSuites([verifyEntry('identity')], { defects: ['boot-loop'] });
  t.match(boot(loop).reason, /^boot loop: the LED blinked in bursts cut short by \d+ restart\(s\), then stayed dark/, summary(loop.result));
  t.match(loop.end, SAFE_END);
});

t.test('identity: each plug HTTP fault of a jig file\'s faults block is named by the boot step, in one message', async (t) => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['timeout', {}, /^HTTP times out: GET \/api\/info was answered only after 10\.0 s, longer than the 2\.0 s the rig waits for a reply$/],
    ['stall-mid-body', {}, /^HTTP stalls mid-body: the status line and headers of GET \/api\/info arrive, then part of the body, then nothing for 15 s \(.*reading the body after the headers and \d+ body bytes\)\)$/],
    ['refuse-during-boot', {}, /^HTTP connection refused: OpenBeken is on the station network \(LED solid\) but http:\/\/127\.77\.0\.2:\d+ refuses connections 30 s after mains on/],
    ['truncated-json', {}, /^HTTP reply truncated: GET \/api\/info to http:\/\/[\d.:]+: reply JSON is truncated: it ends after \d+ bytes with an object and a string still open$/],
    ['malformed-json', {}, /^HTTP reply malformed: GET \/api\/info to http:\/\/[\d.:]+: reply is malformed JSON: /],
    ['negative-status', {}, /^HTTP negative status: OpenBeken answers GET \/api\/info with status -1 \("HTTP\/1\.1 -1 OK"/],
  ];
  for (const [kind, extra, want] of cases) {
    const r = await runSuites([verifyEntry('identity')], { faults: { plug: { http: { kind, ...extra } as never } } });
    const b = step(r.result, 'boots OpenBeken');
    t.equal(b.status, 'fail', `${kind}: ${summary(r.result)}`);
    t.match(b.reason, want, kind);
    t.equal(step(r.result, 'build, chipset').status, 'skip', `${kind}: the later identity steps are skipped`);
    t.match(r.end, SAFE_END, `${kind}: the jig ends in its safe state`);
  }
});

t.test('identity: a port that refuses connections only briefly after boot is waited for, not failed', async (t) => {
  const r = await runSuites([verifyEntry('identity')], { faults: { plug: { http: { kind: 'refuse-during-boot', refuseMs: 4000 } } } });
  t.equal(r.result.verdict, 'pass', summary(r.result));
  t.ok(step(r.result, 'boots OpenBeken').ms > 4000, 'the boot step waited past the refusal');
});

t.test('identity: a fault that starts later fails the step that was talking, with the fault in its message', async (t) => {
  // The boot step's polls (the first few answer 0.0.0.0 until the plug joins) pass; later requests get a negative status line.
  const r = await runSuites([verifyEntry('identity')], { faults: { plug: { http: { kind: 'negative-status', afterRequests: 13 } } } });
  t.equal(step(r.result, 'boots OpenBeken').status, 'pass', summary(r.result));
  const failed = r.result.steps.find((s) => s.status === 'fail');
  t.not(failed?.name, undefined, 'a later step fails');
  t.match(failed?.reason, /to http:\/\/[\d.:]+: OpenBeken HTTP reply: negative HTTP status -1 \(OpenBeken REST error\)$/, summary(r.result));
});
