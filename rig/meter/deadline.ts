import type { Clock } from '../core/clock.ts';

/**
 * Race `work` against a deadline on `clock` (virtual or real). On expiry `onTimeout` builds the error to
 * throw (so it can capture the bytes seen so far). The pending timer is always cancelled.
 */
export async function withDeadline<T>(clock: Clock, ms: number, work: Promise<T>, onTimeout: () => Error): Promise<T> {
  const ac = new AbortController();
  const expired = clock.sleep(ms, ac.signal).then(
    () => {
      throw onTimeout();
    },
    () => undefined as never, // aborted because work settled first
  );
  try {
    return await Promise.race([work, expired]);
  } finally {
    ac.abort();
  }
}
