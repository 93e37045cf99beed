import t, { type Test } from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { ConfigError } from '../rig/core/errors.ts';
import { loadJigFile, parseJig } from '../rig/jig/jig-config.ts';

const DIR = new URL('../fixtures/jigs/', import.meta.url).pathname;
const SHIPPED = readdirSync(DIR).filter((f) => f.endsWith('.json'));
const VIRTUAL_1SLOT = JSON.parse(readFileSync(DIR + 'virtual-1slot.json', 'utf8')) as Record<string, unknown>;

/** Problems listed by a ConfigError thrown from fn (fails the test when nothing is thrown). */
function problems(t: Test, fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    t.type(e, ConfigError);
    return (e as ConfigError).context.problems as string[];
  }
  t.fail('expected a ConfigError');
  return [];
}


// eslint-style note: `any` because the tests poke arbitrary (also invalid) values into the raw shape.
function clone(): { slots: Array<Record<string, any>>; [k: string]: unknown } {
  // Test fixtures are mutated freely below; the shape is the jig schema's.
  return structuredClone(VIRTUAL_1SLOT) as ReturnType<typeof clone>;
}

t.test('every shipped jig file validates', async (t) => {
  t.ok(SHIPPED.includes('virtual-1slot.json') && SHIPPED.includes('virtual-4slot.json') && SHIPPED.includes('example-arduino-pzem-dcttech.json'));
  for (const f of SHIPPED) {
    const jig = loadJigFile(DIR + f);
    t.ok(jig.slots.length >= 1, f);
  }
  const four = loadJigFile(DIR + 'virtual-4slot.json');
  t.same(four.slots.map((s) => s.id), [1, 2, 3, 4]);
  t.equal(four.ioBoards.io0?.layout, 'mega2560');
  const one = loadJigFile(DIR + 'virtual-1slot.json');
  t.equal(one.ioBoards.io0?.layout, 'uno', 'layout defaults to uno');
  t.equal(one.interlock.settleMs, 100);
});

t.test('one ConfigError lists every problem with its path', async (t) => {
  const bad = clone();
  const s = bad.slots[0]!;
  s.io = 'nope';
  s.meter.ref = 'ghost';
  delete s.pins.cen;
  s.pins.mains = 4; // same as uartIsolation
  s.pins.loads[1].pin = 6; // same as load R25
  const list = problems(t, () => parseJig(bad, 'bad.json'));
  t.same(
    [...list].sort(),
    [
      'slots.0.io: unknown I/O board "nope"',
      'slots.0.meter.ref: unknown meter "ghost"',
      'slots.0.pins.cen: Required',
      'slots.0.pins.loads.1.pin: pin 6 on nope already used by load R25',
      'slots.0.pins.mains: pin 4 on nope already used by uartIsolation',
    ],
  );
  t.throws(() => parseJig(bad, 'bad.json'), { message: /invalid jig file bad\.json:\n {2}slots\.0/ });
});

t.test('pins clash across slots on one board, except a shared lid / E-stop', async (t) => {
  const two = clone();
  const second = structuredClone(two.slots[0]!);
  second.id = 2;
  second.uart = { port: 'sim:uart2' };
  for (const k of ['cen', 'power3v3', 'uartIsolation', 'mains', 'button', 'relaySense']) second.pins[k] = second.pins[k] + 20;
  second.pins.loads = [];
  second.pins.ledSensor = { ...second.pins.ledSensor, analog: 1 }; // each slot has its own light sensor
  two.slots.push(second);
  t.doesNotThrow(() => parseJig(two), 'lid 11 and estop 12 shared by both slots');
  second.pins.mains = 5;
  second.pins.lid = 12;
  t.same(problems(t, () => parseJig(two)).sort(), [
    'slots.1.pins.lid: pin 12 on io0 already used by slot 1 estop',
    'slots.1.pins.mains: pin 5 on io0 already used by slot 1 mains (one mains relay for several slots: declare them in "mainsGroups")',
  ]);
  second.id = 1;
  t.match(problems(t, () => parseJig(two)), ['slots.1.id: duplicate slot id 1']);
});

t.test('mainsGroups: one mains relay may feed several slots, only when declared, and the declaration must fit', async (t) => {
  const two = clone();
  const second = structuredClone(two.slots[0]!);
  second.id = 2;
  second.uart = { port: 'sim:uart2' };
  for (const k of ['cen', 'power3v3', 'uartIsolation', 'button', 'relaySense']) second.pins[k] = second.pins[k] + 20;
  second.pins.loads = [];
  second.pins.ledSensor = { ...second.pins.ledSensor, analog: 1 };
  two.slots.push(second);
  const mainsPin = two.slots[0]!.pins.mains as number;
  const declared = { ...two, mainsGroups: { A: { pin: mainsPin, slots: [1, 2] } } };
  t.equal(parseJig(declared).mainsGroups?.A?.slots.length, 2, 'two slots on one declared mains pin');
  t.match(problems(t, () => parseJig(two)), [/pins\.mains: pin 5 on io0 already used by slot 1 mains \(one mains relay/], 'undeclared: still a clash');
  t.same(
    problems(t, () => parseJig({ ...two, mainsGroups: { A: { pin: mainsPin + 1, slots: [1, 2, 3] }, B: { pin: { pin: mainsPin, activeLow: true }, slots: [2, 1] } } })).sort(),
    [
      'mainsGroups.A.slots.0: slot 1 is fed by mains group A (pin 6) but its pins.mains is 5; write the group\'s pin there',
      'mainsGroups.A.slots.1: slot 2 is fed by mains group A (pin 6) but its pins.mains is 5; write the group\'s pin there',
      'mainsGroups.A.slots.2: mains group A: no slot 3 in this jig',
      'mainsGroups.B.pin: the mains relay must not be active-low: StandardFirmata boots with outputs LOW, which would energise mains',
      'mainsGroups.B.slots.0: slot 2 is in mains groups A and B; a plug has one mains feed',
      'mainsGroups.B.slots.1: slot 1 is in mains groups A and B; a plug has one mains feed',
    ],
    'every misfit named with its path',
  );
  t.match(problems(t, () => parseJig({ ...two, mainsGroups: { A: { pin: mainsPin, slots: [1] } } })), ['mainsGroups.A.slots: Array must contain at least 2 element(s)']);
  t.doesNotThrow(() => loadJigFile(DIR + 'virtual-4slot-shared.json'), 'the shared fixture is valid');
});

t.test('missing top-level fields and unreadable files', async (t) => {
  t.same(problems(t, () => parseJig({ name: 'x' })).sort(), ['ioBoards: Required', 'meters: Required', 'slots: Required']);
  t.throws(() => loadJigFile(DIR + 'does-not-exist.json'), ConfigError);
});
