import type { Clock } from '../rig/core/clock.ts';

/** One reading of the jig's light sensor over the plug's LED. */
export interface LightSample {
  t: number;
  level: number | undefined;
  lit: boolean;
}

/**
 * Sample the light sensor every sampleMs in the background until stop() (or the signal aborts);
 * what a step needs to tell a blink from a solid or dark LED while it waits for something else.
 */
export function sampleLight(clock: Clock, read: () => { level: number | undefined; lit: boolean }, sampleMs: number, signal?: AbortSignal): { samples: LightSample[]; stop(): Promise<void> } {
  const samples: LightSample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped && !signal?.aborted) {
      samples.push({ t: clock.now(), ...read() });
      try {
        await clock.sleep(sampleMs, signal);
      } catch {
        return;
      }
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/**
 * Sample every sampleMs for durationMs, in the background, then resolve with the samples: bounded, so
 * it may outlive the step that started it (it only reads a sensor). A read that throws (the jig
 * closed meanwhile) ends it early with what it has.
 */
export async function sampleLightFor(clock: Clock, read: () => { level: number | undefined; lit: boolean }, sampleMs: number, durationMs: number): Promise<LightSample[]> {
  const samples: LightSample[] = [];
  const end = clock.now() + durationMs;
  try {
    for (;;) {
      samples.push({ t: clock.now(), ...read() });
      if (clock.now() >= end) return samples;
      await clock.sleep(Math.min(sampleMs, end - clock.now()));
    }
  } catch {
    return samples;
  }
}

/** Times at which the sampled LED changed state (the first sample after each change). */
export function edges(samples: readonly LightSample[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < samples.length; i++) if (samples[i]!.lit !== samples[i - 1]!.lit) out.push(samples[i]!.t);
  return out;
}

/**
 * Blink period from the edges: twice the mean half-period between the first and the last edge
 * (a 50 % duty blink toggles every half period). Each edge is seen up to one sample late, uniformly,
 * so the difference of two edge times is off by at most ±sampleMs (triangular); spread over
 * (n−1) half periods and doubled: half-width 2·sampleMs/(n−1). Undefined with fewer than 3 edges.
 */
export function blinkPeriod(edgeTimes: readonly number[], sampleMs: number): { periodMs: number; halfPeriods: number; samplingHalfWidthMs: number } | undefined {
  if (edgeTimes.length < 3) return undefined;
  const n = edgeTimes.length - 1;
  const span = edgeTimes[edgeTimes.length - 1]! - edgeTimes[0]!;
  return { periodMs: (2 * span) / n, halfPeriods: n, samplingHalfWidthMs: (2 * sampleMs) / n };
}

/** Share of samples in which the LED was lit, percent. */
export function litPercent(samples: readonly LightSample[]): number {
  return samples.length === 0 ? 0 : (100 * samples.filter((s) => s.lit).length) / samples.length;
}
