import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RealClock } from '../rig/core/clock.ts';
import { PlugrigError, TransportError } from '../rig/core/errors.ts';
import { createLogger } from '../rig/core/log.ts';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { classifyImage } from '../firmware/image.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { runStation } from '../station/run-station.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';

const JIG_PATH = new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url).pathname;

t.test('4 slots in parallel; slot 2 adapter unplugged mid-flash: slot 2 fails cleanly, the others pass', async (t) => {
  const jig = loadJigFile(JIG_PATH);
  const clock = new RealClock();
  const { bus, vj, endpoints } = startVirtualJig(jig, { clock });
  t.teardown(() => vj.dispose());
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 3, appBytes: 200_000 });
  const info = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' });
  const plan = info.bytesToWrite(false);
  const outDir = mkdtempSync(join(tmpdir(), 'plugrig-station-'));

  // Pull slot 2's USB-UART once its chip is busy taking sectors.
  let unplugged = false;
  const watch = setInterval(() => {
    if (!unplugged && (vj.slot(2).chip.counters.commands.FlashWrite4K ?? 0) >= 3) {
      unplugged = true;
      bus.unplug('sim:uart2');
    }
  }, 5);
  t.teardown(() => clearInterval(watch));

  const results = await runStation({
    jig,
    jigPath: JIG_PATH,
    image: { bytes: plan.bytes, offset: plan.offset, name: im.name },
    baudRate: 2_000_000,
    outDir,
    clock,
    log: createLogger({}, 'silent'),
    endpoints,
  });
  t.ok(unplugged, 'the adapter was pulled during the flash');
  t.same(results.map((r) => [r.slot, r.passed]), [[1, true], [2, false], [3, true], [4, true]]);
  const s2 = results[1]!;
  const flashStep = s2.steps.find((s) => s.name.startsWith('flash'))!;
  t.equal(flashStep.status, 'fail');
  // Typed, with the vanished port as the root cause (the flasher adds phase and address).
  const chain: unknown[] = [];
  for (let e: unknown = flashStep.error; e; e = (e as { cause?: unknown }).cause) chain.push(e);
  t.ok(chain[0] instanceof PlugrigError, `typed error: ${(chain[0] as Error).message}`);
  t.ok(chain.some((e) => e instanceof TransportError), 'caused by the transport, not a timeout or a crash');
  t.match((chain[0] as PlugrigError).context, { phase: 'write' }, 'carries the flash phase');
  t.type((chain[0] as PlugrigError).context.address, 'number', 'and the sector address');
  t.same(s2.steps.filter((s) => s.status === 'skip').length, 4, 'the mains steps of slot 2 were skipped');
  t.equal(s2.steps.at(-1)!.status, 'pass', 'slot 2 still ended in its safe state');
  for (const r of results) {
    const unsafe = vj.slot(r.slot).history.where((s) => s.mainsEnergised && (s.uartConnected || s.supply3v3));
    t.same(unsafe, [], `slot ${r.slot}: mains never on together with UART or 3V3 (physical history)`);
  }
  t.equal(vj.slot(2).history.where((s) => s.mainsEnergised).length, 0, 'slot 2 never got mains');
  const unit = JSON.parse(readFileSync(join(outDir, 'slot-2.json'), 'utf8')) as { passed: boolean; steps: Array<{ error?: string }> };
  t.equal(unit.passed, false);
  t.match(unit.steps.find((s) => s.error)?.error, /closed|unplugged|vanished|gone/i);
});
