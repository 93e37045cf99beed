import t from 'tap';
import { coverage, decisionTable, expectedRigErrorPct, faultyUnits, magnitudes, rigOutcome, trulyWithin, type UnitOutcome } from '../scripts/bench-lib/metrology-stats.ts';
import { effectiveCal, referenceErrorsAt, referenceRanges, trueErrorsAt, wtAutoRange } from '../scripts/bench-lib/metrology-truth.ts';
import { mulberry32 } from '../rig/core/prng.ts';

t.test('magnitudes: nearest-rank percentiles of |x|, NaN left out', async (t) => {
  const xs = [...Array.from({ length: 99 }, (_, i) => (i % 2 ? -1 : 1) * (i + 1) * 0.001), 0.5, NaN];
  const m = magnitudes(xs);
  t.equal(m.n, 100);
  t.equal(m.p50, 0.05);
  t.equal(m.p95, 0.095);
  t.equal(m.p99, 0.099);
  t.equal(m.max, 0.5, 'the sign does not hide the largest error');
});

const unit = (verdict: 'pass' | 'fail', ms: UnitOutcome['measurements'], extra: Partial<UnitOutcome> = {}): UnitOutcome => ({ verdict, retested: false, measurements: ms, ...extra });
const m = (verdict: 'pass' | 'marginal' | 'fail', truth: number) => ({ verdict, low: -1, high: 1, truth });

t.test('decision table: accepted/rejected/marginal units against their truth', async (t) => {
  t.ok(trulyWithin({ low: -1, high: 1, truth: 1 }), 'a value at the limit meets it');
  t.notOk(trulyWithin({ low: -1, high: 1, truth: -1.0001 }));
  const units = [
    unit('pass', [m('pass', 0.2), m('pass', 0.5)]), // true accept
    unit('pass', [m('pass', 0.2), m('pass', 1.2)]), // false accept: one quantity truly out
    unit('fail', [m('pass', 0.2), m('fail', 1.5)]), // true reject
    unit('fail', [m('fail', 0.9), m('pass', 0.1)]), // false reject: proven out, truly in
    unit('fail', [m('marginal', 0.95), m('pass', 0.1)], { retested: true }), // marginal, good
    unit('fail', [m('marginal', 1.05)], { retested: true }), // marginal, bad
    unit('fail', [m('pass', 0.1)], { failedOtherwise: true }), // a step error: a reject of a good unit
  ];
  t.same(units.map(rigOutcome), ['accept', 'accept', 'reject', 'reject', 'marginal', 'marginal', 'reject']);
  const d = decisionTable(units);
  t.same(
    { good: d.good, bad: d.bad, ta: d.trueAccept, fa: d.falseAccept, tr: d.trueReject, fr: d.falseReject, mg: d.marginalGood, mb: d.marginalBad, re: d.retested, other: d.otherFailures },
    { good: 4, bad: 3, ta: 1, fa: 1, tr: 1, fr: 2, mg: 1, mb: 1, re: 2, other: 1 },
  );
  t.equal(d.falseAcceptRate, 1 / 7, 'false accepts over all units');
  t.equal(d.falseRejectRate, 2 / 4, 'false rejects over good units');
  t.equal(d.goodNotAcceptedRate, 3 / 4);
});

t.test('expected rig error and U coverage', async (t) => {
  // Unit reads 1 % high, the reference 0.2 % high: the rig sees (1.01/1.002 − 1).
  t.equal(expectedRigErrorPct(0.01, 0.002).toFixed(6), (100 * (1.01 / 1.002 - 1)).toFixed(6));
  t.ok(Math.abs(expectedRigErrorPct(0.01, 0.002) - 0.798) < 0.001);
  const c = coverage([
    { value: 0.5, expected: 0.3, U: 0.2 },
    { value: 0.5, expected: 0.29, U: 0.2 },
    { value: -0.1, expected: 0.05, U: 0.2 },
  ]);
  t.same({ n: c.n, covered: c.covered }, { n: 3, covered: 2 }, 'covered when |value − expected| ≤ U');
});

t.test('faulty units: exactly round(share·n), reproducible from the seed', async (t) => {
  const a = faultyUnits(1000, 0.03, mulberry32(7));
  t.equal(a.size, 30);
  t.same([...a].sort((x, y) => x - y), [...faultyUnits(1000, 0.03, mulberry32(7))].sort((x, y) => x - y));
  t.notSame([...a].sort(), [...faultyUnits(1000, 0.03, mulberry32(8))].sort(), 'another seed, other units');
  t.ok([...a].every((i) => i >= 0 && i < 1000));
});

t.test('truth: the reading is factor × true frequency; the reference error is its systematic error', async (t) => {
  t.same(effectiveCal({ voltage: 0, current: 0.02, power: 0 }), { voltage: Math.fround(0.13253012048), current: Math.fround(0.02), power: 1.5 }, 'a stored 0 means the default');
  // A chip whose power channel runs 1 % fast for a factor that is exact at its nominal transfer.
  const chip = { frequency: (ch: 'power' | 'voltage' | 'current', x: { volts: number; amps: number; watts: number }) => (ch === 'power' ? x.watts * 1.01 : ch === 'voltage' ? x.volts : x.amps * 0.99) };
  const e = trueErrorsAt(chip, { voltage: 1, current: 1, power: 1 }, { volts: 230, amps: 1, watts: 138, pf: 0.6 });
  t.ok(Math.abs(e.watts - 0.01) < 1e-12 && Math.abs(e.amps + 0.01) < 1e-12 && Math.abs(e.volts) < 1e-12);
  t.ok(Math.abs(e.pf - 0.6 * (1.01 / 0.99 - 1)) < 1e-12, 'PF = P/(V·I) carries the P and I errors');
  t.equal(wtAutoRange([0.5, 1, 2, 5, 10, 20], 8.7), 10);
  t.equal(wtAutoRange([0.5, 1, 2, 5, 10, 20], 0.5), 0.5, 'a value at a range fits it');
  const input = { volts: 230, amps: 8.7, watts: 2000, pf: 1 };
  t.same(referenceRanges('wt310e', input), { volts: 300, amps: 10, watts: 3000 });
  t.same(referenceRanges('pzem004t', input), {});
  const ref = referenceErrorsAt((q, v, r) => (q === 'watts' ? 0.001 * v + 0.0002 * r : 0), { watts: 3000 }, input);
  t.ok(Math.abs(ref.watts - (0.001 + (0.0002 * 3000) / 2000)) < 1e-12, 'gain plus the range term relative to the value');
});
