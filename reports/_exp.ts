import { openTapReport, withTapReport } from './tap-writer.ts';
import { FlashError } from '../rig/core/errors.ts';
for (const version of [13, 14] as const) {
  const r = openTapReport(`/tmp/h4w/v${version}.tap`, { title: 'slot 1 unit ABC', meta: { station: 'st-1', fw: { sha: 'abc' } }, version });
  r.ok('link', { baud: 921600 });
  await r.step('flash', async () => { throw new FlashError('write failed', { address: 0x11000, bytesSeen: Uint8Array.of(1, 2), step: 'write' }); });
  r.measurement('voltage', 229.5, 'V', { min: 207, max: 253 });
  r.measurement('current', 9.9, 'A', { min: 0, max: 10 });
  r.measurement('power', 300, 'W', { max: 250 });
  r.skip('relay', 'no relay fitted');
  r.fail('long text', { text: 'line one is fairly long ' .repeat(8) + '\n\nline two\nline three ' + 'x'.repeat(100) + '\n' });
  await r.subtest('group', async (g) => { g.ok('a'); throw new Error('boom'); });
  await r.subtest('group ok', async (g) => { g.ok('a'); g.skip('b', 'n/a'); });
  console.log(await r.close());
}
