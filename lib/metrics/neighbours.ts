/**
 * Nearest training images of generated samples (the paper's check that samples are not copies of
 * the training set). Distances are squared L2 in pixel space, or in the encoder's fc3 space; the
 * training set is streamed in batches (||a||^2 + ||b||^2 - 2ab on the backend) and only a running
 * top-k per sample is kept, so the set is never duplicated as floats.
 */
import * as tf from '@tensorflow/tfjs';
import { ImageDataset, imageBatch } from '../datasets/dataset';
import { Encoder } from '../encoder';
import { ImageStack, writeGridPng } from '../png';
import { squaredDistances } from './diversity';

export type NeighbourSpace = 'pixel' | 'fc3';
export const NEIGHBOUR_SPACES: readonly NeighbourSpace[] = ['pixel', 'fc3'];

export interface NeighbourOptions {
  k?: number;
  space?: NeighbourSpace;
  /** Needed for space 'fc3'. */
  encoder?: Encoder;
  /** Training images per distance batch. */
  batchSize?: number;
}

export interface Neighbours {
  k: number;
  space: NeighbourSpace;
  /** [N, k] training indices, nearest first. */
  indices: Int32Array;
  /** [N, k] squared distances, ascending. */
  distances: Float32Array;
}

/** Insert (d, idx) into a sorted top-k list held in `dist`/`ids` at row offset `o`. */
function insertTopK(dist: Float32Array, ids: Int32Array, o: number, k: number, d: number, idx: number): void {
  if (d >= dist[o + k - 1]) return;
  let j = k - 1;
  while (j > 0 && dist[o + j - 1] > d) {
    dist[o + j] = dist[o + j - 1];
    ids[o + j] = ids[o + j - 1];
    j--;
  }
  dist[o + j] = d;
  ids[o + j] = idx;
}

function embed(x01: tf.Tensor4D, space: NeighbourSpace, encoder?: Encoder): tf.Tensor2D {
  if (space === 'fc3') {
    if (!encoder) throw new Error(`nearest neighbours in fc3 space need an encoder`);
    return encoder.features(x01);
  }
  return tf.reshape(x01, [x01.shape[0], -1]) as tf.Tensor2D;
}

/** The k nearest training images of each sample ([N,H,W,C] in [0,1]). */
export async function nearestNeighbours(samples: tf.Tensor4D, train: ImageDataset, opts: NeighbourOptions = {}): Promise<Neighbours> {
  const k = opts.k ?? 5;
  const space = opts.space ?? 'pixel';
  const bs = opts.batchSize ?? 500;
  const n = samples.shape[0];
  const [, h, w, c] = samples.shape;
  if (h !== train.height || w !== train.width || c !== train.channels) {
    throw new Error(`nearest neighbours: samples are ${h}x${w}x${c}, training images ${train.height}x${train.width}x${train.channels}`);
  }
  if (k < 1 || k > train.n) throw new Error(`nearest neighbours: k is ${k}, expected 1..${train.n}`);
  const dist = new Float32Array(n * k).fill(Infinity);
  const ids = new Int32Array(n * k).fill(-1);
  const a = tf.tidy(() => embed(samples, space, opts.encoder));
  try {
    for (let start = 0; start < train.n; start += bs) {
      const idx = Uint32Array.from({ length: Math.min(bs, train.n - start) }, (_, i) => start + i);
      const d = tf.tidy(() => squaredDistances(a, embed(imageBatch(train, idx), space, opts.encoder)));
      const values = (await d.data()) as Float32Array;
      d.dispose();
      const b = idx.length;
      for (let i = 0; i < n; i++) for (let j = 0; j < b; j++) insertTopK(dist, ids, i * k, k, values[i * b + j], start + j);
    }
  } finally {
    a.dispose();
  }
  return { k, space, indices: ids, distances: dist };
}

/** Grid images: row i = sample i, then its k neighbours (training pixels / 255). */
export async function neighbourStack(samples: tf.Tensor4D, train: ImageDataset, nb: Neighbours): Promise<ImageStack> {
  const [n, h, w, c] = samples.shape;
  const per = h * w * c;
  const x = (await samples.data()) as Float32Array;
  const data = new Float32Array(n * (nb.k + 1) * per);
  for (let i = 0; i < n; i++) {
    const row = i * (nb.k + 1);
    data.set(x.subarray(i * per, (i + 1) * per), row * per);
    for (let j = 0; j < nb.k; j++) {
      const src = nb.indices[i * nb.k + j] * per;
      const dst = (row + 1 + j) * per;
      for (let p = 0; p < per; p++) data[dst + p] = train.pixels[src + p] / 255;
    }
  }
  return { data, n: n * (nb.k + 1), h, w, c };
}

/** Write the neighbour grid PNG; returns the neighbours found. */
export async function writeNeighbourGrid(file: string, samples: tf.Tensor4D, train: ImageDataset, opts: NeighbourOptions = {}): Promise<Neighbours> {
  const nb = await nearestNeighbours(samples, train, opts);
  const stack = await neighbourStack(samples, train, nb);
  writeGridPng(file, stack, { cols: nb.k + 1, pad: 2, scale: samples.shape[1] <= 32 ? 2 : 1 });
  return nb;
}
