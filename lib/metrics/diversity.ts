/**
 * How much each level's noise changes the samples, for a fixed condition, and how many samples are
 * near-copies of each other: the paper's per-level variation (its Fig. 4 grids) as numbers, and a
 * mode-collapse detector. The Inception/classifier score misses collapse: a generator that draws one
 * perfect image per class scores as high as the real data (the paper's DCGAN (adv+cond) does this).
 *
 * For each class c and each of `conditions` draws:
 *   level0_diversity        pixel std across z0 with fc3 fixed (label c and one z1, so G1's output is
 *                           one fc3) — what the bottom stack adds;
 *   level1_diversity        fc3 std across z1 with label c (z0 irrelevant to fc3) — what the top adds;
 *   level1_pixel_diversity  pixel std across z1 with z0 fixed — the same variation seen in images;
 *   duplicate_fraction      of all pairs of samples of class c with every noise free, the fraction
 *                           whose RMS pixel distance ||a - b|| / sqrt(#pixels) is below `threshold`.
 * "std" is the population std (ddof 0) over the samples, per pixel / feature, then averaged over
 * pixels / features, conditions and classes. Single-stack models (the DCGAN baseline): level0 is the
 * pixel std across z0 for a fixed label, and the level-1 metrics are null.
 *
 * Threshold: 0.05 RMS on [0,1] pixels (about 13/255 per pixel everywhere) is far below the distance
 * between two different real digits or photos of one class (typically 0.2-0.4), yet far above the
 * float noise between copies of one image, so collapse reads ~1.0 and a healthy generator ~0.
 */
import * as tf from '@tensorflow/tfjs';
import { NUM_CLASSES } from '../sgan';
import { deriveSeed } from '../seed';

/** What diversity needs of a model: the SGAN class satisfies it; tests use stubs. */
export interface GenerativeModel {
  readonly levels: number;
  readonly cfg: { stacks: ReadonlyArray<{ zDim: number }> };
  /** Every level's output, bottom first; level 0 is images in [0,1] NHWC. */
  generate(labels: tf.Tensor1D, z: tf.Tensor2D[]): tf.Tensor[];
}

export interface DiversityOptions {
  /** Samples per condition (the std is taken over these). */
  samples?: number;
  /** Conditions drawn per class. */
  conditions?: number;
  seed?: number;
  threshold?: number;
  classes?: number;
}

export interface DiversityMetrics {
  level0_diversity: number;
  level1_diversity: number | null;
  level1_pixel_diversity: number | null;
  duplicate_fraction: number;
  duplicate_threshold: number;
  samples_per_condition: number;
  conditions_per_class: number;
}

export const DEFAULT_DUPLICATE_THRESHOLD = 0.05;

/** Mean over features of the population std over rows; x is [S, ...] (any rank >= 2). */
export function meanStdAcrossSamples(x: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const flat = tf.reshape(x, [x.shape[0], -1]);
    const { variance } = tf.moments(flat, 0);
    return tf.mean(tf.sqrt(tf.relu(variance))) as tf.Scalar;
  });
}

/** Squared distances between the rows of a [A, P] and b [B, P]: ||a||^2 + ||b||^2 - 2 a.b, >= 0. */
export function squaredDistances(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const na = tf.sum(tf.square(a), 1, true);
    const nb = tf.reshape(tf.sum(tf.square(b), 1), [1, -1]);
    return tf.relu(tf.sub(tf.add(na, nb), tf.mul(2, tf.matMul(a, b, false, true)))) as tf.Tensor2D;
  });
}

/** Fraction of the S(S-1)/2 pairs of images [S, ...] closer than threshold in RMS pixel distance. */
export async function duplicateFraction(x: tf.Tensor, threshold = DEFAULT_DUPLICATE_THRESHOLD): Promise<number> {
  const s = x.shape[0];
  if (s < 2) throw new Error(`duplicateFraction: needs at least 2 samples, got ${s}`);
  const count = tf.tidy(() => {
    const flat = tf.reshape(x, [s, -1]) as tf.Tensor2D;
    const pixels = flat.shape[1];
    const rms = tf.sqrt(tf.div(squaredDistances(flat, flat), pixels));
    // Strict upper triangle: each unordered pair once, no self-pairs.
    const upper = tf.sub(tf.linalg.bandPart(tf.ones([s, s]), 0, -1), tf.eye(s));
    return tf.sum(tf.mul(tf.cast(tf.less(rms, threshold), 'float32'), upper));
  });
  const pairs = (s * (s - 1)) / 2;
  const n = (await count.data())[0];
  count.dispose();
  return n / pairs;
}

/** z for one level: S fresh rows, or one row repeated S times when fixed. */
function levelNoise(zDim: number, s: number, fixed: boolean, seed: number): tf.Tensor2D {
  return tf.tidy(() => {
    if (!fixed) return tf.randomUniform([s, zDim], 0, 1, 'float32', seed) as tf.Tensor2D;
    return tf.tile(tf.randomUniform([1, zDim], 0, 1, 'float32', seed), [s, 1]) as tf.Tensor2D;
  });
}

/** Generate S samples of class c where only the levels in `free` get fresh noise. */
function generateWith(m: GenerativeModel, c: number, s: number, free: Set<number>, seed: number): tf.Tensor[] {
  const z = m.cfg.stacks.map((st, i) => levelNoise(st.zDim, s, !free.has(i), deriveSeed(seed, 'level', i)));
  const labels = tf.fill([s], c, 'int32') as tf.Tensor1D;
  const outs = m.generate(labels, z);
  tf.dispose([...z, labels]);
  return outs;
}

async function scalar(t: tf.Scalar): Promise<number> {
  const v = (await t.data())[0];
  t.dispose();
  return v;
}

export async function diversity(m: GenerativeModel, opts: DiversityOptions = {}): Promise<DiversityMetrics> {
  const S = opts.samples ?? 20;
  const C = opts.conditions ?? 2;
  const seed = opts.seed ?? 1;
  const threshold = opts.threshold ?? DEFAULT_DUPLICATE_THRESHOLD;
  const classes = opts.classes ?? NUM_CLASSES;
  if (S < 2) throw new Error(`diversity: samples per condition is ${S}, needs at least 2 for a spread`);
  const two = m.levels >= 2;
  const sums = { l0: 0, l1: 0, l1px: 0, dup: 0 };
  for (let c = 0; c < classes; c++) {
    for (let k = 0; k < C; k++) {
      const s = (what: string) => deriveSeed(seed, 'diversity', what, c, k);
      // Level 0: only z0 free.
      let outs = generateWith(m, c, S, new Set([0]), s('level0'));
      sums.l0 += await scalar(meanStdAcrossSamples(outs[0]));
      tf.dispose(outs);
      if (two) {
        // Level 1: only z1 free; fc3 (outs[1]) and the images it leads to.
        outs = generateWith(m, c, S, new Set([1]), s('level1'));
        sums.l1 += await scalar(meanStdAcrossSamples(outs[1]));
        sums.l1px += await scalar(meanStdAcrossSamples(outs[0]));
        tf.dispose(outs);
      }
      // Duplicates: every level free (the model's whole conditional distribution for class c).
      outs = generateWith(m, c, S, new Set(m.cfg.stacks.map((_, i) => i)), s('all'));
      sums.dup += await duplicateFraction(outs[0], threshold);
      tf.dispose(outs);
    }
  }
  const per = classes * C;
  return {
    level0_diversity: sums.l0 / per,
    level1_diversity: two ? sums.l1 / per : null,
    level1_pixel_diversity: two ? sums.l1px / per : null,
    duplicate_fraction: sums.dup / per,
    duplicate_threshold: threshold,
    samples_per_condition: S,
    conditions_per_class: C,
  };
}
