import { VirtualClock } from '../../rig/core/clock.ts';
import { createLogger } from '../../rig/core/log.ts';
import { ObkHttpClient } from '../../rig/dut/obk-http-client.ts';
import { locatePlug } from '../../rig/dut/plug-locator.ts';
import { openStation } from '../../station/open-station.ts';
import type { MeasurementResult } from '../../suites/model/measurement.ts';
import type { SlotResult } from '../../suites/model/step-result.ts';
import type { Plan } from '../../suites/plan/schema.ts';
import { slotProgram } from '../../suites/registry.ts';
import { runSlot } from '../../suites/runner/run-slot.ts';
import type { SlotHardware } from '../../suites/slot-hardware.ts';
import { simPlugAddress, startVirtualJig } from '../../sim/jig/in-process-jig.ts';
import type { MainsBranch } from '../../sim/mains/mains-network.ts';
import { ObkPlug } from '../../sim/plug/obk-plug.ts';
import type { SimTemplate } from '../../sim/plug/obk-template.ts';
import type { Bl0937Truth } from '../../sim/plug/bl0937/bl0937-chip.ts';
import { VirtualPzem } from '../../sim/pzem/virtual-pzem.ts';
import { VirtualWt310e } from '../../sim/scpi/virtual-wt310e.ts';
import { mulberry32 } from '../../rig/core/prng.ts';
import { benchJig, type BenchReference } from './metrology-jig.ts';
import { naiveCalibrationStep } from './metrology-naive.ts';
import { effectiveCal, referenceErrorsAt, referenceRanges, trueErrorsAt, type CalFactors, type TrueErrors, type TrueInput } from './metrology-truth.ts';

/** A metering fault: the BL0937's nonlinearity with this peak (fraction), linear in log level, of this sign. */
export interface MeteringFault {
  amplitude: number;
  sign: 1 | -1;
}

export interface BenchUnitSpec {
  index: number;
  /** Seeds the unit's parts, its mains and its reference instrument's serial. */
  seed: number;
  reference: BenchReference;
  fault?: MeteringFault;
  plan: Plan;
  template: SimTemplate;
  /** Calibration load of the plan (also the naive baseline's). */
  calLoad: string;
  /** Plug defects by sim name (e.g. 'shunt-off-10'), for the shunt detection run; none by default. */
  defects?: readonly string[];
  /**
   * Run the naive baseline before our calibration (default true). Its PowerSet changes the factor
   * the plug holds, so a run that judges the as-found factors (the factor check) leaves it out.
   */
  naiveBaseline?: boolean;
  /** Told the unit's BL0937 truth (its drawn parts) after the run, for benches that judge it. */
  onTruth?: (truth: Bl0937Truth) => void;
}

/** One measurement as the rig decided it, next to the truth. */
export interface ScoredMeasurement {
  id: string;
  value: number | undefined;
  U: number;
  verdict: MeasurementResult['verdict'];
  low?: number;
  high?: number;
  /** The unit's true value of the same quantity (percent for the error ids, W for creep, absolute for PF). */
  truth: number;
}

export interface ScoredPoint {
  step: string;
  load: string;
  measurements: ScoredMeasurement[];
  truth: TrueErrors;
  /** The reference's own systematic relative errors at this point (what the rig compares with). */
  refError: Pick<TrueErrors, 'volts' | 'amps' | 'watts'>;
}

export interface BenchUnitResult {
  index: number;
  seed: number;
  fault?: MeteringFault;
  verdict: 'pass' | 'fail';
  /** Why the slot failed, when it did. */
  reason?: string;
  /** A step was repeated after a marginal result. */
  retested: boolean;
  /** Model time of each step (ms), in order, the bench's own baseline step excluded. */
  steps: Array<{ name: string; ms: number; attempts: number }>;
  /** True errors after our calibration at the cal point, minus the reference's own error there (fractions). */
  transfer: { ours: Pick<TrueErrors, 'volts' | 'amps' | 'watts'>; naive: number };
  /** Verification points after calibration (the cal point first). */
  points: ScoredPoint[];
  wallMs: number;
}

const NAIVE_STEP_PREFIX = 'bench baseline:';

function measurementTruth(id: string, t: TrueErrors, creepW: number): number {
  switch (id) {
    case 'voltageErrorPct': return 100 * t.volts;
    case 'currentErrorPct': return 100 * t.amps;
    case 'powerErrorPct': return 100 * t.watts;
    case 'pfError': return t.pf;
    case 'creepW': return creepW;
    default: throw new Error(`bench: no truth for measurement ${id}`);
  }
}

function trueInputAt(branch: MainsBranch, t: number): TrueInput {
  const input = branch.measureAt('input', t);
  const output = branch.measureAt('output', t);
  return { volts: input.volts, amps: output.amps, watts: output.watts, pf: output.pf };
}

/**
 * One unit through the rig's own calibrate suite on its own virtual jig and VirtualClock (station
 * hardware opened as the station does, steps from the plan by the registry, run by the slot runner),
 * with the naive baseline step before it; then scored against the simulator's truth.
 */
export async function runBenchUnit(u: BenchUnitSpec): Promise<BenchUnitResult> {
  const wall0 = performance.now();
  const clock = new VirtualClock();
  const serial = u.reference === 'wt310e' ? `C2QD${(u.seed % 100000).toString().padStart(5, '0')}` : `PZEM-${u.seed}`;
  const jig = benchJig({ reference: u.reference, serial });
  const defects = u.defects;
  const sim = startVirtualJig(jig, { clock, seed: u.seed, plugModel: 'obk', preflashed: { template: u.template }, ...(defects?.length ? { defects: () => defects } : {}) });
  const vslot = sim.vj.slot(1);
  const plug = vslot.plug;
  if (!(plug instanceof ObkPlug)) throw new Error('bench: the virtual jig did not build an OpenBeken plug');
  if (u.fault) plug.bl0937.injectNonlinearity({ amplitude: u.fault.amplitude, shape: [u.fault.sign, 0, 0] });
  const meterDevice = sim.vj.meters.get('ref0');
  const log = createLogger({}, 'silent');
  /** The factors the running firmware holds (RAM), and the ones it saved to its flash. */
  const runningCal = (): CalFactors => ({ ...plug.obkFirmware()!.config.cal });
  const savedCal = (): CalFactors => {
    const c = plug.storage.loadConfig();
    if (!c) throw new Error('bench: the plug saved no config');
    return { ...c.cal };
  };
  let naive: { cal: CalFactors; input: TrueInput } | undefined;
  const rnd = mulberry32(u.seed ^ 0x9a17e);

  const station = await openStation(jig, { clock, log, endpoints: sim.endpoints });
  let result: SlotResult;
  try {
    const s = station.slots.get(1)!;
    const spec = jig.slots[0]!;
    const resolveHttp = sim.resolvePlug;
    const hw: SlotHardware = {
      spec,
      io: s.io,
      meter: s.meter,
      openUart: () => s.uart.open({ baudRate: 115200, log }),
      baudRate: 2_000_000,
      mainsVolts: jig.mains.volts,
      log,
      provisioning: {},
      plug: {
        connect: async (mac, _signal, c) => {
          const loc = await locatePlug({ url: simPlugAddress(1) }, { slot: 1, ...(mac ? { mac } : {}), resolveHttp, clock, ...(c?.timeoutMs !== undefined ? { timeoutMs: c.timeoutMs } : {}) });
          return new ObkHttpClient({ url: loc.url, clock, log, slot: 1 });
        },
      },
    };
    const steps = slotProgram(u.plan, hw);
    const calLoad = spec.pins.loads.find((l) => l.name === u.calLoad)!;
    // The baseline runs right after the plug is online, before our calibration (which works from
    // whatever factor the plug holds: it multiplies it by the averaged reference/plug ratio).
    const online = steps.findIndex((st) => st.name.startsWith('mains on, plug online'));
    if (u.naiveBaseline !== false) steps.splice(
      online + 1,
      0,
      naiveCalibrationStep(hw, calLoad, rnd, () => {
        naive = { cal: effectiveCal(runningCal()), input: trueInputAt(vslot.branch, clock.now()) };
      }),
    );
    result = await runSlot(steps, { slot: 1, clock, log, sink: { emit: async () => undefined }, timeoutMs: u.plan.defaults.stepTimeoutMs, onMarginal: u.plan.defaults.onMarginal });
  } finally {
    await station.close();
  }
  const chip = plug.bl0937.truth();
  u.onTruth?.(chip);
  const cal = effectiveCal(savedCal());
  const refTruth = meterDevice instanceof VirtualWt310e || meterDevice instanceof VirtualPzem ? meterDevice.truth() : undefined;
  if (!refTruth) throw new Error('bench: no virtual reference meter');
  await sim.vj.dispose();

  const mid = (st: { startedT: number; finishedT: number }): number => (st.startedT + st.finishedT) / 2;
  const points: ScoredPoint[] = [];
  let calInput: TrueInput | undefined;
  for (const st of result.steps) {
    if (!st.measurements.length || st.name.startsWith(NAIVE_STEP_PREFIX)) continue;
    const input = trueInputAt(vslot.branch, mid(st));
    const truth = trueErrorsAt(chip, cal, input);
    // The plug's reading with no load: its factor times the chip's (anti-creep gated) frequency.
    const creepW = cal.power * chip.frequency('power', input);
    const load = /at (\S+)/.exec(st.name)?.[1] ?? 'none';
    if (st.name.startsWith('after calibration')) calInput = input;
    points.push({
      step: st.name,
      load: st.name.includes('creep') ? 'none' : load.replace(/:$/, ''),
      truth,
      refError: referenceErrorsAt(refTruth.systematic, referenceRanges(u.reference, input), input),
      measurements: st.measurements.map((m) => ({ id: m.id, value: m.value, U: m.U, verdict: m.verdict, ...(m.limits?.low !== undefined ? { low: m.limits.low } : {}), ...(m.limits?.high !== undefined ? { high: m.limits.high } : {}), truth: measurementTruth(m.id, truth, creepW) })),
    });
  }
  const transferOf = (factors: CalFactors, input: TrueInput): Pick<TrueErrors, 'volts' | 'amps' | 'watts'> => {
    const unit = trueErrorsAt(chip, factors, input);
    const ref = referenceErrorsAt(refTruth.systematic, referenceRanges(u.reference, input), input);
    return { volts: unit.volts - ref.volts, amps: unit.amps - ref.amps, watts: unit.watts - ref.watts };
  };
  const nan = { volts: NaN, amps: NaN, watts: NaN };
  return {
    index: u.index,
    seed: u.seed,
    ...(u.fault ? { fault: u.fault } : {}),
    verdict: result.verdict,
    ...(result.reason ? { reason: result.reason } : {}),
    retested: result.steps.some((st) => st.earlierAttempts.some((a) => a.status === 'retest')),
    steps: result.steps.filter((st) => !st.name.startsWith(NAIVE_STEP_PREFIX)).map((st) => ({ name: st.name, ms: st.ms + st.earlierAttempts.reduce((sum, a) => sum + a.ms, 0), attempts: st.attempt })),
    transfer: { ours: calInput ? transferOf(cal, calInput) : nan, naive: naive ? transferOf(naive.cal, naive.input).watts : NaN },
    points,
    wallMs: performance.now() - wall0,
  };
}
