import type { Clock } from '../../rig/core/clock.ts';
import { ConfigError, PlugrigError, TimeoutError } from '../../rig/core/errors.ts';
import type { Logger } from '../../rig/core/log.ts';
import type { ResultEvent, ResultSink } from '../model/events.ts';
import { resolveLimits } from '../model/limits.ts';
import type { MeasurementResult, MeasurementSpec } from '../model/measurement.ts';
import { redactSecrets } from '../model/redact.ts';
import { serializeError, type AttemptSummary, type CheckResult, type SerializedError, type SlotResult, type StepKind, type StepResult } from '../model/step-result.ts';
import { combineUncertainty } from '../model/uncertainty.ts';
import { decide, judge, type MarginalAction } from '../model/verdict.ts';
import type { Step, StepContext } from './step.ts';
import type { StepPause } from './step-pause.ts';

export interface RunSlotOptions {
  slot: number;
  clock: Clock;
  log: Logger;
  sink: ResultSink;
  /** Aborts the slot: the running main step is aborted, the rest skipped; cleanup still runs. */
  signal?: AbortSignal;
  /** Per-attempt timeout of steps that give none (default 120 s). */
  timeoutMs?: number;
  /** Marginal action of measurements that give none (default retest). */
  onMarginal?: MarginalAction;
  /** Wall time for records (ISO); injectable for tests. */
  wallTime?: () => string;
  /**
   * Takes the shared instruments a main step declares (`needs`) before its attempt starts; the wait
   * does not count against the step's timeout. Resolves with the release, called when the attempt ends.
   */
  acquire?: (step: Step, signal: AbortSignal) => Promise<() => void>;
  /** While paused, the running step's timeout stands still (a wait for mains-group partners, bounded there). */
  pause?: StepPause;
}

const DEFAULT_TIMEOUT_MS = 120_000;

/** Main steps in order, then cleanup steps in order, then the one safe-state step. */
export function orderSteps(steps: readonly Step[]): Step[] {
  const safe = steps.filter((s) => s.kind === 'safe-state');
  if (safe.length !== 1) throw new ConfigError(`a slot program needs exactly one safe-state step, got ${safe.length}`, { step: 'slot-program' });
  return [...steps.filter((s) => (s.kind ?? 'main') === 'main'), ...steps.filter((s) => s.kind === 'cleanup'), safe[0]!];
}

interface AttemptOutcome {
  status: 'pass' | 'fail' | 'retest';
  reason: string;
  flagged: boolean;
  measurements: MeasurementResult[];
  checks: CheckResult[];
  error?: SerializedError;
  data?: Record<string, unknown>;
  startedT: number;
  startedAt: string;
}

/**
 * Run one slot's steps and tell the sink everything that happens. Every step gets an AbortSignal
 * (its timeout, or the slot's abort) and is retried as its `retries` allow. Cleanup steps and the
 * safe-state step run whatever happened before, each with its own timeout, the safe state last.
 */
export async function runSlot(steps: readonly Step[], o: RunSlotOptions): Promise<SlotResult> {
  const ordered = orderSteps(steps);
  const wall = o.wallTime ?? ((): string => new Date().toISOString());
  const slotAbort = new AbortController();
  const onOuterAbort = (): void => slotAbort.abort(o.signal?.reason);
  if (o.signal?.aborted) onOuterAbort();
  else o.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let sinkError: unknown;
  const emit = async (e: ResultEvent): Promise<void> => {
    try {
      await o.sink.emit(e);
    } catch (err) {
      // A result that cannot be recorded must not pass: stop the main steps, still reach safe state.
      if (sinkError === undefined) {
        sinkError = err;
        o.log.error({ err: err instanceof PlugrigError ? err.toJSON() : String(err), slot: o.slot }, 'result sink failed');
        slotAbort.abort(err);
      }
    }
  };
  const unit: Record<string, unknown> = {};
  const t0 = o.clock.now();
  const startedAt = wall();
  await emit({ type: 'slot-started', slot: o.slot, steps: ordered.map((s) => ({ name: s.name, kind: s.kind ?? 'main', ...(s.suite ? { suite: s.suite } : {}) })), at: startedAt });

  const results: StepResult[] = [];
  let stopReason: string | undefined;
  for (const [index, step] of ordered.entries()) {
    const kind: StepKind = step.kind ?? 'main';
    const skipReason = kind === 'main' ? (slotAbort.signal.aborted ? `slot aborted: ${reasonText(slotAbort.signal.reason)}` : stopReason) : undefined;
    const result = skipReason !== undefined ? skipped(step, index, kind, skipReason, o.clock.now(), wall()) : await runStep(step, index, kind);
    results.push(result);
    await emit({ type: 'step-finished', slot: o.slot, result });
    if (kind === 'main' && result.status === 'fail' && step.critical && stopReason === undefined) stopReason = `critical step '${step.name}' failed`;
  }
  o.signal?.removeEventListener('abort', onOuterAbort);

  const firstBad = results.find((r) => r.status !== 'pass');
  const verdict = firstBad || sinkError !== undefined ? 'fail' : 'pass';
  const slotResult: SlotResult = {
    slot: o.slot,
    verdict,
    flagged: results.some((r) => r.flagged),
    aborted: slotAbort.signal.aborted,
    unit: { ...unit },
    steps: results,
    ...(sinkError !== undefined ? { reason: `result sink failed: ${reasonText(sinkError)}`, recordError: serializeError(sinkError) } : firstBad ? { reason: `${firstBad.name}: ${firstBad.reason ?? firstBad.status}` } : {}),
    ms: o.clock.now() - t0,
    startedAt,
    finishedAt: wall(),
  };
  await emit({ type: 'slot-finished', slot: o.slot, result: slotResult });
  // The last write (slot-finished) can be the refused one: the caller still learns it, typed.
  if (sinkError !== undefined && slotResult.recordError === undefined) return { ...slotResult, verdict: 'fail', reason: `result sink failed: ${reasonText(sinkError)}`, recordError: serializeError(sinkError) };
  return slotResult;

  async function runStep(step: Step, index: number, kind: StepKind): Promise<StepResult> {
    const maxAttempts = 1 + Math.max(0, step.retries ?? 0);
    const earlier: AttemptSummary[] = [];
    for (let attempt = 1; ; attempt++) {
      const a = await runAttempt(step, index, kind, attempt, maxAttempts);
      const finishedT = o.clock.now();
      const aborted = kind === 'main' && slotAbort.signal.aborted;
      if (a.status === 'pass' || attempt >= maxAttempts || aborted) {
        // A 'retest' outcome cannot reach here without attempts left (decide() rejects then).
        const status = a.status === 'pass' ? 'pass' : 'fail';
        if (status === 'fail') o.log.warn({ slot: o.slot, step: step.name, attempt, reason: a.reason, err: a.error }, 'step failed');
        return {
          index,
          name: step.name,
          ...(step.suite ? { suite: step.suite } : {}),
          kind,
          status,
          flagged: a.flagged,
          ...(status === 'fail' ? { reason: a.reason } : {}),
          attempt,
          maxAttempts,
          earlierAttempts: earlier,
          measurements: a.measurements,
          checks: a.checks,
          ...(a.error ? { error: a.error } : {}),
          ...(a.data ? { data: a.data } : {}),
          startedT: a.startedT,
          finishedT,
          ms: finishedT - a.startedT,
          startedAt: a.startedAt,
          finishedAt: wall(),
        };
      }
      earlier.push({ attempt, status: a.status, reason: a.reason, measurements: a.measurements, checks: a.checks, ...(a.error ? { error: a.error } : {}), ms: finishedT - a.startedT });
      o.log.info({ slot: o.slot, step: step.name, attempt, reason: a.reason }, 'retrying step');
    }
  }

  async function runAttempt(step: Step, index: number, kind: StepKind, attempt: number, maxAttempts: number): Promise<AttemptOutcome> {
    // Cleanup and the safe state never wait for an instrument.
    let release: (() => void) | undefined;
    let acquireError: unknown;
    if (o.acquire && kind === 'main' && (step.needs?.length ?? 0) > 0) {
      try {
        release = await o.acquire(step, slotAbort.signal);
      } catch (e) {
        acquireError = e;
      }
    }
    const startedT = o.clock.now();
    const startedAtStep = wall();
    await emit({ type: 'step-started', slot: o.slot, index, name: step.name, attempt, at: startedAtStep });
    const declared = step.measurements ?? [];
    const taken = new Map<string, MeasurementResult>();
    const checks: CheckResult[] = [];
    let queue = Promise.resolve();
    const later = (e: ResultEvent): void => {
      queue = queue.then(() => emit(e));
    };
    const ctrl = new AbortController();
    // Cleanup and the safe state are not tied to the slot's abort: they must run after it.
    const parent = kind === 'main' ? slotAbort.signal : undefined;
    const onParent = (): void => ctrl.abort(parent?.reason);
    if (parent?.aborted) onParent();
    else parent?.addEventListener('abort', onParent, { once: true });
    const timeoutMs = step.timeoutMs ?? o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    // The deadline moves on by every pause (a wait for partners is not the step's time).
    let deadline = startedT + timeoutMs;
    let pausedAt: number | undefined = o.pause?.paused ? startedT : undefined;
    const arm = (): (() => void) =>
      o.clock.at(deadline, () => ctrl.abort(new TimeoutError(`step '${step.name}' did not finish within ${timeoutMs} ms`, { slot: o.slot, step: step.name, timeoutMs })));
    let disarm = pausedAt === undefined ? arm() : (): void => undefined;
    const unpause = o.pause?.subscribe((paused) => {
      if (paused && pausedAt === undefined) {
        pausedAt = o.clock.now();
        disarm();
        disarm = (): void => undefined;
      } else if (!paused && pausedAt !== undefined) {
        deadline += o.clock.now() - pausedAt;
        pausedAt = undefined;
        disarm = arm();
      }
    });
    const cancelTimer = (): void => {
      unpause?.();
      disarm();
    };
    const ctx: StepContext = {
      slot: o.slot,
      clock: o.clock,
      log: o.log.child({ slot: o.slot, step: step.name, attempt }),
      signal: ctrl.signal,
      attempt,
      measure: (id, value, m = {}) => {
        const spec = declared.find((d) => d.id === id);
        if (!spec) throw new ConfigError(`step '${step.name}' took measurement '${id}', which it did not declare`, { slot: o.slot, step: step.name });
        if (taken.has(id)) throw new ConfigError(`step '${step.name}' took measurement '${id}' twice`, { slot: o.slot, step: step.name });
        const result = takeMeasurement(spec, value, m, attempt, maxAttempts - attempt, `${step.name}: ${spec.name}`);
        taken.set(id, result);
        later({ type: 'measurement', slot: o.slot, index, step: step.name, measurement: result });
        return result;
      },
      check: (name, ok, diag) => {
        const c: CheckResult = { name, ok, ...(diag ? { diag: redactSecrets(diag) } : {}), attempt, t: o.clock.now() };
        checks.push(c);
        later({ type: 'check', slot: o.slot, index, step: step.name, check: c });
        return ok;
      },
      unit: (facts) => {
        Object.assign(unit, redactSecrets(facts));
        later({ type: 'unit', slot: o.slot, facts: redactSecrets(facts) });
      },
    };
    let data: Record<string, unknown> | undefined;
    let error: unknown;
    const aborted = new Promise<never>((_, reject) => {
      if (ctrl.signal.aborted) reject(ctrl.signal.reason);
      else ctrl.signal.addEventListener('abort', () => reject(ctrl.signal.reason), { once: true });
    });
    aborted.catch(() => undefined);
    try {
      if (acquireError !== undefined) throw acquireError;
      const running = Promise.resolve().then(() => step.run(ctx));
      // A step that ignores its signal keeps running in the background; its late outcome is dropped.
      running.catch(() => undefined);
      data = (await Promise.race([running, aborted])) ?? undefined;
    } catch (e) {
      error = e;
    } finally {
      cancelTimer();
      parent?.removeEventListener('abort', onParent);
      release?.();
    }
    await queue;

    const measurements = declared.map((spec) => taken.get(spec.id) ?? notTaken(spec, attempt));
    const failedCheck = checks.find((c) => !c.ok);
    const rejected = measurements.find((m) => m.decision === 'reject');
    const retest = measurements.find((m) => m.decision === 'retest');
    const serialized = error !== undefined ? serializeError(error) : undefined;
    const base = { measurements, checks, ...(serialized ? { error: serialized } : {}), ...(data ? { data: redactSecrets(data) } : {}), startedT, startedAt: startedAtStep };
    const flagged = measurements.some((m) => m.decision === 'accept-flagged');
    if (serialized) return { ...base, status: 'fail', reason: serialized.message, flagged };
    if (failedCheck) return { ...base, status: 'fail', reason: `check failed: ${failedCheck.name}`, flagged };
    if (rejected) return { ...base, status: 'fail', reason: `${rejected.name}: ${rejected.reason}`, flagged };
    if (retest) return { ...base, status: 'retest', reason: `${retest.name}: ${retest.reason}, retest`, flagged };
    return { ...base, status: 'pass', reason: 'ok', flagged };
  }

  function takeMeasurement(spec: MeasurementSpec, value: number, m: { nominal?: number; contributions?: Record<string, number>; diag?: Record<string, unknown> }, attempt: number, attemptsLeft: number, where: string): MeasurementResult {
    const unc = combineUncertainty(spec.uncertainty, m.contributions ?? {}, where);
    const limits = resolveLimits(spec.limits, where, m.nominal);
    const guardBand = spec.guardBand ?? 'uncertainty';
    const j = judge(value, unc.U, limits, { guardBand, ...(spec.uncertaintyTarget !== undefined ? { uncertaintyTarget: spec.uncertaintyTarget } : {}) });
    const decision = decide(j.verdict, spec.onMarginal ?? o.onMarginal ?? 'retest', attemptsLeft);
    return {
      id: spec.id,
      name: spec.name,
      unit: spec.unit,
      taken: true,
      value,
      u: unc.u,
      k: unc.k,
      U: unc.U,
      contributions: unc.contributions,
      limits,
      guardBand,
      verdict: j.verdict,
      decision,
      reason: j.reason,
      attempt,
      t: o.clock.now(),
      at: wall(),
      ...(m.diag ? { diag: redactSecrets(m.diag) } : {}),
    };
  }
}

function notTaken(spec: MeasurementSpec, attempt: number): MeasurementResult {
  return {
    id: spec.id,
    name: spec.name,
    unit: spec.unit,
    taken: false,
    u: 0,
    k: spec.uncertainty?.k ?? 2,
    U: 0,
    contributions: [],
    guardBand: spec.guardBand ?? 'uncertainty',
    verdict: 'fail',
    decision: 'reject',
    reason: 'declared but never taken',
    attempt,
  };
}

function skipped(step: Step, index: number, kind: StepKind, reason: string, t: number, at: string): StepResult {
  return {
    index,
    name: step.name,
    ...(step.suite ? { suite: step.suite } : {}),
    kind,
    status: 'skip',
    flagged: false,
    reason,
    attempt: 0,
    maxAttempts: 1 + Math.max(0, step.retries ?? 0),
    earlierAttempts: [],
    measurements: [],
    checks: [],
    startedT: t,
    finishedT: t,
    ms: 0,
    startedAt: at,
    finishedAt: at,
  };
}

function reasonText(r: unknown): string {
  return r instanceof Error ? r.message : String(r);
}
