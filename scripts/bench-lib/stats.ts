/** Order statistics for benchmark samples (nearest-rank percentiles). */

export interface Summary {
  n: number;
  median: number;
  p95: number;
  max: number;
  min: number;
  sum: number;
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    n: samples.length,
    median: percentile(samples, 50),
    p95: percentile(samples, 95),
    max: samples.length ? Math.max(...samples) : NaN,
    min: samples.length ? Math.min(...samples) : NaN,
    sum: samples.reduce((a, b) => a + b, 0),
  };
}
