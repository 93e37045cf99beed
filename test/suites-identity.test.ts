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
