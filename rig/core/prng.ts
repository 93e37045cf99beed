/**
 * mulberry32: a tiny deterministic PRNG, identical on every platform, so a seed fully determines
 * synthetic images, virtual units and property-test sequences.
 */
export function mulberry32U32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** The same generator scaled to [0, 1). */
export function mulberry32(seed: number): () => number {
  const next = mulberry32U32(seed);
  return () => next() / 4294967296;
}

/**
 * A counter-based hash to [0, 1): the same (seed, stream, index) always gives the same value, so a
 * simulator can ask for "the noise of segment k" at any time, in any order, without keeping state.
 */
export function hashUnit(seed: number, stream: number, index: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(stream >>> 0, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) ^ Math.imul(index | 0, 0x27d4eb2f) ^ Math.imul(Math.floor(index / 4294967296) | 0, 0x165667b1);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 4294967296;
}
