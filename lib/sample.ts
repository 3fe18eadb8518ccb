/**
 * The paper's three kinds of sample grid, from a trained SGAN (BN running averages, no dropout):
 *   classes: row r = class r, each cell fresh noise at every level;
 *   level1:  row r = class r, z0 fixed per row, z1 varies along the row (coarse: pose, shape, width);
 *   level0:  row r = class r, one fc3 per row (z1 fixed), z0 varies along the row (fine detail).
 * With a single-stack model (the DCGAN baseline) level1 is not defined.
 */
import * as tf from '@tensorflow/tfjs';
import { ImageStack, writeGridPng } from './png';
import { NUM_CLASSES, SGAN } from './sgan';
import { deriveSeed } from './seed';

export type GridKind = 'classes' | 'level1' | 'level0';
export const GRID_KINDS: readonly GridKind[] = ['classes', 'level1', 'level0'];

/** Noise for `rows` x `cols` cells where `shareAlongRow[i]` makes level i's noise constant in a row. */
export function gridNoise(m: SGAN, rows: number, cols: number, seed: number, shareAlongRow: boolean[]): tf.Tensor2D[] {
  return m.cfg.stacks.map((s, i) =>
    tf.tidy(() => {
      const seedI = deriveSeed(seed, 'grid', i);
      if (!shareAlongRow[i]) return tf.randomUniform([rows * cols, s.zDim], 0, 1, 'float32', seedI) as tf.Tensor2D;
      const perRow = tf.randomUniform([rows, 1, s.zDim], 0, 1, 'float32', seedI);
      return tf.reshape(tf.tile(perRow, [1, cols, 1]), [rows * cols, s.zDim]) as tf.Tensor2D;
    }),
  );
}

/** Labels 0..9 repeated `cols` times per row. */
export function rowLabels(rows: number, cols: number): tf.Tensor1D {
  return tf.tensor1d(Array.from({ length: rows * cols }, (_, k) => Math.floor(k / cols) % NUM_CLASSES), 'int32');
}

/** Generate the images of one grid kind, [rows*cols, H, W, C] in [0,1]. */
export function sampleGrid(m: SGAN, kind: GridKind, cols: number, seed: number): tf.Tensor4D {
  const rows = NUM_CLASSES;
  const L = m.levels;
  if (kind === 'level1' && L < 2) throw new Error(`grid level1 needs a model with two stacks; this one has ${L}`);
  // classes: nothing shared; level1: all levels but 1 shared; level0: everything above 0 shared.
  const share = m.cfg.stacks.map((_, i) => (kind === 'classes' ? false : kind === 'level1' ? i !== 1 : i !== 0));
  const z = gridNoise(m, rows, cols, seed, share);
  const labels = rowLabels(rows, cols);
  const outs = m.generate(labels, z);
  const x = outs[0] as tf.Tensor4D;
  tf.dispose([...z, labels, ...outs.slice(1)]);
  return x;
}

export async function toImageStack(x: tf.Tensor4D): Promise<ImageStack> {
  const [n, h, w, c] = x.shape;
  return { data: (await x.data()) as Float32Array, n, h, w, c };
}

export async function writeSampleGrid(m: SGAN, kind: GridKind, file: string, opts: { cols?: number; seed?: number } = {}): Promise<void> {
  const cols = opts.cols ?? 10;
  const x = sampleGrid(m, kind, cols, opts.seed ?? 1);
  const scale = x.shape[1] <= 32 ? 2 : 1;
  writeGridPng(file, await toImageStack(x), { cols, scale, pad: 2 });
  x.dispose();
}
