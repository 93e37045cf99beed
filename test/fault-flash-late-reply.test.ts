import t from 'tap';
import { crc32Raw } from '../rig/bk7231/protocol/crc32.ts';
import { readReg } from '../rig/bk7231/protocol/frame.ts';
import { VirtualClock } from '../rig/core/clock.ts';
import { FaultyUart } from '../sim/serial/uart-faults.ts';
import type { UartTx, VirtualUartDevice } from '../sim/serial/uart-device.ts';
import { OFFSET, assertFlashed, pattern, rig } from './fixtures/fault-flash-rig.ts';

/**
 * A reply delayed past the host's timeout (sim fault `lateReplyRate` / `delayNextReply`: the line
 * keeps its order, so everything after the late reply waits behind it). CheckCRC replies do not say
 * which range they answer: without a resync barrier the host reads them one request behind.
 * Verdicts against the SIMULATED flash.
 */
const SECTOR = 0x1000;

t.test('the fault on its own: a late reply and everything after it arrive later, in order', async (t) => {
  const clock = new VirtualClock();
  let device: UartTx | undefined;
  const inner: VirtualUartDevice = { baudRate: () => 115200, connect: (tx) => void (device = tx), receive: () => undefined };
  const line = new FaultyUart(inner, {});
  const got: { at: number; b: number }[] = [];
  line.connect({ send: (b) => got.push({ at: clock.now(), b: b[0]! }) }, clock);
  line.delayNextReply(1500);
  device!.send(Uint8Array.of(1));
  await clock.sleep(100);
  device!.send(Uint8Array.of(2));
  await clock.sleep(2000);
  device!.send(Uint8Array.of(3));
  t.same(got, [{ at: 1500, b: 1 }, { at: 1500, b: 2 }, { at: 2100, b: 3 }], 'held until 1500 ms, order kept, then on time again');
  t.equal(line.counters.late, 1);
  t.throws(() => new FaultyUart(inner, { lateReplyRate: 2 }), /lateReplyRate must be a probability/);
});

t.test('a CheckCRC answered past the timeout: every later CRC still answers its own range', async (t) => {
  const r = await rig({}, {});
  t.teardown(() => r.link.close());
  await r.flasher.connect();
  const truth = (a: number, n: number): number => crc32Raw(r.chip.flash.read(a, n));
  // Three ranges with distinct content, so a CRC one request behind is visibly wrong.
  const ranges = [OFFSET, OFFSET + SECTOR, OFFSET + 2 * SECTOR, 0x1d0000, OFFSET + 3 * SECTOR];
  t.equal(new Set(ranges.map((a) => truth(a, SECTOR))).size, ranges.length, 'the ranges differ');
  // CheckCRC of 4 KiB times out after ~1.1 s (operation allowance + latency): 1.5 s is past it.
  const before = r.flasher.stats.commandRetries;
  for (const [i, a] of ranges.entries()) {
    if (i === 0) lineOf(r).delayNextReply(1500);
    t.equal(await r.flasher.crc(a, SECTOR), truth(a, SECTOR), `CRC of 0x${a.toString(16)} is that range's (request ${i + 1} of ${ranges.length})`);
  }
  t.equal(lineOf(r).counters.late, 1, 'one reply came late');
  t.ok(r.flasher.stats.commandRetries > before, 'the late one was re-sent');
  t.ok(r.flasher.channel.resyncBarriers >= 1, `a resync barrier ran (${r.flasher.channel.resyncBarriers})`);
});

t.test('the barrier is a ReadReg in the BootROM whose echo tells it from older replies', async (t) => {
  const r = await rig({}, {});
  t.teardown(() => r.link.close());
  await r.flasher.connect();
  const sent: Uint8Array[] = [];
  const write = r.link.write.bind(r.link);
  r.link.write = (b: Uint8Array) => (sent.push(b.slice()), write(b));
  lineOf(r).delayNextReply(1500);
  await r.flasher.crc(OFFSET, SECTOR);
  await r.flasher.crc(OFFSET + SECTOR, SECTOR);
  const barriers = sent.filter((b) => b[4] === 0x03 && b[3] === 0x05);
  if (!t.ok(barriers.length >= 1, 'a ReadReg went out after the timeout')) return;
  const addr = new DataView(barriers[0]!.buffer, barriers[0]!.byteOffset).getUint32(5, true);
  t.ok(addr < 0x4000, `its address 0x${addr.toString(16)} is in the BootROM`);
  t.same([...barriers[0]!], [...readReg(addr).bytes], 'byte-exact ReadReg frame: 01 E0 FC 05 03 <addr32>');
  if (barriers.length > 1) t.not(new DataView(barriers[1]!.buffer, barriers[1]!.byteOffset).getUint32(5, true), addr, 'each barrier asks another address');
});

t.test('late replies sprinkled through whole writes with the outside guard: image right, nothing taken for a stray write', async (t) => {
  for (const seed of [3, 11, 29]) {
    const image = pattern(0x20000, seed);
    const r = await rig({}, { seed, lateReplyRate: 0.03, lateReplyMs: 1500 });
    const res = await r.flasher.connect().then(() => r.flasher.write(image, OFFSET));
    t.ok(lineOf(r).counters.late > 0, `seed ${seed}: ${lineOf(r).counters.late} late replies`);
    t.same(res.outsideRestored ?? [], [], `seed ${seed}: no range outside the image taken for changed`);
    assertFlashed(t, r, image, `seed ${seed}`);
    await r.link.close();
  }
});

function lineOf(r: Awaited<ReturnType<typeof rig>>) {
  if (!r.line) throw new Error('rig without a faulty line');
  return r.line;
}
