/**
 * Seeds. Every random number in a run is a pure function of (run seed, stream, step): weight init,
 * noise z, dropout and Gaussian-noise layers each draw from their own stream, and data order comes
 * from lib/datasets/dataset.ts's epochPermutation(seed, epoch). So the "RNG state" a checkpoint needs
 * is just the seed and the step counter, and a resumed run draws exactly what an unbroken run would.
 */

/** 32-bit integer mix (the finaliser of MurmurHash3): small input changes flip about half the bits. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A stable string hash (FNV-1a) so streams can be named ('z1', 'dropout/D0', ...). */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Derive a uint32 seed from a base seed and any number of integer or string parts. */
export function deriveSeed(base: number, ...parts: Array<number | string>): number {
  let h = mix32((base >>> 0) ^ 0x9e3779b9);
  for (const p of parts) {
    const v = typeof p === 'string' ? hashString(p) : p >>> 0;
    h = mix32(h ^ mix32(v + 0x7f4a7c15));
  }
  return h;
}

/**
 * Source of per-op seeds for one forward pass: each call to next() gives a fresh, deterministic seed.
 * Layers that need randomness (dropout, Gaussian noise) take one of these rather than a global RNG,
 * so the order in which unrelated code draws numbers cannot change a run.
 */
export class SeedStream {
  private counter = 0;
  constructor(private readonly base: number) {}
  next(): number {
    return deriveSeed(this.base, this.counter++);
  }
}
