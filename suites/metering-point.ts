import { ConfigError } from '../rig/core/errors.ts';
import type { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import type { LoadSpec } from '../rig/jig/jig-config.ts';
import type { AccuracySpec } from '../rig/meter/reference-meter.ts';
import type { MeasurementSpec } from './model/measurement.ts';
import { ERROR_BUDGET, errorTerms, windowPlan, windowsNeeded, type ErrorTerms, type MeteredQuantity } from './metrology/budget.ts';
import { driftPctPerWindow, mean, sampleAlignedWindows, type WindowRun } from './metrology/sample-windows.ts';
import { declareMeasurement, type PlanDefaults } from './plan/declare.ts';
import type { PlanLimit, SuiteEntry } from './plan/schema.ts';
import type { Step, StepContext } from './runner/step.ts';
import type { SlotHardware } from './slot-hardware.ts';

export type MeteringLimits = Extract<SuiteEntry, { suite: 'metering' }>['limits'];
export type LoadPoint = Extract<SuiteEntry, { suite: 'metering' }>['loadPoints'][number];

/** The plan's product limits when a plan leaves a quantity out (issue 8 defaults). */
export const DEFAULT_METERING_LIMITS: Required<MeteringLimits> = {
  voltageErrorPct: { nominal: 0, tolerance: 0.5 },
  currentErrorPct: { nominal: 0, tolerance: 1 },
  powerErrorPct: { nominal: 0, tolerance: 1 },
  pfError: { nominal: 0, tolerance: 0.02 },
  creepW: { high: 1 },
};
/** The current limit applies from this current on (below it the ±1-count term dominates). */
export const CURRENT_LIMIT_FROM_A = 0.25;
/** The PF is compared at an inductive point (a resistive one says nothing about the phase). */
const INDUCTIVE_PF_BELOW = 0.9;
const MIN_WINDOWS = 4;
const MAX_WINDOWS = 30;
const CREEP_WINDOWS = 5;

const PF_BUDGET = { k: 2, contributions: [{ name: 'reference accuracy', distribution: 'rectangular' as const }, { name: 'pulse quantization (±1 count)', distribution: 'rectangular' as const }] };
const CREEP_BUDGET = { k: 2, contributions: [{ name: 'pulse quantization (±1 count)', distribution: 'rectangular' as const }] };

const QUANTITY_ID: Record<MeteredQuantity, 'voltageErrorPct' | 'currentErrorPct' | 'powerErrorPct'> = { volts: 'voltageErrorPct', amps: 'currentErrorPct', watts: 'powerErrorPct' };
const PLUG_FIELD: Record<MeteredQuantity, 'voltage' | 'current' | 'power'> = { volts: 'voltage', amps: 'current', watts: 'power' };

export function resolveLoad(hw: SlotHardware, name: string, suite: string): LoadSpec | undefined {
  if (name === 'none') return undefined;
  const load = hw.spec.pins.loads.find((l) => l.name === name);
  if (!load) throw new ConfigError(`${suite} suite: slot ${hw.spec.id} has no load '${name}' (loads: ${hw.spec.pins.loads.map((l) => l.name).join(', ') || 'none'})`, { slot: hw.spec.id, step: 'plan' });
  return load;
}

function limitFor(id: keyof MeteringLimits, suite: MeteringLimits, point?: MeteringLimits): PlanLimit {
  return point?.[id] ?? suite[id] ?? DEFAULT_METERING_LIMITS[id];
}

/** Which quantities are judged at a load point (V and P always; I at ≥ 0.25 A; PF when inductive). */
export function quantitiesAt(load: LoadSpec, mainsVolts: number): { amps: boolean; pf: boolean } {
  const amps = load.watts / Math.max(load.pf, 0.01) / mainsVolts;
  return { amps: amps >= CURRENT_LIMIT_FROM_A, pf: load.pf < INDUCTIVE_PF_BELOW };
}

export function declarePoint(load: LoadSpec | undefined, hw: SlotHardware, suite: MeteringLimits, point: MeteringLimits | undefined, defaults: PlanDefaults): MeasurementSpec[] {
  if (!load) return [declareMeasurement({ id: 'creepW', name: 'no-load reading (creep)', unit: 'W', uncertainty: CREEP_BUDGET }, limitFor('creepW', suite, point), defaults)];
  const q = quantitiesAt(load, hw.mainsVolts);
  const d = (id: 'voltageErrorPct' | 'currentErrorPct' | 'powerErrorPct', name: string) => declareMeasurement({ id, name, unit: '%', uncertainty: ERROR_BUDGET }, limitFor(id, suite, point), defaults);
  return [
    d('voltageErrorPct', 'voltage error vs reference'),
    ...(q.amps ? [d('currentErrorPct', 'current error vs reference')] : []),
    d('powerErrorPct', 'power error vs reference'),
    ...(q.pf ? [declareMeasurement({ id: 'pfError', name: 'power factor error vs reference', unit: '', uncertainty: PF_BUDGET }, limitFor('pfError', suite, point), defaults)] : []),
  ];
}

export interface PointResult {
  load: string;
  windows: number;
  consecutive: boolean;
  plug: { volts: number; amps: number; watts: number; pf: number };
  ref: { volts: number; amps: number; watts: number; pf: number };
  errorPct: Partial<Record<MeteredQuantity, number>>;
  U: Partial<Record<MeteredQuantity | 'pf', number>>;
}

function refAccuracy(hw: SlotHardware, q: MeteredQuantity | 'pf'): AccuracySpec {
  const a = hw.meter.accuracy[q];
  if (!a) throw new ConfigError(`the reference meter states no accuracy for ${q}`, { slot: hw.spec.id, step: 'metering' });
  return a;
}

/** Offset between the plug's and the reference's 1 s intervals, as a fraction of a window (latency of the poll plus the reading). */
function offsetFraction(run: WindowRun): number {
  return Math.min(1, mean(run.windows.map((w) => w.offsetMs)) / 1000 + 0.05);
}

/**
 * Measure at one load point with the relay closed and the load on: settle, choose the window count
 * from the plan's uncertainty target, take the windows aligned with the reference, and judge the
 * plug's mean V, I, P (and PF) against the reference's mean with guard-banded limits.
 */
export async function measurePoint(ctx: StepContext, hw: SlotHardware, client: ObkHttpClient, load: LoadSpec | undefined, o: { settleMs: number; specs: MeasurementSpec[]; windows?: number }): Promise<PointResult> {
  const il = hw.io.interlock;
  if (load) await il.setLoad(load.name, true);
  try {
    await ctx.clock.sleep(o.settleMs, ctx.signal);
    const sources = { clock: ctx.clock, plugEnergy: () => client.energy(), reference: () => hw.meter.read(), signal: ctx.signal };
    if (!load) {
      const run = await sampleAlignedWindows(sources, CREEP_WINDOWS);
      const p = mean(run.windows.map((w) => w.plug.power));
      // A single count in a window reads as one pulse weight: the mean's ±1 count is weight/N.
      ctx.measure('creepW', p, { contributions: { 'pulse quantization (±1 count)': 1.5 / run.windows.length }, diag: { windows: run.windows.length } });
      return { load: 'none', windows: run.windows.length, consecutive: run.consecutive, plug: { volts: 0, amps: 0, watts: p, pf: 0 }, ref: { volts: 0, amps: 0, watts: 0, pf: 0 }, errorPct: {}, U: {} };
    }
    const nominal = { volts: hw.mainsVolts, amps: load.watts / load.pf / hw.mainsVolts, watts: load.watts } as const;
    const target = (q: MeteredQuantity): number | undefined => o.specs.find((s) => s.id === QUANTITY_ID[q])?.uncertaintyTarget;
    const judged: MeteredQuantity[] = ['volts', 'watts', ...(o.specs.some((s) => s.id === 'currentErrorPct') ? (['amps'] as const) : [])];
    // Planned before measuring from nominal values and an assumed 0.1 %/window drift and 10 % offset.
    const planned = o.windows ?? Math.max(
      ...judged.map((q) =>
        windowsNeeded({ targetPct: target(q), min: MIN_WINDOWS, max: MAX_WINDOWS, terms: (n) => errorTerms({ quantity: q, value: nominal[q], accuracy: refAccuracy(hw, q), plan: windowPlan(q, n, true), driftPctPerWindow: 0.1, offsetFraction: 0.1 }) }),
      ),
    );
    const run = await sampleAlignedWindows(sources, planned);
    const ws = run.windows;
    const result: PointResult = {
      load: load.name,
      windows: ws.length,
      consecutive: run.consecutive,
      plug: { volts: mean(ws.map((w) => w.plug.voltage)), amps: mean(ws.map((w) => w.plug.current)), watts: mean(ws.map((w) => w.plug.power)), pf: mean(ws.map((w) => w.plug.factor)) },
      ref: { volts: mean(ws.map((w) => w.ref.volts)), amps: mean(ws.map((w) => w.ref.amps)), watts: mean(ws.map((w) => w.ref.watts)), pf: mean(ws.map((w) => w.ref.pf)) },
      errorPct: {},
      U: {},
    };
    const off = offsetFraction(run);
    for (const q of judged) {
      // Paired ratios: each window against the reading of the same second, so the drift cancels.
      const err = 100 * (mean(ws.map((w) => w.plug[PLUG_FIELD[q]] / w.ref[q])) - 1);
      const terms: ErrorTerms = errorTerms({ quantity: q, value: result.ref[q], accuracy: refAccuracy(hw, q), plan: windowPlan(q, ws.length, run.consecutive), driftPctPerWindow: driftPctPerWindow(ws.map((w) => w.ref[q])), offsetFraction: off });
      const m = ctx.measure(QUANTITY_ID[q], err, { contributions: { ...terms }, diag: { plug: result.plug[q], ref: result.ref[q], windows: ws.length } });
      result.errorPct[q] = err;
      result.U[q] = m.U;
    }
    if (o.specs.some((s) => s.id === 'pfError')) {
      const err = result.plug.pf - result.ref.pf;
      const pfBand = hw.meter.uncertainty('pf', result.ref.pf);
      // PF = P/(V·I): its ±1-count term is dominated by the current's few counts.
      const iCounts = Math.max(1, result.plug.amps / 0.0118577075);
      const m = ctx.measure('pfError', err, { contributions: { 'reference accuracy': pfBand, 'pulse quantization (±1 count)': result.ref.pf / (iCounts * Math.sqrt(Math.ceil(ws.length / 2))) }, diag: { plug: result.plug.pf, ref: result.ref.pf } });
      result.U.pf = m.U;
    }
    return result;
  } finally {
    if (load) await il.setLoad(load.name, false);
  }
}

/** Connect to the plug and close its relay (the metering path sits behind it). */
export async function plugWithRelayClosed(ctx: StepContext, hw: SlotHardware): Promise<ObkHttpClient> {
  if (!hw.plug) throw new ConfigError(`slot ${hw.spec.id}: metering needs the plug over HTTP (the jig file's plug section)`, { slot: hw.spec.id, step: 'metering' });
  const client = await hw.plug.connect(hw.romSession?.mac, ctx.signal);
  const reply = await client.cmnd('POWER ON');
  ctx.check('POWER ON accepted', reply.code === 200, { code: reply.code, msg: reply.msg });
  return client;
}

export type { Step };
