import t from 'tap';
import { RealClock } from '../rig/core/clock.ts';
import { InstrumentError, ProtocolError, TimeoutError } from '../rig/core/errors.ts';
import { hex } from '../rig/core/hex.ts';
import { ScpiClient } from '../rig/meter/scpi/scpi-client.ts';
import { Wt310eMeter } from '../rig/meter/scpi/wt310e-meter.ts';
import {
  encodeDevDepMsgOut,
  encodeRequestDevDepMsgIn,
  nextTag,
  parseCapabilities,
  parseDevDepMsgIn,
  splitDevDepMsgOut,
  USBTMC_HEADER_SIZE,
} from '../rig/meter/usbtmc/usbtmc-codec.ts';
import { UsbtmcTransport, type UsbtmcDevice } from '../rig/meter/usbtmc/usbtmc-transport.ts';
import { VirtualWt310e } from '../sim/scpi/virtual-wt310e.ts';
import * as T from './fixtures/meter-traces.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

t.test('codec: headers byte-exact, padding, splitting, tags', async (t) => {
  t.equal(hex(encodeDevDepMsgOut(1, enc('*IDN?'), true)), hex(T.USBTMC_OUT_IDN_TAG1));
  t.equal(hex(encodeRequestDevDepMsgIn(2, 4096)), hex(T.USBTMC_REQ_IN_TAG2_4096));
  t.equal(hex(encodeRequestDevDepMsgIn(255, 64, 0x0a)), hex(T.USBTMC_REQ_IN_TAG255_TERM_LF));
  t.equal(encodeDevDepMsgOut(3, enc('1234'), true).length, 16, 'already aligned: no padding');
  t.equal(encodeDevDepMsgOut(3, new Uint8Array(0), true).length, 12);
  t.same([nextTag(0), nextTag(1), nextTag(254), nextTag(255)], [1, 2, 255, 1], 'wraps 255 -> 1, never 0');
  t.throws(() => encodeDevDepMsgOut(0, enc('x'), true), RangeError);

  const { transfers, lastTag } = splitDevDepMsgOut(enc('ABCDEFGHIJ'), 4, 254);
  t.equal(lastTag, 2);
  t.same(transfers.map((x) => [x[1], x[2], x[4], x[8], new TextDecoder().decode(x.subarray(12, 12 + x[4]!))]), [
    [255, 0x00, 4, 0, 'ABCD'],
    [1, 0xfe, 4, 0, 'EFGH'],
    [2, 0xfd, 2, 1, 'IJ'],
  ], 'tags 255,1,2; EOM only on the last');
  t.same(transfers.map((x) => x.length), [16, 16, 16]);

  const h = parseDevDepMsgIn(T.USBTMC_IN_OK_TAG2, 2);
  t.same([h.tag, h.transferSize, h.eom, new TextDecoder().decode(h.data)], [2, 3, true, 'OK\n'], 'padding dropped');
  t.throws(() => parseDevDepMsgIn(T.USBTMC_IN_OK_TAG2, 3), ProtocolError, 'wrong bTag');
  const badInverse = T.USBTMC_IN_OK_TAG2.slice();
  badInverse[2] = 0;
  t.throws(() => parseDevDepMsgIn(badInverse, 2), ProtocolError);
  const badMsg = T.USBTMC_IN_OK_TAG2.slice();
  badMsg[0] = 1;
  t.throws(() => parseDevDepMsgIn(badMsg, 2), ProtocolError, 'MsgID must be 2');
  t.throws(() => parseDevDepMsgIn(T.USBTMC_IN_OK_TAG2.subarray(0, 8), 2), ProtocolError, 'short header');

  t.same(parseCapabilities(T.USBTMC_CAPABILITIES_USB488), {
    status: 1, bcdUsbtmc: 0x0100, indicatorPulse: true, talkOnly: false, listenOnly: false, termChar: true,
    bcdUsb488: 0x0100, usb488InterfaceCapabilities: 7, usb488DeviceCapabilities: 15,
  });
  t.throws(() => parseCapabilities(T.USBTMC_CAPABILITIES_USB488.subarray(0, 10)), ProtocolError);
});

/**
 * A fake USBTMC device: records every transfer and control request, reassembles DEV_DEP_MSG_OUT
 * messages for a virtual WT310E, and answers REQUEST_DEV_DEP_MSG_IN in bulk-IN packets of `packet` bytes.
 */
class FakeUsbtmcDevice implements UsbtmcDevice {
  readonly interfaceNumber = 0;
  readonly bulkInAddress = 0x81;
  readonly bulkOutAddress = 0x02;
  log: string[] = [];
  #msg: number[] = [];
  #pending: Uint8Array = new Uint8Array(0);
  #inQueue: Uint8Array[] = [];
  constructor(readonly sim: VirtualWt310e, readonly packet = 64) {}
  async bulkOut(data: Uint8Array): Promise<void> {
    this.log.push(`OUT ${hex(data.subarray(0, USBTMC_HEADER_SIZE))}`);
    const v = new DataView(data.buffer, data.byteOffset, data.length);
    const size = v.getUint32(4, true);
    if (data[0] === 1) {
      this.#msg.push(...data.subarray(12, 12 + size));
      if (data[8]! & 1) {
        const reply = this.sim.handleMessage(new TextDecoder().decode(Uint8Array.from(this.#msg)));
        this.#msg = [];
        if (reply) this.#pending = Uint8Array.from([...this.#pending, ...reply, 0x0a]);
      }
    } else if (data[0] === 2 && this.#pending.length) {
      const part = this.#pending.subarray(0, size);
      this.#pending = this.#pending.subarray(part.length);
      const frame = new Uint8Array(12 + ((part.length + 3) & ~3));
      frame.set([2, data[1]!, data[2]!, 0, part.length & 0xff, part.length >> 8, 0, 0, this.#pending.length ? 0 : 1]);
      frame.set(part, 12);
      for (let o = 0; o < frame.length; o += this.packet) this.#inQueue.push(frame.subarray(o, o + this.packet));
    }
  }
  async bulkIn(maxLength: number): Promise<Uint8Array> {
    const next = this.#inQueue.shift();
    this.log.push(next ? `IN ${next.length}` : 'IN timeout');
    if (!next) throw new TimeoutError('bulk-IN timed out');
    return next.subarray(0, maxLength);
  }
  async controlIn(bmRequestType: number, bRequest: number, wValue: number, wIndex: number, length: number): Promise<Uint8Array> {
    this.log.push(`CTRL ${bmRequestType.toString(16)} ${bRequest} ${wValue} ${wIndex.toString(16)} ${length}`);
    if (bRequest === 7) return T.USBTMC_CAPABILITIES_USB488;
    if (bRequest === 3) return Uint8Array.of(0x01, wValue);
    return new Uint8Array(length).fill(0).map((_, i) => (i === 0 ? 0x01 : 0));
  }
  async clearHalt(ep: number): Promise<void> {
    this.log.push(`HALT ${ep.toString(16)}`);
  }
  async close(): Promise<void> {
    this.log.push('CLOSE');
  }
}

t.test('SCPI over USBTMC with a recording fake device', async (t) => {
  const sim = new VirtualWt310e({ source: () => ({ volts: 229.9, amps: 1.5, watts: 340, pf: 0.99, hz: 50, wh: 10 }), serial: 'C2QD777', ideal: true });
  const dev = new FakeUsbtmcDevice(sim, 16);
  // Small transfers force message splitting and multi-packet replies.
  const transport = new UsbtmcTransport(dev, 'usbtmc:0b21:0025', { maxTransferSize: 8, readSize: 24 });
  t.same((await transport.capabilities()).termChar, true);
  const scpi = new ScpiClient(transport);
  t.equal((await scpi.identify()).serial, 'C2QD777');
  t.same(dev.log.slice(0, 5), [
    'CTRL a1 7 0 0 24',
    'OUT 01 01 fe 00 05 00 00 00 01 00 00 00',
    'OUT 02 02 fd 00 18 00 00 00 00 00 00 00',
    'IN 16',
    'IN 16',
  ], 'capabilities, *IDN? in one transfer, then a 24-byte request read as 16-byte packets');
  t.equal(dev.log.filter((l) => l.startsWith('OUT 02')).length, 2, 'a 30-byte reply needs two 24-byte requests (EOM on the second)');

  const meter = await Wt310eMeter.open(scpi, { clock: new RealClock(), calibrationDate: '2026-02-01' });
  t.match(await meter.read(), { volts: 229.9, amps: 1.5, watts: 340, pf: 0.99, hz: 50 });
  const outs = dev.log.filter((l) => l.startsWith('OUT 01'));
  t.ok(outs.some((l) => l.includes('08 00 00 00 00')), 'long commands split into 8-byte transfers without EOM');

  dev.log = [];
  const err = (await scpi.query(':NOPE?', 100).catch((e: unknown) => e)) as InstrumentError;
  t.type(err, InstrumentError);
  const tag = Number.parseInt(dev.log.find((l) => l.startsWith('OUT 02'))!.split(' ')[2]!, 16);
  t.same(dev.log.slice(-3), ['IN timeout', `CTRL a2 3 ${tag} 81 2`, 'CTRL a2 4 0 81 8'], 'timeout aborts the bulk-IN transfer with its bTag');
  await meter.close();
  t.equal(dev.log.at(-1), 'CLOSE');
});
