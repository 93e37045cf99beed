import t from 'tap';
import { parseSerialOption, scanSerials } from '../station/unit-serial.ts';
import { SlotStateMachine, phaseOfStep } from '../station/slot-state.ts';

async function* lines(xs: string[]): AsyncGenerator<string> {
  for (const x of xs) yield x;
}

t.test('--serial SLOT=SERIAL: validated against the plan pattern, per slot, no repeats', async (t) => {
  const pattern = 'RMC-[0-9]{6}';
  t.same([...parseSerialOption(['1=RMC-000001,2=RMC-000002', '4=RMC-000004'], { slots: [1, 2, 3, 4], pattern })], [[1, 'RMC-000001'], [2, 'RMC-000002'], [4, 'RMC-000004']]);
  t.throws(() => parseSerialOption(['1=RMC-00001'], { slots: [1], pattern }), { name: 'ConfigError', message: /'RMC-00001' does not match the plan's serial pattern/ });
  t.throws(() => parseSerialOption(['1=xRMC-000001'], { slots: [1], pattern }), /does not match/, 'the pattern is anchored');
  t.throws(() => parseSerialOption(['5=RMC-000005'], { slots: [1, 2], pattern }), /slot 5 is not in this run/);
  t.throws(() => parseSerialOption(['1=RMC-000001,2=RMC-000001'], { slots: [1, 2], pattern }), /given for slots 1 and 2/);
  t.throws(() => parseSerialOption(['RMC-000001'], { slots: [1], pattern }), /write SLOT=SERIAL/);
});

t.test('scanned serials: one line per unit; a bad or repeated scan is refused and asked again', async (t) => {
  const prompts: string[] = [];
  const got = await scanSerials([1, 2], { pattern: 'SN[0-9]{4}', lines: lines(['SN12', ' SN0001 ', 'SN0001', 'SN0002']), prompt: (p) => prompts.push(p) });
  t.same([...got], [[1, 'SN0001'], [2, 'SN0002']]);
  t.ok(prompts.some((p) => /'SN12' does not match/.test(p)));
  t.ok(prompts.some((p) => /'SN0001' is already scanned for another slot/.test(p)));
  await t.rejects(scanSerials([3], { pattern: 'SN[0-9]{4}', lines: lines([]), prompt: () => undefined }), { name: 'ConfigError', message: /no serial for slot 3: the input ended/ });
  await t.rejects(scanSerials([3], { pattern: 'SN[0-9]{4}', lines: lines(['a', 'b', 'c']), prompt: () => undefined, tries: 3 }), /slot 3: no valid serial after 3 scans/);
});

t.test('slot state machine: forward through the plan, safe from anywhere, done only after safe', async (t) => {
  const m = new SlotStateMachine(1);
  const seq = [
    { name: 'jig ready (lid closed, E-stop released, safe state)' },
    { name: 'connect UART and 3V3 (mains off)', suite: 'flash' },
    { name: 'flash X', suite: 'flash' },
    { name: 'provision RMC021 offline over the ROM (mains off)', suite: 'provision' },
    { name: 'isolate UART, then mains on (break-before-make)', suite: 'smoke' },
    { name: 'button toggles the relay', suite: 'smoke' },
    { name: 'mains on, plug online, relay closed', suite: 'calibrate' },
    { name: 'calibrate at R100', suite: 'calibrate' },
    { name: 'metering at R25', suite: 'metering' },
    { name: 're-verify at R25', suite: 'calibrate' },
    { name: 'safe state', kind: 'safe-state' as const },
  ];
  t.same(seq.map((s) => m.next(s)), ['power-link', 'power-link', 'flash', 'provision', 'boot', 'verify', 'verify', 'calibrate', 're-verify', 're-verify', 'safe']);
  m.to('done');
  t.throws(() => m.to('safe'), /no transition done -> safe/);
  const a = new SlotStateMachine(2);
  a.to('flash');
  t.throws(() => a.to('done'), /no transition flash -> done/, 'done only after the safe state');
  t.throws(() => a.to('power-link'), /no transition flash -> power-link/, 'never backwards');
  t.equal(a.to('safe'), 'safe', 'safe from any phase (an abort)');
  t.throws(() => a.to('verify'), /safe -> verify/);
  t.equal(phaseOfStep({ name: 'x', kind: 'cleanup' }), 'record');
});
