import t from 'tap';
import { FlashError, LinkError } from '../rig/core/errors.ts';
import { OFFSET, assertFlashed, flipAddresses, pattern, rig } from './fixtures/fault-flash-rig.ts';

/** Flash recovery from line faults and chip resets, injected in the simulator; checked against the simulated flash. */
t.test('byte errors, drops, duplicates, late and stale replies on the line: written right, retries counted', async (t) => {
  const image = pattern(0x10000, 1);
  const r = await rig({}, { seed: 7, byteErrorRate: 2e-5, dropRate: 1e-5, duplicateRate: 1e-5, delayRate: 0.05, delayMs: 400, staleLinkCheckRate: 0.01 });
  t.teardown(() => r.link.close());
  await r.flasher.connect();
  const res = await r.flasher.write(image, OFFSET);
  const c = r.line!.counters;
  t.ok(c.flipped + c.dropped + c.duplicated > 0 && c.delayed > 0 && c.staleLinkChecks > 0, `faults happened: ${JSON.stringify(c)}`);
  t.ok(r.flasher.stats.commandRetries > 0, `recovered by re-sending (${r.flasher.stats.commandRetries} retries)`);
  t.equal(res.crc >>> 0, res.crc, 'a chip CRC');
  assertFlashed(t, r, image, 'noisy line');
});

t.test('brown-out mid-erase and mid-write: re-link, resume by diff, content right', async (t) => {
  for (const during of ['erase', 'write'] as const) {
    const image = pattern(0x10000, 2);
    const r = await rig({ faults: { brownOuts: [{ during, nth: 3 }] } });
    await r.flasher.connect();
    await r.flasher.write(image, OFFSET);
    t.equal(r.chip.counters.brownOuts, 1, `${during}: the brown-out happened`);
    t.equal(r.flasher.stats.relinks, 1, `${during}: one re-link`);
    assertFlashed(t, r, image, `brown-out mid-${during}`);
    await r.link.close();
  }
});

t.test('without re-links a brown-out fails the write (it is the recovery that saves it)', async (t) => {
  const r = await rig({ faults: { brownOuts: [{ during: 'write', nth: 3 }] } }, undefined, { retries: { relink: 0 } });
  t.teardown(() => r.link.close());
  await r.flasher.connect();
  await t.rejects(r.flasher.write(pattern(0x10000, 2), OFFSET), { code: 'E_TIMEOUT' });
});

t.test('missed link windows: reset again; too many: LinkError naming the tries', async (t) => {
  const ok = await rig({ faults: { missLinkWindows: 2 } });
  await ok.flasher.connect();
  t.ok(ok.chip.counters.links >= 1, 'linked on the third reset');
  await ok.link.close();
  const bad = await rig({ faults: { missLinkWindows: 10 } });
  t.teardown(() => bad.link.close());
  const e = await bad.flasher.connect().catch((x: unknown) => x);
  t.type(e, LinkError);
  t.match((e as LinkError).message, /no reply to LinkCheck after \d+ tries and 3 reset/);
});


t.test("a flipped bit in a request's length field leaves the ROM's parser waiting for 4 KiB: reads and the guard re-link and go on", async (t) => {
  // FlashRead4K's LEN 0x0005 becomes 0x1005 (byte 6, bit 4): the chip swallows every request after it.
  const r = await rig({}, undefined, {}, flipAddresses([{ cmd: 'read', nth: 3, bit: 4, byte: 6 }]));
  t.teardown(() => r.link.close());
  await r.flasher.connect();
  const data = await r.flasher.read(0, 0x11000);
  t.equal(r.flasher.stats.relinks, 1, 'one re-link');
  t.equal(Buffer.compare(data, r.chip.flash.read(0, 0x11000)), 0, 'the read holds what the simulated flash holds');
  // The same in the guard's first CRC before a write (LEN 0x09 becomes 0x89): the write re-links and goes on.
  const g = await rig({}, undefined, {}, flipAddresses([{ cmd: 'crc', nth: 3, bit: 7, byte: 3 }]));
  t.teardown(() => g.link.close());
  await g.flasher.connect();
  const image = pattern(0x10000, 3);
  await g.flasher.write(image, OFFSET);
  t.ok(g.flasher.stats.relinks >= 1, `re-linked (${g.flasher.stats.relinks})`);
  assertFlashed(t, g, image, 'guard CRC request with a flipped length');
});
