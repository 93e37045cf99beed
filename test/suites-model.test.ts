import t from 'tap';
import { ConfigError } from '../rig/core/errors.ts';
import { resolveLimits } from '../suites/model/limits.ts';
import { combineUncertainty, DIVISORS } from '../suites/model/uncertainty.ts';
import { decide, isAccepted, judge } from '../suites/model/verdict.ts';
import { redactSecrets } from '../suites/model/redact.ts';
import { serializeError, errorChain } from '../suites/model/step-result.ts';
import { FlashError, TransportError } from '../rig/core/errors.ts';

t.test('limits: interval, nominal ± tolerance, clipping, marginal band', async (t) => {
  t.same(resolveLimits({ low: 1, high: 3 }, 'x'), { low: 1, high: 3 });
  t.same(resolveLimits({ tolerancePct: 10 }, 'x', 230), { low: 207, high: 253, nominal: 230 }, 'nominal from the suite');
  t.same(resolveLimits({ nominal: 100, tolerance: 5 }, 'x', 230), { low: 95, high: 105, nominal: 100 }, "the plan's nominal wins");
  const p = resolveLimits({ tolerancePct: 10, tolerance: 2 }, 'x', 25);
  t.equal(p.low, 20.5, '±(10 % + 2 W) at 25 W');
  t.equal(p.high, 29.5);
  t.same(resolveLimits({ tolerance: 0.1, high: 1 }, 'x', 0.95), { low: 0.85, high: 1, nominal: 0.95 }, 'an explicit high clips nominal + tolerance');
  t.same(resolveLimits({ low: 0, high: 10, marginalPct: 10 }, 'x'), { low: 0, high: 10, marginalLow: 1, marginalHigh: 9 });
  t.same(resolveLimits({ high: 60, marginal: 6 }, 'x'), { high: 60, marginalHigh: 54 }, 'one-sided band');
  t.same(resolveLimits({ high: 60, marginalPct: 10 }, 'x'), { high: 60, marginalHigh: 54 }, 'one-sided percent band is of |limit|');
  t.throws(() => resolveLimits({ tolerance: 1 }, 'smoke: load power'), { name: 'ConfigError', message: /smoke: load power: a tolerance needs a nominal/ });
  t.throws(() => resolveLimits({}, 'x'), ConfigError);
  t.throws(() => resolveLimits({ low: 5, high: 1 }, 'x'), { message: /low limit 5 is above high limit 1/ });
});

t.test('uncertainty: divisors, root sum of squares, U = k·u', async (t) => {
  t.equal(DIVISORS.rectangular, Math.sqrt(3));
  const c = combineUncertainty(
    { contributions: [{ name: 'ref', distribution: 'rectangular' }, { name: 'res', distribution: 'rectangular' }, { name: 'cert', distribution: 'normal', divisor: 2 }] },
    { ref: Math.sqrt(3) * 3, res: Math.sqrt(3) * 4, cert: 0 },
    'm',
  );
  t.equal(c.k, 2, 'k = 2 by default');
  t.ok(Math.abs(c.u - 5) < 1e-12, `u = sqrt(3² + 4²) = 5 (got ${c.u})`);
  t.ok(Math.abs(c.U - 10) < 1e-12, 'U = 2u');
  t.same(c.contributions.map((x) => [x.name, Number(x.u.toFixed(9))]), [['ref', 3], ['res', 4], ['cert', 0]]);
  const n = combineUncertainty({ k: 3, contributions: [{ name: 'cal', distribution: 'normal', divisor: 2 }] }, { cal: 0.4 }, 'm');
  t.ok(Math.abs(n.u - 0.2) < 1e-12 && Math.abs(n.U - 0.6) < 1e-12, 'a certificate U(k=2) divided back, then k = 3');
  t.same(combineUncertainty(undefined, {}, 'm'), { contributions: [], u: 0, k: 2, U: 0 }, 'no budget: U = 0');
  t.throws(() => combineUncertainty({ contributions: [{ name: 'ref', distribution: 'normal' }] }, {}, 'mains voltage'), { message: /declared uncertainty contribution 'ref' has no value/ });
  t.throws(() => combineUncertainty({ contributions: [] }, { jitter: 1 }, 'm'), { message: /'jitter' was not declared/ });
  t.throws(() => combineUncertainty({ contributions: [{ name: 'ref', distribution: 'normal' }] }, { ref: -1 }, 'm'), /not a finite value >= 0/);
});

t.test('guard band: accept only if |v − nominal| + U ≤ tol, reject only if |v − nominal| − U ≥ tol', async (t) => {
  const L = resolveLimits({ nominal: 100, tolerance: 10 }, 'x'); // 90 .. 110
  const g = { guardBand: 'uncertainty' as const };
  const cases: Array<[number, number, string]> = [
    [100, 1, 'pass'],
    [108, 2, 'pass'], // 8 + 2 = 10 ≤ 10: accepted at the boundary
    [108.5, 2, 'marginal'], // 8.5 + 2 > 10, 8.5 − 2 < 10
    [111, 2, 'marginal'], // outside, but 11 − 2 < 10: cannot be rejected either
    [112, 2, 'fail'], // 12 − 2 = 10 ≥ 10: rejected at the boundary
    [115, 2, 'fail'],
    [92, 2, 'pass'],
    [91.5, 2, 'marginal'],
    [89, 2, 'marginal'],
    [88, 2, 'fail'],
    [110, 0, 'pass'], // U = 0: the limit itself is inside
    [110.0001, 0, 'fail'],
  ];
  for (const [v, U, want] of cases) t.equal(judge(v, U, L, g).verdict, want, `v=${v} U=${U} → ${want}`);
  t.equal(judge(111, 2, L, { guardBand: 'none' }).verdict, 'fail', 'simple acceptance ignores U');
  t.equal(judge(108.5, 2, L, { guardBand: 'none' }).verdict, 'pass');
  t.equal(judge(Number.NaN, 0, L, g).verdict, 'fail', 'NaN fails');
  t.equal(judge(Number.POSITIVE_INFINITY, 0, { low: 0 }, g).verdict, 'fail');
  t.equal(judge(5, 0, { high: 10 }, g).verdict, 'pass', 'one-sided high');
  t.equal(judge(-1, 0, { low: 0 }, g).verdict, 'fail', 'one-sided low');
  const banded = resolveLimits({ low: 0, high: 10, marginalPct: 10 }, 'x');
  t.match(judge(9.5, 0, banded, g), { verdict: 'marginal', reason: /marginal band/ });
  t.match(judge(0.5, 0, banded, g), { verdict: 'marginal' });
  t.match(judge(5, 0, banded, g), { verdict: 'pass' });
  t.match(judge(5, 0.5, L, { guardBand: 'uncertainty', uncertaintyTarget: 0.4 }), { verdict: 'fail' }, 'outside stays a fail');
  t.match(judge(100, 0.5, L, { guardBand: 'uncertainty', uncertaintyTarget: 0.4 }), { verdict: 'marginal', reason: /exceeds the target/ });
  t.match(judge(100, 0.3, L, { guardBand: 'uncertainty', uncertaintyTarget: 0.4 }), { verdict: 'pass' });
});

t.test('decision: the plan\'s marginal action, retests bounded by the attempts left', async (t) => {
  t.equal(decide('pass', 'fail', 0), 'accept');
  t.equal(decide('fail', 'pass-with-flag', 3), 'reject');
  t.equal(decide('marginal', 'pass-with-flag', 0), 'accept-flagged');
  t.equal(decide('marginal', 'fail', 3), 'reject');
  t.equal(decide('marginal', 'retest', 1), 'retest');
  t.equal(decide('marginal', 'retest-then-flag', 1), 'retest', 'retest-then-flag retests while attempts are left');
  t.equal(decide('marginal', 'retest-then-flag', 0), 'accept-flagged', 'then accepts with a flag');
  t.equal(decide('fail', 'retest-then-flag', 0), 'reject', 'a clear failure is never flagged through');
  t.equal(decide('marginal', 'retest', 0), 'reject', 'no attempt left: a marginal unit is rejected');
  t.same(['accept', 'accept-flagged', 'retest', 'reject'].map((d) => isAccepted(d as never)), [true, true, false, false]);
});

t.test('errors serialise with context and cause; secrets never survive', async (t) => {
  const e = new FlashError('write failed', { phase: 'write', address: 0x11000, wifiPassword: 'hunter2' }, { cause: new TransportError('port vanished', { path: 'sim:uart2' }) });
  const s = serializeError(e);
  t.match(s, { name: 'FlashError', code: 'E_FLASH', message: 'write failed', context: { phase: 'write', address: '0x11000', wifiPassword: '[redacted]' } });
  t.same(errorChain(s).map((x) => x.name), ['FlashError', 'TransportError']);
  t.notOk(JSON.stringify(s).includes('hunter2'));
  t.same(redactSecrets({ wifi: { ssid: 'line3', password: 'x', psk: 'y' }, token: 'z', passed: true }), { wifi: { ssid: 'line3', password: '[redacted]', psk: '[redacted]' }, token: '[redacted]', passed: true });
});

t.test('guard band, 20 000 random cases: accepted ⇒ value ± U inside, rejected ⇒ wholly outside, marginal ⇒ straddling', async (t) => {
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const counts = { pass: 0, marginal: 0, fail: 0 };
  const bad: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const low = rnd() < 0.2 ? undefined : -rnd() * 10;
    const high = low === undefined || rnd() < 0.8 ? rnd() * 10 : undefined;
    const U = rnd() < 0.1 ? 0 : rnd() * 3;
    const value = (rnd() - 0.5) * 30;
    const { verdict } = judge(value, U, { ...(low !== undefined ? { low } : {}), ...(high !== undefined ? { high } : {}) }, { guardBand: 'uncertainty' });
    counts[verdict]++;
    const inside = (low === undefined || value - U >= low) && (high === undefined || value + U <= high);
    const outside = (high !== undefined && value - U >= high) || (low !== undefined && value + U <= low);
    const want = inside ? 'pass' : outside || U === 0 ? 'fail' : 'marginal';
    if (verdict !== want) bad.push(`v=${value} U=${U} [${low}, ${high}] → ${verdict}, want ${want}`);
  }
  t.same(bad.slice(0, 5), [], 'every case decided by the interval rule');
  t.ok(counts.pass > 1000 && counts.marginal > 1000 && counts.fail > 1000, `all three verdicts exercised: ${JSON.stringify(counts)}`);
});
