import t from 'tap';
import { npfFixed, npfInt32 } from '../sim/plug/obk/nanoprintf.ts';

// The oracle file nanoprintf-vectors.txt is not in shared/reference; these are the vectors quoted in
// openbeken-http.md §5.6 and req 17.
t.test('req 17: nanoprintf %f is float32 truncated (vectors of §5.6)', async (t) => {
  const vectors: Array<[number, number, string]> = [
    [229.96, 6, '229.960006'],
    [229.96, 1, '229.9'],
    [229.96, 2, '229.96'],
    [0.2661, 6, '0.266099'],
    [0.83, 6, '0.829999'],
    [0.83, 2, '0.82'],
    [61.2, 6, '61.200000'],
    [45.67, 6, '45.669998'],
    [45.67, 1, '45.6'],
    [16777217, 6, '16777216.000000'],
    [1e20, 6, 'oor'],
  ];
  for (const [value, decimals, expected] of vectors) t.equal(npfFixed(value, decimals), expected, `${value} %.${decimals}f`);
});

t.test('req 17: special values and signs', async (t) => {
  t.equal(npfFixed(-0), '0.000000', '-0 prints without a sign');
  t.equal(npfFixed(NaN), 'nan');
  t.equal(npfFixed(Infinity), 'inf');
  t.equal(npfFixed(-Infinity), '-inf');
  t.equal(npfFixed(-1.5, 2), '-1.50');
  t.equal(npfFixed(-0.83, 2), '-0.82', 'truncation is toward zero');
  t.equal(npfFixed(2 ** 64), 'oor');
  t.equal(npfFixed(2 ** 63), '9223372036854775808.000000');
  t.equal(npfFixed(0), '0.000000');
  t.equal(npfFixed(1, 1), '1.0');
  t.throws(() => npfFixed(1, 0), RangeError);
});

t.test('req 18: %ld of the flag word is signed 32-bit', async (t) => {
  t.equal(npfInt32(1024), '1024');
  t.equal(npfInt32((1 << 31 | 1024) >>> 0), '-2147482624');
});
