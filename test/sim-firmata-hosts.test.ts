import { createRequire } from 'node:module';
import { EventEmitter } from 'node:events';
import t, { type Test } from 'tap';
import { SerialPortStream } from '@serialport/stream';
import five from 'johnny-five';
import { RealClock } from '../rig/core/clock.ts';
import { VirtualSerialBus } from '../sim/serial/virtual-binding.ts';
import { VirtualFirmataBoard } from '../sim/firmata/virtual-firmata-board.ts';

/** The slice of firmata.js (package 'firmata', no type declarations) this test touches. */
interface FirmataHost extends EventEmitter {
  isReady: boolean;
  firmware: { name: string; version: { major: number; minor: number } };
  pins: Array<{ supportedModes: number[]; analogChannel: number }>;
  analogPins: number[];
  MODES: { INPUT: number; OUTPUT: number; ANALOG: number; PWM: number; PULLUP: number };
  pinMode(pin: number, mode: number): void;
  digitalWrite(pin: number, value: number): void;
  digitalRead(pin: number, cb: (value: number) => void): void;
  analogRead(channel: number, cb: (value: number) => void): void;
}
type FirmataCtor = new (port: unknown, options?: Record<string, unknown>) => FirmataHost;
// 'firmata' is CommonJS without types; require() returns any, narrowed to the interface above.
const Firmata = createRequire(import.meta.url)('firmata') as FirmataCtor;

/** Real wall-clock bus (firmata.js and johnny-five run their own timers). Board attached like a USB Uno: DTR wired. */
function setup(t: Test) {
  const clock = new RealClock();
  const bus = new VirtualSerialBus(clock);
  const board = new VirtualFirmataBoard({ layout: 'uno' });
  bus.attach('sim:io0', board, { modemLines: true });
  const stream = new SerialPortStream({ binding: bus.binding, path: 'sim:io0', baudRate: 57600 });
  t.teardown(async () => {
    if (stream.isOpen) await new Promise<void>((resolve) => stream.close(() => resolve()));
    board.powerOff();
    bus.detach('sim:io0');
  });
  return { board, stream };
}

function until(predicate: () => boolean, what: string, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = (): void => {
      if (predicate()) resolve();
      else if (Date.now() - started > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 2);
    };
    poll();
  });
}

t.test('unmodified firmata.js reaches ready and drives the virtual board', async (t) => {
  const { board, stream } = setup(t);
  // No reportVersionTimeout override: opening the port asserts DTR, the Uno auto-resets and announces itself.
  const host = new Firmata(stream);
  await new Promise<void>((resolve, reject) => {
    host.once('ready', resolve);
    host.once('error', reject);
  });
  t.equal(host.firmware.name, 'StandardFirmata.ino');
  t.same(host.firmware.version, { major: 2, minor: 5 });
  t.equal(host.pins.length, 20, 'capabilities parsed: 20 pins (UNO)');
  t.same(host.analogPins, [14, 15, 16, 17, 18, 19]);
  t.ok(host.pins[3]!.supportedModes.includes(host.MODES.PWM), 'pin 3 offers PWM');

  host.pinMode(7, host.MODES.OUTPUT);
  host.digitalWrite(7, 1);
  await until(() => board.driven(7) === true, 'pin 7 high');
  host.digitalWrite(7, 0);
  await until(() => board.driven(7) === false, 'pin 7 low');

  const digital: number[] = [];
  host.pinMode(2, host.MODES.PULLUP);
  host.digitalRead(2, (v) => digital.push(v));
  await until(() => digital.at(-1) === 1, 'pull-up reads 1');
  board.setInput(2, false);
  await until(() => digital.at(-1) === 0, 'pressed reads 0');

  const analog: number[] = [];
  board.setAnalog(0, 900);
  host.analogRead(0, (v) => analog.push(v));
  await until(() => analog.length >= 3, 'three analog samples');
  t.same(analog.slice(0, 3), [900, 900, 900]);
});

t.test('unmodified johnny-five (io = firmata.js) reaches ready; Relay/Pin/Sensor drive the board', async (t) => {
  const { board, stream } = setup(t);
  const io = new Firmata(stream);
  const options = { io, repl: false, debug: false, sigint: false };
  const j5 = new five.Board(options);
  await new Promise<void>((resolve, reject) => {
    j5.on('ready', resolve);
    j5.on('error', reject);
  });
  t.equal(j5.isReady, true);

  const relay = new five.Relay({ pin: 8, type: 'NC', board: j5 });
  relay.open(); // NC relay: "open" drives the pin HIGH
  await until(() => board.driven(8) === true, 'NC relay open -> pin 8 high');
  relay.close();
  await until(() => board.driven(8) === false, 'NC relay closed -> pin 8 low');

  board.setAnalog(1, 40);
  const sensor = new five.Sensor({ pin: 'A1', freq: 25, board: j5 });
  const seen: number[] = [];
  sensor.on('data', function (this: five.Sensor) {
    seen.push(this.value);
  });
  await until(() => seen.includes(40), 'sensor reads 40');
  board.setAnalog(1, 900);
  await until(() => seen.includes(900), 'sensor follows the analog input to 900');
  (sensor as five.Sensor & { disable(): void }).disable(); // J5 has it; @types/johnny-five does not
});
