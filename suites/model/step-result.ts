import { PlugrigError } from '../../rig/core/errors.ts';
import type { MeasurementResult } from './measurement.ts';
import { redactSecrets } from './redact.ts';

export interface CheckResult {
  name: string;
  ok: boolean;
  diag?: Record<string, unknown>;
  attempt: number;
  t: number;
}

/** A typed error as records keep it: name, code, message, context (secrets redacted), cause chain. */
export interface SerializedError {
  name: string;
  code?: string;
  message: string;
  context?: Record<string, unknown>;
  cause?: SerializedError;
}

export function serializeError(e: unknown, depth = 0): SerializedError {
  if (e instanceof PlugrigError) {
    const j = e.toJSON() as { name: string; code: string; message: string; context: Record<string, unknown> };
    const out: SerializedError = { name: j.name, code: j.code, message: j.message, context: redactSecrets(j.context) };
    if (e.cause !== undefined && depth < 8) out.cause = serializeError(e.cause, depth + 1);
    return out;
  }
  if (e instanceof Error) {
    const out: SerializedError = { name: e.name, message: e.message };
    if (e.cause !== undefined && depth < 8) out.cause = serializeError(e.cause, depth + 1);
    return out;
  }
  return { name: 'Error', message: String(e) };
}

/** The error chain from outermost to root cause. */
export function errorChain(e: SerializedError | undefined): SerializedError[] {
  const out: SerializedError[] = [];
  for (let x = e; x; x = x.cause) out.push(x);
  return out;
}

export type StepStatus = 'pass' | 'fail' | 'skip';
export type StepKind = 'main' | 'cleanup' | 'safe-state';

/** One earlier attempt of a retried step, kept, not overwritten. */
export interface AttemptSummary {
  attempt: number;
  status: 'pass' | 'fail' | 'retest';
  reason: string;
  measurements: MeasurementResult[];
  checks: CheckResult[];
  error?: SerializedError;
  ms: number;
}

export interface StepResult {
  index: number;
  name: string;
  suite?: string;
  kind: StepKind;
  status: StepStatus;
  /** Passed with a measurement accepted under the pass-with-flag marginal action. */
  flagged: boolean;
  /** Why it failed or was skipped. */
  reason?: string;
  /** Attempt that produced this result (1-based) and how many were allowed. */
  attempt: number;
  maxAttempts: number;
  earlierAttempts: AttemptSummary[];
  measurements: MeasurementResult[];
  checks: CheckResult[];
  error?: SerializedError;
  data?: Record<string, unknown>;
  /** Clock ms (virtual or real) and wall time. */
  startedT: number;
  finishedT: number;
  ms: number;
  startedAt: string;
  finishedAt: string;
}

export interface SlotResult {
  slot: number;
  verdict: 'pass' | 'fail';
  flagged: boolean;
  aborted: boolean;
  /** Facts about the unit the steps found (MAC, ...). */
  unit: Record<string, unknown>;
  steps: StepResult[];
  /** The first failing step's reason. */
  reason?: string;
  /** A result sink (unit record, store) refused a write: the unit failed for it, whatever its steps did. */
  recordError?: SerializedError;
  ms: number;
  startedAt: string;
  finishedAt: string;
}
