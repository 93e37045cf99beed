import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { loadJigFile } from '../rig/jig/jig-config.ts';
import { runStation } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { syntheticStationImage, virtualStationWiring } from './fixtures/virtual-station.ts';

/**
 * Two runStation calls on one in-process virtual jig: the first closes every port it opened (slot 2's
 * SCPI meter on sim:wt2 among them), so the second opens them again and its unit passes (it once found
 * sim:wt2 still open). Model time.
 */
const JIG_PATH = new URL('../fixtures/jigs/virtual-4slot.json', import.meta.url).pathname;
const PLANS = new URL('../fixtures/plans', import.meta.url).pathname;

t.test('a second run on the same in-process jig opens every port again', async (t) => {
  const jig = loadJigFile(JIG_PATH);
  const clock = new VirtualClock();
  const sim = startVirtualJig(jig, { clock });
  t.teardown(() => sim.vj.dispose());
  const run = () =>
    runStation({ jig, jigPath: JIG_PATH, plan: loadPlan('smoke', PLANS), image: syntheticStationImage({ seed: 3, appBytes: 100_000 }), baudRate: 2_000_000, outDir: mkdtempSync(join(tmpdir(), 'plugrig-second-run-')), clock, log: createLogger({}, 'silent'), slots: [2], ...virtualStationWiring(sim) });
  const [first] = await run();
  t.equal(first!.verdict, 'pass', first!.reason ?? 'first run passed');
  const [second] = await run();
  t.equal(second!.verdict, 'pass', second!.reason ?? 'second run passed: no port left open by the first');
});
