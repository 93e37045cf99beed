import t from 'tap';
import { SerialPortStream } from '@serialport/stream';
import { VirtualClock, type Clock } from '../rig/core/clock.ts';
import { InterlockError } from '../rig/core/errors.ts';
import { openJigBoard, type FirmataStream } from '../rig/jig/jig-board.ts';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { SlotIo } from '../rig/jig/slot-io.ts';
import { VirtualFirmataBoard } from '../sim/firmata/virtual-firmata-board.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import type { ModemLines, UartTx, VirtualUartDevice } from '../sim/serial/uart-device.ts';

/**
 * The interlock's Firmata write confirmation against a board that reports the wrong level for a
 * pin (a stuck relay driver, a welded contact read back through the pin): the write must be
 * refused and the interlock must trip to its safe state and latch. The dcttech path has the same
 * test in jig-usb-backends.test.ts.
 */

const JIG = loadJigFile(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url).pathname);
// virtual-1slot pins: cen 2, 3V3 3, uartIsolation 4, mains 5, loads 6/7/8, lid 11, estop 12 (all active high)
const PIN = { p3v3: 3, uart: 4, mains: 5, r25: 6, lid: 11, estop: 12 };
const PIN_STATE_RESPONSE = [0xf0, 0x6e] as const;

/** The real virtual board, except that PIN_STATE_RESPONSE reports `stuck[pin]` for the pins listed. */
class StuckPinBoard implements VirtualUartDevice {
  readonly stuck = new Map<number, 0 | 1>();
  constructor(readonly board: VirtualFirmataBoard) {}
  baudRate(): number {
    return this.board.baudRate();
  }
  connect(tx: UartTx, clock: Clock): void {
    this.board.connect({ send: (bytes) => tx.send(this.#rewrite(bytes)) }, clock);
  }
  receive(bytes: Uint8Array): void {
    this.board.receive(bytes);
  }
  modemLines(lines: ModemLines): void {
    this.board.modemLines?.(lines);
  }
  /** F0 6E <pin> <mode> <state7>... F7: replace the state of a stuck pin (the board sends whole messages per send). */
  #rewrite(bytes: Uint8Array): Uint8Array {
    const out = bytes.slice();
    for (let i = 0; i + 4 < out.length; i++) {
      if (out[i] !== PIN_STATE_RESPONSE[0] || out[i + 1] !== PIN_STATE_RESPONSE[1]) continue;
      const level = this.stuck.get(out[i + 2]!);
      if (level !== undefined) out[i + 4] = level;
    }
    return out;
  }
}

async function rig() {
  const clock = new VirtualClock();
  const bus = new VirtualSerialBus(clock);
  const board = new VirtualFirmataBoard({ layout: 'uno' });
  const dev = new StuckPinBoard(board);
  bus.attach('sim:io0', dev);
  const stream = new SerialPortStream({ binding: bus.binding, path: 'sim:io0', baudRate: 57600 });
  const jb = await openJigBoard({ stream: stream as unknown as FirmataStream, clock, timeoutMs: 2000, name: 'io0' });
  board.setInput(PIN.lid, true);
  board.setInput(PIN.estop, false);
  const slot = await SlotIo.open(jb, JIG, 1, { clock });
  await clock.sleep(5);
  const teardown = async (): Promise<void> => {
    slot.dispose();
    board.powerOff();
    if (stream.isOpen) await new Promise<void>((r) => stream.close(() => r()));
  };
  return { clock, board, dev, slot, teardown };
}

t.test('a load relay that reads back open after "close": refused, mains tripped off, latched', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const il = r.slot.interlock;
  await il.mainsOn();
  t.equal(r.board.driven(PIN.mains), true);
  r.dev.stuck.set(PIN.r25, 0);
  const err = await il.setLoad('R25', true).catch((e: unknown) => e);
  t.type(err, InterlockError, 'the write is refused');
  await r.clock.sleep(10);
  const s = il.state();
  t.equal(s.fault?.reason, 'write-failed');
  t.match(s.fault?.detail, /load:R25/);
  t.equal(r.board.driven(PIN.mains), false, 'mains opened by the trip');
  t.equal(r.board.driven(PIN.r25), false, 'the load output driven off too');
  t.not(s.loads.R25, 'on', 'the load is never reported on');
  await t.rejects(il.mainsOn(), /latched fault/);
});

t.test('a mains relay that reads back closed after "open": mains in doubt, UART side refused', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const il = r.slot.interlock;
  await il.mainsOn();
  r.dev.stuck.set(PIN.mains, 1);
  await t.rejects(il.mainsOff(), InterlockError, 'mains off is not confirmed');
  await r.clock.sleep(10);
  const s = il.state();
  t.equal(s.fault?.reason, 'write-failed');
  t.not(s.mains, 'off', 'not reported off');
  t.equal(r.board.driven(PIN.uart), false, 'UART isolation stays open');
  await t.rejects(il.connectUart(), InterlockError, 'no UART/3V3 while mains may be on');
  t.equal(r.board.driven(PIN.uart), false);
  t.equal(r.board.driven(PIN.p3v3), false);
});

t.test('a UART-isolation relay that reads back open after "close": refused, no mains afterwards', async (t) => {
  const r = await rig();
  t.teardown(r.teardown);
  const il = r.slot.interlock;
  r.dev.stuck.set(PIN.uart, 0);
  await t.rejects(il.connectUart(), InterlockError);
  await r.clock.sleep(10);
  t.equal(il.state().fault?.reason, 'write-failed');
  t.not(il.state().uart, 'on');
  await t.rejects(il.mainsOn(), /latched fault/, 'the UART side is in doubt: mains stays off');
  t.equal(r.board.driven(PIN.mains), false);
});
