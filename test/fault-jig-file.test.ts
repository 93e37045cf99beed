import t from 'tap';
import { readFileSync } from 'node:fs';
import { VirtualClock } from '../rig/core/clock.ts';
import { parseJig } from '../rig/jig/jig-config.ts';
import { VirtualJig } from '../sim/jig/virtual-jig.ts';
import { UNKNOWN_FLASH_ID } from '../sim/jig/slot-faults.ts';
import { FaultyUart } from '../sim/serial/uart-faults.ts';

/** The jig file's `faults` block: validated, applied per run and per slot by the virtual jig. */
const FOUR = JSON.parse(readFileSync(new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url), 'utf8')) as Record<string, unknown> & { slots: Array<Record<string, unknown>> };

function withFaults(run: unknown, slot2?: unknown): unknown {
  const j = structuredClone(FOUR);
  if (run !== undefined) j.faults = run;
  if (slot2 !== undefined) j.slots[1]!.faults = slot2;
  return j;
}

t.test('invalid faults are refused naming the path and the problem', async (t) => {
  t.throws(() => parseJig(withFaults({ uart: { byteErrorRate: 2 } }), 'jig.json'), /faults\.uart\.byteErrorRate/);
  t.throws(() => parseJig(withFaults({ chip: { brownOuts: [{ during: 'read', nth: 1 }] } }), 'jig.json'), /faults\.chip\.brownOuts\.0\.during/);
  t.throws(() => parseJig(withFaults({ chip: { failPrograms: { sixteen: 1 } } }), 'jig.json'), /sector addresses/);
  t.throws(() => parseJig(withFaults(undefined, { uart: { bitErrors: 1 } }), 'jig.json'), /slots\.1\.faults\.uart.*bitErrors|bitErrors/);
});

t.test('run-wide faults reach every slot, a slot block replaces the run-wide one', async (t) => {
  const spec = parseJig(withFaults({ uart: { byteErrorRate: 1e-5 }, chip: { unknownFlashId: true } }, { chip: { statusRegisterLocked: true } }), 'jig.json');
  const clock = new VirtualClock();
  const vj = VirtualJig.fromSpec(spec, { clock, seed: 3, http: false });
  t.teardown(() => vj.dispose());
  const uarts = spec.slots.map((s) => vj.slotLine(s.id));
  t.equal(uarts.length, 4);
  t.ok(uarts.every((d) => d instanceof FaultyUart), 'every slot UART is behind the faulty line');
  t.same(vj.slot(1).chip.flash.jedecId, UNKNOWN_FLASH_ID, 'slot 1: run-wide chip fault');
  t.same(vj.slot(3).chip.flash.jedecId, UNKNOWN_FLASH_ID, 'slot 3: run-wide chip fault');
  t.notSame(vj.slot(2).chip.flash.jedecId, UNKNOWN_FLASH_ID, 'slot 2: its own chip block replaced the run-wide one');

  const clean = VirtualJig.fromSpec(parseJig(structuredClone(FOUR), 'jig.json'), { clock, seed: 3, http: false });
  t.teardown(() => clean.dispose());
  t.notOk([1, 2, 3, 4].some((id) => clean.slotLine(id) instanceof FaultyUart), 'no faults block: no faulty line');
});
