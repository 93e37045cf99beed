import type { Clock } from '../core/clock.ts';
import { InstrumentError, PlugrigError } from '../core/errors.ts';

/** How often and how patiently to repeat an instrument transaction. */
export interface RetryPolicy {
  /** Total attempts including the first (>= 1). */
  attempts: number;
  /** Wait before the 2nd attempt, ms. */
  backoffMs: number;
  /** Each further wait is multiplied by this (default 2). */
  factor?: number;
  maxBackoffMs?: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, backoffMs: 50, factor: 2, maxBackoffMs: 1000 };

/** Wait before attempt `attempt` (1-based; attempt 1 has none). */
export function backoffBefore(policy: RetryPolicy, attempt: number): number {
  if (attempt <= 1) return 0;
  const ms = policy.backoffMs * (policy.factor ?? 2) ** (attempt - 2);
  return Math.min(ms, policy.maxBackoffMs ?? Number.POSITIVE_INFINITY);
}

/**
 * Run `op` until it succeeds or the policy is exhausted. Only errors `retryable` accepts are retried
 * (default: InstrumentError, i.e. timeouts, CRC errors, garbage); anything else propagates at once.
 * The final error is the last one, with `attempts` added to its context.
 */
export async function withRetry<T>(
  clock: Clock,
  policy: RetryPolicy,
  op: (attempt: number) => Promise<T>,
  retryable: (e: unknown) => boolean = (e) => e instanceof InstrumentError,
): Promise<T> {
  const attempts = Math.max(1, Math.floor(policy.attempts));
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const wait = backoffBefore(policy, attempt);
    if (wait > 0) await clock.sleep(wait);
    try {
      return await op(attempt);
    } catch (e) {
      last = e;
      if (!retryable(e)) throw e;
    }
  }
  if (last instanceof PlugrigError) last.context.attempts = attempts;
  throw last;
}
