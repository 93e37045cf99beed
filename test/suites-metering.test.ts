import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../rig/core/clock.ts';
import { createLogger } from '../rig/core/log.ts';
import { parseJig } from '../rig/jig/jig-config.ts';
import { loadDeviceTemplate } from '../rig/dut/device-template.ts';
import { classifyImage } from '../firmware/image.ts';
import { makeSyntheticImage } from '../firmware/synthetic.ts';
import { runStation } from '../station/run-station.ts';
import { loadPlan } from '../suites/plan/load-plan.ts';
import { startVirtualJig } from '../sim/jig/in-process-jig.ts';
import { DEFAULT_VIRTUAL_WIFI } from '../sim/jig/virtual-jig.ts';
import { plugResolver, simPlugAddress } from '../cli/commands/dut.ts';

const JIG = parseJig(JSON.parse(readFileSync(new URL('../fixtures/jigs/virtual-1slot.json', import.meta.url), 'utf8')), 'virtual-1slot (test)');

function image(): { bytes: Uint8Array; offset: number; name: string } {
  const im = makeSyntheticImage({ chip: 'BK7231N', kind: 'ua', version: '1.18.42', seed: 5, appBytes: 32 * 1024 });
  const plan = classifyImage({ name: im.name, bytes: im.bytes, targetChip: 'BK7231N' }).bytesToWrite(false);
  return { bytes: plan.bytes, offset: plan.offset, name: im.name };
}

/** flash + provision + the given suites, as a plan file in a fresh directory. */
function planWith(suites: unknown[]): ReturnType<typeof loadPlan> {
  const dir = mkdtempSync(join(tmpdir(), 'plugrig-meterplan-'));
  const plan = {
    schema: 'plugrig.plan/1',
    name: 'metering-test',
    device: { template: 'CB2S-RMC021' },
    defaults: { retries: 0, stepTimeoutMs: 120000, onMarginal: 'fail' },
    suites: [{ suite: 'flash', diff: true, limits: { flashTime: { high: 60, guardBand: 'none' } } }, { suite: 'provision' }, ...suites],
  };
  writeFileSync(join(dir, 'metering-test.json'), JSON.stringify(plan));
  return loadPlan('metering-test', dir);
}

export async function runVirtual(suites: unknown[], o: { defects?: string[] } = {}) {
  const clock = new VirtualClock();
  const sim = startVirtualJig(JIG, { clock, plugModel: 'obk', ...(o.defects ? { defects: () => o.defects! } : {}) });
  try {
    const results = await runStation({
      jig: JIG,
      jigPath: 'virtual-1slot (test)',
      plan: planWith(suites),
      image: image(),
      baudRate: 2_000_000,
      outDir: mkdtempSync(join(tmpdir(), 'plugrig-meter-')),
      clock,
      log: createLogger({}, 'silent'),
      endpoints: sim.endpoints,
      provisioning: { template: loadDeviceTemplate('fixtures/devices/rmc021.json'), wifi: DEFAULT_VIRTUAL_WIFI, secrets: [] },
      resolveHttp: plugResolver(sim, sim.endpoints),
      defaultPlug: (id: number) => ({ url: simPlugAddress(id) }),
    });
    return { slot: results[0]!, modelMs: clock.now(), sim };
  } finally {
    await sim.vj.dispose();
  }
}

const METERING = { suite: 'metering', loadPoints: [{ load: 'none' }, { load: 'R100' }, { load: 'M60' }], limits: { powerErrorPct: { nominal: 0, tolerance: 20 }, voltageErrorPct: { nominal: 0, tolerance: 20 }, currentErrorPct: { nominal: 0, tolerance: 20 }, pfError: { nominal: 0, tolerance: 0.2 } } };

t.test('metering on the virtual jig: every point measured with a budget', async (t) => {
  const r = await runVirtual([METERING]);
  const steps = r.slot.steps.filter((s) => s.suite === 'metering');
  t.comment(steps.map((s) => `${s.name}: ${s.status} ${s.measurements.map((m) => `${m.id}=${m.value?.toFixed(3)}±${m.U.toFixed(3)} ${m.verdict}`).join(' ')}`).join('\n'));
  t.equal(steps.length, 4);
  t.ok(steps.every((s) => s.status === 'pass'), 'an uncalibrated unit (±5 % front end) is within ±20 %');
  const r100 = steps.find((s) => s.name.includes('R100'))!;
  t.same(r100.measurements.map((m) => m.id), ['voltageErrorPct', 'currentErrorPct', 'powerErrorPct'], 'V, I (0.43 A ≥ 0.25 A) and P judged at R100');
  for (const m of r100.measurements) t.same(m.contributions.map((c) => c.name), ['reference accuracy', 'reference resolution', 'pulse quantization (±1 count)', 'BL0937 jitter', 'integration-interval mismatch'], `${m.id}: the whole budget`);
  t.ok(steps.find((s) => s.name.includes('M60'))!.measurements.some((m) => m.id === 'pfError'), 'PF judged at the inductive point');
  t.comment(`modelled ${(r.modelMs / 1000).toFixed(1)} s`);
});

const CALIBRATE = {
  suite: 'calibrate',
  load: 'R100',
  windows: 10,
  reverify: [{ load: 'R25', limits: { powerErrorPct: { nominal: 0, tolerance: 3 } } }, { load: 'M60' }],
  limits: { voltageErrorPct: { nominal: 0, tolerance: 0.5 }, currentErrorPct: { nominal: 0, tolerance: 1 }, powerErrorPct: { nominal: 0, tolerance: 1 }, pfError: { nominal: 0, tolerance: 0.05 } },
};

t.test('calibrate on the virtual jig: average at R100, factors set in one window, cal point and re-verify within limits', async (t) => {
  const r = await runVirtual([CALIBRATE]);
  const steps = r.slot.steps.filter((s) => s.suite === 'calibrate');
  t.comment(steps.map((s) => `${s.name}: ${s.status} ${s.measurements.map((m) => `${m.id}=${m.value?.toFixed(3)}±${m.U.toFixed(3)} ${m.verdict}`).join(' ')}`).join('\n'));
  const cal = steps.find((s) => s.name.startsWith('calibrate at'))!;
  t.equal(cal.status, 'pass', 'calibration applied');
  t.comment(JSON.stringify(cal.data));
  const after = steps.find((s) => s.name.startsWith('after calibration'))!;
  const p = after.measurements.find((m) => m.id === 'powerErrorPct')!;
  t.ok(Math.abs(p.value!) < 0.3, `power error at the cal point after calibration ${p.value?.toFixed(3)} % (was ~9 %)`);
  t.comment(`modelled ${(r.modelMs / 1000).toFixed(1)} s`);
});
