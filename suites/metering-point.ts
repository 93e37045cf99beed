import { ConfigError } from '../rig/core/errors.ts';
import type { ObkHttpClient } from '../rig/dut/obk-http-client.ts';
import type { LoadSpec } from '../rig/jig/jig-config.ts';
import type { AccuracySpec, MeterReading } from '../rig/meter/reference-meter.ts';
import type { MeasurementResult, MeasurementSpec } from './model/measurement.ts';
import { combinedPct, combinedPf, ERROR_BUDGET, errorTerms, PF_BUDGET, pfTerms, plannedWindows, windowPlan, type ErrorTerms, type MeteredQuantity, type PfTerms } from './metrology/budget.ts';
import { driftPctPerWindow, emptyWindowPool, joinRuns, mean, sampleAlignedWindows, sampleQuietWindows, windowsCounting, type AlignedWindow, type WindowPool, type WindowSources } from './metrology/sample-windows.ts';
import { resolveLimits } from './model/limits.ts';
import { judge } from './model/verdict.ts';
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
/** One V and one I window (they alternate on CF1) is the least that measures all three. */
const MIN_WINDOWS = 2;
const MAX_WINDOWS = 30;
/** Most windows planned from a tolerance alone (a plan wanting more states an uncertainty target). */
const MAX_AUTO_WINDOWS = 8;
/** Most windows one attempt extends to while a value is undecided (no discard: cheaper than a retest). */
const MAX_SEQUENTIAL_WINDOWS = 12;
const CREEP_WINDOWS = 2;

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

/** The range a reading was taken on, for the accuracy's range term (none when the meter reports none). */
function rangeOf(r: MeterReading | undefined, q: MeteredQuantity): { range?: number } {
  const range = r?.ranges?.[q];
  return range !== undefined ? { range } : {};
}

/**
 * How many of `ws` counted V or I (they alternate on CF1, so N windows hold ⌊N/2⌋ or ⌈N/2⌉ of
 * each, by the SEL parity), plus, for a budget as if `n` windows were taken, the share of the extra
 * windows that will: they go on alternating from the last one. Undefined for P (every window), or
 * when no window shows the parity (the budget then assumes the better half).
 */
export function countingWindows(ws: readonly AlignedWindow[], q: MeteredQuantity, n = ws.length): number | undefined {
  if (q === 'watts') return undefined;
  const field = q === 'volts' ? 'voltage' : 'current';
  const counted = ws.filter((w) => w.fresh[field]).length;
  if (counted === 0 || counted === ws.length) return undefined;
  const extra = Math.max(0, n - ws.length);
  return counted + (ws[ws.length - 1]!.fresh[field] ? Math.floor(extra / 2) : Math.ceil(extra / 2));
}

/** Offset between the plug's and the reference's 1 s intervals, as a fraction of a window (latency of the poll plus the reading). */
function offsetFraction(windows: readonly AlignedWindow[]): number {
  return Math.min(1, mean(windows.map((w) => w.offsetMs)) / 1000 + 0.05);
}

/** Half-width of a symmetric limit (tolerance, or half the low..high span), for planning. */
function toleranceOf(spec: MeasurementSpec | undefined): number | undefined {
  const l = spec?.limits;
  if (!l) return undefined;
  if (l.tolerance !== undefined) return l.tolerance;
  return l.low !== undefined && l.high !== undefined ? (l.high - l.low) / 2 : undefined;
}

/**
 * How far `value` lies inside the spec's limits (its nominal taken as 0, as the error limits
 * write it): the distance to the nearer limit, negative outside. An undecided value (value ± U
 * straddling a limit) inside them is accepted once U is at most this.
 */
export function marginTo(spec: MeasurementSpec, value: number): number {
  const l = resolveLimits(spec.limits, spec.id, 0);
  return Math.min(l.high !== undefined ? l.high - value : Infinity, l.low !== undefined ? value - l.low : Infinity);
}

/**
 * Measure at one load point with the relay closed and the load on: switch the load (and off any
 * other), keep only windows that began after the switch plus the settling time (the one it fell in
 * mixes two loads), choose the window count from the plan's
 * uncertainty target (else from the tolerance, see plannedWindows), take the windows aligned with
 * the reference, and judge the plug's V, I, P (and PF) against the reference with guard-banded
 * limits. A load already on (the calibration point right after the factors were set) is measured at
 * once: its windows are clean. `pool`: the step's earlier attempts' windows; a retest (the earlier
 * attempt was marginal) adds its windows to them, so it halves U² instead of starting over; the
 * load stays on into it (the runner repeats the step at once), so it needs no switching window.
 */
export async function measurePoint(ctx: StepContext, hw: SlotHardware, client: ObkHttpClient, load: LoadSpec | undefined, o: { settleMs: number; specs: MeasurementSpec[]; windows?: number; keepLoadOn?: boolean; pool?: WindowPool }): Promise<PointResult> {
  const il = hw.io.interlock;
  // Only this point's load: any other still on (a step that ended early left it) goes off first.
  // At no load that also confirms every load relay open: one switched off moments ago must not
  // reach the windows read, so creep always waits for windows that began after this moment.
  let switched = load === undefined;
  for (const [name, level] of Object.entries(il.state().loads)) {
    if (name === load?.name || level === 'off') continue;
    await beforeSwitch(ctx, hw, name);
    await il.setLoad(name, false);
    switched = true;
  }
  const alreadyOn = load !== undefined && il.state().loads[load.name] === 'on';
  if (load && !alreadyOn) {
    await beforeSwitch(ctx, hw, load.name);
    await il.setLoad(load.name, true);
    switched = true;
  }
  // The windows used start after the last switch (plus settling): the one it fell in mixes two loads.
  // A load already on with nothing switched (the cal point after the factors were set, a retest) is clean at once.
  const cleanAfter = switched ? ctx.clock.now() + o.settleMs : undefined;
  let keep = false;
  try {
    const sources = windowSources(ctx, hw, client);
    if (!load) {
      const run = await sampleQuietWindows(sources, CREEP_WINDOWS, { cleanAfter: cleanAfter! });
      const p = mean(run.readings.map((w) => w.plug.power));
      // A single count in a window reads as one pulse weight: the mean's ±1 count is weight/N.
      ctx.measure('creepW', p, { contributions: { 'pulse quantization (±1 count)': 1.5 / run.readings.length }, diag: { windows: run.readings.length, referenceW: run.reference.watts } });
      return { load: 'none', windows: run.readings.length, consecutive: false, plug: { volts: 0, amps: 0, watts: p, pf: 0 }, ref: { volts: run.reference.volts, amps: run.reference.amps, watts: run.reference.watts, pf: 0 }, errorPct: {}, U: {} };
    }
    const nominal = { volts: hw.mainsVolts, amps: load.watts / load.pf / hw.mainsVolts, watts: load.watts } as const;
    const spec = (q: MeteredQuantity): MeasurementSpec | undefined => o.specs.find((s) => s.id === QUANTITY_ID[q]);
    const judged: MeteredQuantity[] = ['volts', 'watts', ...(o.specs.some((s) => s.id === 'currentErrorPct') ? (['amps'] as const) : [])];
    const pfSpec = o.specs.find((s) => s.id === 'pfError');
    // Planned from the first window's reading (this load's values and the instrument's ranges), with
    // an assumed 0.1 %/window drift and 10 % offset.
    const pool = o.pool ?? emptyWindowPool();
    const plan = (first: AlignedWindow): number => {
      const at = (q: MeteredQuantity): number => (first.ref[q] > 0 ? first.ref[q] : nominal[q]);
      // A retest plans only for what the last attempt left marginal.
      const retest = Object.keys(pool.marginal).length > 0;
      return Math.max(
        pfSpec && pool.marginal.pf !== undefined ? pfRetestWindows(pfSpec, pool.marginal.pf) : MIN_WINDOWS,
        ...judged.map((q) =>
          retest && pool.marginal[q] === undefined ? MIN_WINDOWS : plannedWindows({
            ...(pool.marginal[q] !== undefined ? { marginalValuePct: pool.marginal[q] } : {}),
            targetPct: spec(q)?.uncertaintyTarget,
            tolerancePct: toleranceOf(spec(q)),
            min: MIN_WINDOWS,
            max: spec(q)?.uncertaintyTarget !== undefined ? MAX_WINDOWS : MAX_AUTO_WINDOWS,
            terms: (n) => errorTerms({ quantity: q, value: at(q), accuracy: refAccuracy(hw, q), ...rangeOf(first.ref, q), plan: windowPlan(q, n + pool.windows.length, true, 1 + pool.runs), driftPctPerWindow: 0.1, offsetFraction: 0.1 }),
          }),
        ),
      );
    };
    /**
     * Error and budget of quantity q over windows `ws` (paired ratios: each window against the
     * reading of the same second, so the drift cancels; V and I only from the windows that counted
     * them: a stale value belongs to the second before); `n`: the budget as if n windows were taken.
     */
    const assess = (q: MeteredQuantity, ws: readonly AlignedWindow[], consecutive: boolean, runs: number, n = ws.length): { err: number; terms: ErrorTerms; U: number } => {
      const err = 100 * (mean(windowsCounting(ws, PLUG_FIELD[q]).map((w) => w.plug[PLUG_FIELD[q]] / w.ref[q])) - 1);
      const value = mean(ws.map((w) => w.ref[q]));
      const terms = errorTerms({ quantity: q, value, accuracy: refAccuracy(hw, q), ...rangeOf(ws[ws.length - 1]!.ref, q), plan: windowPlan(q, n, consecutive, runs, countingWindows(ws, q, n)), driftPctPerWindow: driftPctPerWindow(ws.map((w) => w.ref[q])), offsetFraction: offsetFraction(ws) });
      return { err, terms, U: 2 * combinedPct(terms) };
    };
    /**
     * The PF error over windows `ws` and its budget. The plug's PF takes the stale one of V/I from
     * the window before, so only windows whose previous one was kept count; `n`: the budget as if
     * n windows were taken (the extra ones go on from the last, each following the one before).
     */
    const assessPf = (ws: readonly AlignedWindow[], n = ws.length): { err: number; terms: PfTerms; U: number } => {
      const following = ws.filter((w) => w.follows);
      const pfWs = following.length ? following : ws;
      const total = pfWs.length + Math.max(0, n - ws.length);
      const pf = mean(pfWs.map((w) => w.ref.pf));
      const err = mean(pfWs.map((w) => w.plug.factor)) - pf;
      const plug = { volts: mean(pfWs.map((w) => w.plug.voltage)), amps: mean(pfWs.map((w) => w.plug.current)), watts: mean(pfWs.map((w) => w.plug.power)) };
      const distinct = (q: 'volts' | 'amps'): number => countingWindows(pfWs, q, total) ?? Math.ceil(total / 2);
      const terms = pfTerms({ pf, refBand: hw.meter.uncertainty('pf', pf), plug, windows: total, vWindows: distinct('volts'), iWindows: distinct('amps') });
      return { err, terms, U: 2 * combinedPf(terms) };
    };
    /**
     * Windows a retest of a marginal PF error takes: the fewest for which the pooled windows' U
     * gets within the value's distance to the nearer limit; MIN_WINDOWS when not even MAX_WINDOWS
     * gets there (a truly marginal unit: more windows cannot decide it).
     */
    function pfRetestWindows(s: MeasurementSpec, value: number): number {
      const margin = marginTo(s, value);
      if (!(margin > 0) || pool.windows.length === 0) return MIN_WINDOWS;
      for (let k = MIN_WINDOWS; k <= MAX_WINDOWS; k++) if (assessPf(pool.windows, pool.windows.length + k).U <= margin) return k;
      return MIN_WINDOWS;
    }
    // The load stayed on since the pool's last window (a retest right after its attempt): the run
    // goes on from that window, and when no boundary was missed in between it is the same run (its
    // counts telescope across both attempts).
    const continuing = cleanAfter === undefined && pool.loadStayedOn && pool.windows.length > 0;
    pool.loadStayedOn = false;
    // Sequential stopping where the windows are planned from the tolerances alone (no quantity has
    // an uncertainty target, not a retest): after MIN_WINDOWS the point stops as soon as every judged
    // value is accepted with the U of the windows taken (value ± U wholly inside its limits, the
    // verdict's own rule); otherwise it goes on to the planned count. A value accepted early is
    // judged on a larger U than the planned count would give it, never a smaller one.
    const earlyStop = o.windows === undefined && Object.keys(pool.marginal).length === 0 && o.specs.every((s) => s.uncertaintyTarget === undefined);
    let planned = 0;
    const firstCount = (first: AlignedWindow): number => {
      planned = plan(first);
      return earlyStop ? Math.min(planned, MIN_WINDOWS) : planned;
    };
    let run = await sampleAlignedWindows(sources, o.windows ?? firstCount, cleanAfter !== undefined ? { cleanAfter } : continuing ? { continues: pool.windows[pool.windows.length - 1]! } : {});
    const newRun = !(continuing && run.consecutive && (run.priors[0]?.adjacent ?? false));
    if (earlyStop && run.windows.length < planned) {
      const ws = [...pool.windows, ...run.windows];
      const runs = pool.runs + (newRun ? 1 : 0);
      const consecutive = pool.consecutive && run.consecutive;
      const accepted = (s: MeasurementSpec, value: number, U: number): boolean => judge(value, U, resolveLimits(s.limits, s.id, 0), { guardBand: s.guardBand ?? 'uncertainty' }).verdict === 'pass';
      const all = judged.every((q) => {
        const sp = spec(q);
        const a = assess(q, ws, consecutive, runs);
        return sp === undefined || accepted(sp, a.err, a.U);
      }) && (!pfSpec || accepted(pfSpec, assessPf(ws).err, assessPf(ws).U));
      if (!all) run = joinRuns(run, await sampleAlignedWindows(sources, planned - run.windows.length, { continues: run.windows[run.windows.length - 1]! }));
    }
    // Sequential: while a quantity is undecided (value ± U straddles its limit) and more windows of
    // this run could decide it within the cap, take them now, before giving up to a retest.
    for (let round = 0; o.windows === undefined && round < 6; round++) {
      const ws = [...pool.windows, ...run.windows];
      const runs = pool.runs + (newRun ? 1 : 0);
      const consecutive = pool.consecutive && run.consecutive;
      let extra = 0;
      for (const q of judged) {
        const tol = toleranceOf(spec(q));
        if (tol === undefined) continue;
        const a = assess(q, ws, consecutive, runs);
        const margin = tol - Math.abs(a.err);
        const undecided = !(a.U <= margin || Math.abs(a.err) - a.U >= tol || margin <= 0);
        // Accepted but with U above the plan's target (the SEL parity gave fewer V or I windows
        // than planned): the verdict would be marginal; the windows that bring U to the target are
        // cheaper here than a retest, which starts from MIN_WINDOWS.
        const target = spec(q)?.uncertaintyTarget;
        const aboveTarget = target !== undefined && a.U > target && Math.abs(a.err) - a.U < tol;
        if (!undecided && !aboveTarget) continue;
        const want = Math.min(undecided ? margin : Infinity, target ?? Infinity);
        const cap = Math.min(MAX_WINDOWS, MAX_SEQUENTIAL_WINDOWS + pool.windows.length);
        for (let n = ws.length + 1; n <= cap; n++) {
          if (assess(q, ws, consecutive, runs, n).U <= want) {
            extra = Math.max(extra, n - ws.length);
            break;
          }
        }
      }
      if (pfSpec) {
        // The PF the same way: undecided inside its limits, and more windows of this run bring U within the margin.
        const a = assessPf(ws);
        const margin = marginTo(pfSpec, a.err);
        if (a.U > margin && margin > 0) {
          const cap = Math.min(MAX_WINDOWS, MAX_SEQUENTIAL_WINDOWS + pool.windows.length);
          for (let n = ws.length + 1; n <= cap; n++) {
            if (assessPf(ws, n).U <= margin) {
              extra = Math.max(extra, n - ws.length);
              break;
            }
          }
        }
      }
      if (extra === 0) break;
      const more = await sampleAlignedWindows(sources, extra, { continues: run.windows[run.windows.length - 1]! });
      run = joinRuns(run, more);
    }
    // Each attempt's windows are one run: counts telescope within a run, not across the gap.
    pool.windows.push(...run.windows);
    pool.runs += newRun ? 1 : 0;
    pool.consecutive &&= run.consecutive;
    const ws = pool.windows;
    const { runs, consecutive } = pool;
    const marginalNow: WindowPool['marginal'] = {};
    const decisions: Array<MeasurementResult['decision']> = [];
    const result: PointResult = {
      load: load.name,
      windows: ws.length,
      consecutive,
      plug: { volts: mean(ws.map((w) => w.plug.voltage)), amps: mean(ws.map((w) => w.plug.current)), watts: mean(ws.map((w) => w.plug.power)), pf: mean(ws.map((w) => w.plug.factor)) },
      ref: { volts: mean(ws.map((w) => w.ref.volts)), amps: mean(ws.map((w) => w.ref.amps)), watts: mean(ws.map((w) => w.ref.watts)), pf: mean(ws.map((w) => w.ref.pf)) },
      errorPct: {},
      U: {},
    };
    for (const q of judged) {
      const { err, terms } = assess(q, ws, consecutive, runs);
      const m = ctx.measure(QUANTITY_ID[q], err, { contributions: { ...terms }, diag: { plug: result.plug[q], ref: result.ref[q], windows: ws.length } });
      if (m.verdict === 'marginal') marginalNow[q] = err;
      decisions.push(m.decision);
      result.errorPct[q] = err;
      result.U[q] = m.U;
    }
    if (pfSpec) {
      const { err, terms } = assessPf(ws);
      const m = ctx.measure('pfError', err, { contributions: { ...terms }, diag: { plug: result.plug.pf, ref: result.ref.pf, windows: ws.length, pfWindows: ws.filter((w) => w.follows).length } });
      if (m.verdict === 'marginal') marginalNow.pf = err;
      result.U.pf = m.U;
      decisions.push(m.decision);
    }
    pool.marginal = marginalNow;
    // A retest follows at once (the runner repeats the step): its load stays on, so the retest's
    // windows are clean from its first boundary instead of losing one to switching it on again.
    const retestFollows = decisions.includes('retest') && !decisions.includes('reject');
    keep = o.keepLoadOn === true || retestFollows;
    pool.loadStayedOn = retestFollows;
    return result;
  } finally {
    if (load && !keep) {
      await beforeSwitch(ctx, hw, load.name);
      await il.setLoad(load.name, false);
    }
  }
}

/**
 * Before switching one of the slot's loads: give other slots on the shared supply the window their
 * run is about to end with (bounded; see SupplyWatch.beforeSwitch). Nothing without a shared supply.
 */
export async function beforeSwitch(ctx: StepContext, hw: SlotHardware, loadName: string): Promise<void> {
  if (!hw.supply?.beforeSwitch) return;
  const load = hw.spec.pins.loads.find((l) => l.name === loadName);
  if (load) await hw.supply.beforeSwitch(load, ctx.signal);
}

/**
 * Where a slot's windows come from: its plug, its reference meter, and the mains supply it shares
 * (a switch there inside a window drops that window as the slot's own switch does).
 */
export function windowSources(ctx: StepContext, hw: SlotHardware, client: ObkHttpClient): WindowSources {
  return {
    clock: ctx.clock,
    plugEnergy: () => client.energy(),
    reference: () => hw.meter.read(),
    ...(hw.meter.updateIntervalMs !== undefined ? { referenceUpdateMs: hw.meter.updateIntervalMs } : {}),
    ...(hw.supply ? { supply: hw.supply } : {}),
    signal: ctx.signal,
  };
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
