import t from 'tap';
import { VirtualClock } from '../rig/core/clock.ts';
import { hex } from '../rig/core/hex.ts';
import { VirtualFirmataBoard, type VirtualFirmataBoardOptions } from '../sim/firmata/virtual-firmata-board.ts';
import { PIN_MODE } from '../sim/firmata/firmata-protocol.ts';
import * as T from './fixtures/firmata-traces.ts';

type Feed = 'chunk' | 'byte';

/** A board on a capturing UART; `feed` delivers host bytes in one chunk or one byte at a time. */
async function bench(feedMode: Feed, options: VirtualFirmataBoardOptions = {}) {
  const clock = new VirtualClock();
  const board = new VirtualFirmataBoard(options);
  let out: number[] = [];
  board.connect({ send: (b) => out.push(...b) }, clock);
  await clock.sleep(0); // boot
  const outputs: Array<[number, boolean | undefined]> = [];
  board.onOutput((pin, level) => outputs.push([pin, level]));
  return {
    clock,
    board,
    outputs,
    take(): string {
      const r = hex(Uint8Array.from(out));
      out = [];
      return r;
    },
    feed(...msgs: Uint8Array[]): void {
      const bytes = Uint8Array.from(msgs.flatMap((m) => [...m]));
      if (feedMode === 'chunk') board.receive(bytes);
      else for (const b of bytes) board.receive(Uint8Array.of(b));
    },
  };
}

const cat = (...msgs: Uint8Array[]): string => hex(Uint8Array.from(msgs.flatMap((m) => [...m])));

for (const mode of ['chunk', 'byte'] as const) {
  t.test(`[${mode}] boot announces version and firmware; queries answered byte-exact`, async (t) => {
    const b = await bench(mode);
    t.equal(b.take(), hex(T.FIRMATA_BOOT_ANNOUNCE), 'REPORT_VERSION + REPORT_FIRMWARE on reset');
    b.feed(T.FIRMATA_CAPABILITY_QUERY, T.FIRMATA_ANALOG_MAPPING_QUERY, T.FIRMATA_QUERY_FIRMWARE_REQ, T.FIRMATA_REPORT_VERSION_REQ);
    t.equal(
      b.take(),
      cat(T.FIRMATA_UNO_CAPABILITY_RESPONSE, T.FIRMATA_UNO_ANALOG_MAPPING_RESPONSE, T.FIRMATA_REPORT_FIRMWARE, T.FIRMATA_REPORT_VERSION),
    );
    b.feed(T.FIRMATA_VERSION_TIMEOUT_RETRY);
    t.equal(b.take(), cat(T.FIRMATA_REPORT_VERSION, T.FIRMATA_REPORT_FIRMWARE), "firmata.js's retry after 5 s is answered");
    b.feed(T.FIRMATA_PIN_STATE_QUERY_13);
    t.equal(b.take(), hex(T.FIRMATA_PIN_STATE_13_OUTPUT_LOW), 'after reset digital pins are OUTPUT LOW');
    b.board.powerOff();
  });

  t.test(`[${mode}] outputs: SET_PIN_MODE, port-wide DIGITAL_MESSAGE, SET_DIGITAL_PIN_VALUE`, async (t) => {
    const b = await bench(mode);
    b.take();
    t.equal(b.board.driven(13), false, 'reset drives every digital pin LOW');
    b.feed(T.FIRMATA_SET_MODE_13_OUTPUT, T.FIRMATA_DIGITAL_PORT1_PIN13_HIGH);
    t.equal(b.board.driven(13), true);
    t.same(b.outputs, [[13, true]], 'one output event, only for the pin that changed');
    b.feed(T.FIRMATA_PIN_STATE_QUERY_13);
    t.equal(b.take(), hex(T.FIRMATA_PIN_STATE_13_OUTPUT_HIGH));
    b.feed(T.FIRMATA_DIGITAL_PORT1_ALL_LOW);
    t.equal(b.board.driven(13), false);
    b.feed(T.FIRMATA_SET_PIN_13_HIGH);
    t.equal(b.board.driven(13), true, '0xF5 sets a single output pin');
    b.feed(T.FIRMATA_SET_MODE_13_UNKNOWN);
    t.equal(b.take(), hex(T.FIRMATA_STRING_UNKNOWN_PIN_MODE), 'unknown mode is reported as STRING_DATA');
    t.equal(b.board.pinMode(13), PIN_MODE.OUTPUT, 'and the pin keeps its mode');
    b.feed(T.FIRMATA_SYSTEM_RESET);
    // StandardFirmata's systemResetCallback only re-runs pinMode(OUTPUT): the AVR keeps its PORT bit,
    // so a relay driven HIGH stays HIGH. A rig must write its safe levels itself, not rely on FF.
    t.equal(b.board.driven(13), true, 'SYSTEM_RESET does not drop outputs that were HIGH');
    t.same(b.outputs, [[13, true], [13, false], [13, true]]);
    b.board.powerOff();
    t.equal(b.board.driven(13), undefined, 'an unpowered board drives nothing');
  });

  t.test(`[${mode}] digital inputs are reported per port, on change only, inputs only`, async (t) => {
    const b = await bench(mode);
    b.take();
    b.feed(T.FIRMATA_SET_MODE_2_PULLUP, T.FIRMATA_REPORT_DIGITAL_PORT0_ON);
    t.equal(b.take(), hex(T.FIRMATA_DIGITAL_PORT0_PIN2_HIGH), 'REPORT_DIGITAL answers at once; pull-up reads high, outputs masked');
    b.feed(T.FIRMATA_SET_MODE_4_INPUT);
    t.equal(b.take(), '', 'floating input 4 reads low: no change, no report');
    b.board.setInput(4, true);
    t.equal(b.take(), hex(T.FIRMATA_DIGITAL_PORT0_PINS_2_4_HIGH));
    b.board.setInput(4, true);
    t.equal(b.take(), '', 'same level again: nothing sent');
    b.board.setInput(2, false);
    t.equal(b.take(), hex(T.FIRMATA_DIGITAL_PORT0_PIN4_HIGH));
    b.board.setInput(7, true);
    t.equal(b.take(), '', 'pin 7 is an OUTPUT: its level is not reported');
    b.board.powerOff();
  });

  t.test(`[${mode}] analog channels: immediate report, then every sampling interval on the clock`, async (t) => {
    const b = await bench(mode);
    b.take();
    b.board.setAnalog(0, 512);
    b.feed(T.FIRMATA_REPORT_ANALOG_A0_ON);
    t.equal(b.take(), hex(T.FIRMATA_ANALOG_A0_512), 'REPORT_ANALOG answers at once');
    await b.clock.sleep(100);
    t.equal(b.take(), cat(...Array.from({ length: 5 }, () => T.FIRMATA_ANALOG_A0_512)), 'default 19 ms: 5 samples in 100 ms');
    let v = 512;
    b.board.setAnalog(0, () => v);
    v = 900;
    b.feed(T.FIRMATA_SAMPLING_INTERVAL_100);
    await b.clock.sleep(300);
    t.equal(b.take(), cat(...Array.from({ length: 3 }, () => T.FIRMATA_ANALOG_A0_900)), '100 ms interval, source sampled each time');
    b.feed(T.FIRMATA_REPORT_ANALOG_A0_OFF);
    await b.clock.sleep(300);
    t.equal(b.take(), '', 'reporting off: silence');
    t.equal(b.clock.pending(), 0, 'no sampling timer left running');
    b.board.powerOff();
  });

  t.test(`[${mode}] parser survives garbage, stray data, truncated and overlong sysex`, async (t) => {
    const b = await bench(mode);
    b.take();
    const garbage = Uint8Array.from([0x00, 0x13, 0x7f, 0xf0, 0x6b, 0x91, 0x20 /* truncated */]);
    const overlong = Uint8Array.from([0xf0, 0x6b, ...new Array<number>(100).fill(0x01), 0xf7]);
    b.feed(garbage, T.FIRMATA_SET_MODE_13_OUTPUT, overlong, T.FIRMATA_DIGITAL_PORT1_PIN13_HIGH, T.FIRMATA_PIN_STATE_QUERY_13);
    t.equal(b.take(), hex(T.FIRMATA_PIN_STATE_13_OUTPUT_HIGH), 'only the well-formed messages act; overlong sysex dropped');
    t.equal(b.board.driven(13), true);
    b.board.powerOff();
  });
}

t.test('Mega 2560 layout: 70 pins, A0–A15 on 54–69, analog pins usable as digital', async (t) => {
  const b = await bench('byte', { layout: 'mega2560' });
  b.take();
  b.feed(T.FIRMATA_ANALOG_MAPPING_QUERY);
  t.equal(b.take(), hex(T.FIRMATA_MEGA_ANALOG_MAPPING_RESPONSE));
  b.feed(T.FIRMATA_CAPABILITY_QUERY);
  const caps = b.take().split(' ');
  t.equal(caps.filter((x) => x === '7f').length, 70, 'one 7F-terminated group per pin');
  b.board.setAnalog(15, 1023);
  b.feed(Uint8Array.of(0xcf, 0x01));
  t.equal(b.take(), 'ef 7f 07', 'A15 = 1023');
  b.feed(Uint8Array.of(0xf4, 54, PIN_MODE.OUTPUT), Uint8Array.of(0xf5, 54, 1));
  t.equal(b.board.driven(54), true, 'A0 (pin 54) as a digital output');
  t.throws(() => b.board.setAnalog(16, 1), RangeError);
  b.board.powerOff();
});

t.test('DTR auto-reset reboots the sketch (pins float, then announce again)', async (t) => {
  const b = await bench('chunk', { bootMs: 250 });
  b.take();
  b.feed(T.FIRMATA_SET_MODE_13_OUTPUT, T.FIRMATA_SET_PIN_13_HIGH);
  b.board.modemLines({ dtr: true, rts: true });
  t.equal(b.board.running(), false);
  t.equal(b.board.driven(13), undefined, 'pins float while the bootloader runs');
  b.feed(T.FIRMATA_REPORT_VERSION_REQ);
  t.equal(b.take(), '', 'host bytes during boot are ignored');
  await b.clock.sleep(250);
  t.equal(b.take(), hex(T.FIRMATA_BOOT_ANNOUNCE));
  t.equal(b.board.driven(13), false);
  b.board.modemLines({ dtr: true, rts: false });
  t.equal(b.board.running(), true, 'only a DTR edge resets');
  b.board.powerOff();
});
