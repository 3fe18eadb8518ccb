/**
 * The one in-memory dataset shape every loader produces, and the batching built on it.
 *
 * Images stay as uint8 NHWC for the whole run (MNIST 60k = 47 MB, CIFAR 50k = 154 MB); only one
 * batch at a time is turned into a float tensor, so memory stays flat however long training runs.
 *
 * Data order is a pure function of (seed, epoch): epochPermutation regenerates any epoch's order
 * from scratch, so a resumed run needs no saved RNG state, just (epoch, batch) to skip to.
 */
import * as tf from '@tensorflow/tfjs';
import seedrandom from 'seedrandom';
import { loadMnist } from './mnist';
import { loadCifar10 } from './cifar10';
import { loadSvhn } from './svhn';

export type DatasetName = 'mnist' | 'cifar10' | 'svhn';
export type Split = 'train' | 'test';

export const DATASET_NAMES: readonly DatasetName[] = ['mnist', 'cifar10', 'svhn'];

export interface ImageDataset {
  name: DatasetName;
  split: Split;
  n: number;
  height: number;
  width: number;
  channels: number;
  /** n*h*w*c bytes, NHWC, 0..255. */
  pixels: Uint8Array;
  /** n class labels, 0..9. */
  labels: Uint8Array;
  /** Human description of where the data came from (package or files). */
  source: string;
}

export interface LoadOptions {
  split: Split;
  /** Folder holding that dataset's files; omitted = the embedded MNIST (mnist only). */
  dataDir?: string;
}

export function isDatasetName(s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s);
}

function describe(ds: ImageDataset): string {
  return `${ds.name} ${ds.split} (${ds.source})`;
}

/** Check sizes agree and labels are 0..9; throws naming the first offending index and value. */
export function validateDataset(ds: ImageDataset): void {
  for (const [k, v] of Object.entries({ n: ds.n, height: ds.height, width: ds.width, channels: ds.channels })) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`dataset ${describe(ds)}: ${k} is ${v}, expected a positive integer`);
  }
  const expectedPixels = ds.n * ds.height * ds.width * ds.channels;
  if (ds.pixels.length !== expectedPixels) {
    throw new Error(
      `dataset ${describe(ds)}: pixels has ${ds.pixels.length} bytes, expected ${expectedPixels} (= ${ds.n}x${ds.height}x${ds.width}x${ds.channels})`,
    );
  }
  if (ds.labels.length !== ds.n) throw new Error(`dataset ${describe(ds)}: labels has ${ds.labels.length} entries, expected n = ${ds.n}`);
  for (let i = 0; i < ds.n; i++) {
    if (ds.labels[i] > 9) throw new Error(`dataset ${describe(ds)}: label at index ${i} is ${ds.labels[i]}, expected 0..9`);
  }
}

function checkIndices(ds: ImageDataset, indices: ArrayLike<number>): void {
  for (let i = 0; i < indices.length; i++) {
    const k = indices[i];
    if (!Number.isInteger(k) || k < 0 || k >= ds.n) throw new Error(`dataset ${describe(ds)}: batch index ${k} out of range 0..${ds.n - 1}`);
  }
}

/** Images at `indices` as a float32 NHWC tensor scaled to [0,1] (models subtract means themselves). */
export function imageBatch(ds: ImageDataset, indices: ArrayLike<number>): tf.Tensor4D {
  checkIndices(ds, indices);
  const per = ds.height * ds.width * ds.channels;
  const out = new Float32Array(indices.length * per);
  for (let b = 0; b < indices.length; b++) {
    const src = indices[b] * per;
    const dst = b * per;
    for (let j = 0; j < per; j++) out[dst + j] = ds.pixels[src + j] / 255;
  }
  return tf.tensor4d(out, [indices.length, ds.height, ds.width, ds.channels], 'float32');
}

/** Labels at `indices` as an int32 tensor. */
export function labelBatch(ds: ImageDataset, indices: ArrayLike<number>): tf.Tensor1D {
  checkIndices(ds, indices);
  const out = new Int32Array(indices.length);
  for (let b = 0; b < indices.length; b++) out[b] = ds.labels[indices[b]];
  return tf.tensor1d(out, 'int32');
}

/**
 * The order of epoch `epoch` for a run with `seed`: a Fisher–Yates shuffle of 0..n-1 driven by a
 * seedrandom stream keyed on (seed, epoch), so each epoch differs and any epoch can be regenerated
 * on its own (resume) without replaying the ones before it.
 */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  if (!Number.isInteger(n) || n < 0) throw new Error(`epochPermutation: n is ${n}, expected a non-negative integer`);
  const rng = seedrandom(`sgan-ts/epoch-permutation/${seed}/${epoch}`);
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  return perm;
}

/** Full batches per epoch; the last partial batch is dropped so every step has the same shape. */
export function batchesPerEpoch(n: number, batchSize: number): number {
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`batchesPerEpoch: batch size is ${batchSize}, expected a positive integer`);
  return Math.floor(n / batchSize);
}

export interface BatchIteratorOptions {
  batchSize: number;
  seed: number;
  /** Epoch to start at (default 0). */
  startEpoch?: number;
  /** Batch within startEpoch to start at (default 0), for resuming mid-epoch. */
  startBatch?: number;
  /** Stop before this epoch (exclusive); default: never stop, the caller breaks out. */
  endEpoch?: number;
}

export interface Batch {
  epoch: number;
  batch: number;
  indices: Uint32Array;
  /** [batchSize, h, w, c] float32 in [0,1]; the consumer disposes it. */
  x: tf.Tensor4D;
  /** [batchSize] int32; the consumer disposes it. */
  y: tf.Tensor1D;
}

/**
 * Yields batches epoch after epoch. Tensors are built lazily, one batch per next(), so breaking
 * out of the loop leaks nothing; the caller disposes x and y of each batch it received.
 */
export function* batchIterator(ds: ImageDataset, opts: BatchIteratorOptions): Generator<Batch, void, undefined> {
  const perEpoch = batchesPerEpoch(ds.n, opts.batchSize);
  if (perEpoch === 0) throw new Error(`batchIterator: ${describe(ds)} has ${ds.n} images, fewer than one batch of ${opts.batchSize}`);
  const startEpoch = opts.startEpoch ?? 0;
  const startBatch = opts.startBatch ?? 0;
  if (!Number.isInteger(startBatch) || startBatch < 0 || startBatch > perEpoch) {
    throw new Error(`batchIterator: startBatch is ${startBatch}, expected 0..${perEpoch} (${perEpoch} batches per epoch)`);
  }
  const endEpoch = opts.endEpoch ?? Infinity;
  for (let epoch = startEpoch; epoch < endEpoch; epoch++) {
    const perm = epochPermutation(ds.n, opts.seed, epoch);
    for (let batch = epoch === startEpoch ? startBatch : 0; batch < perEpoch; batch++) {
      const indices = perm.slice(batch * opts.batchSize, (batch + 1) * opts.batchSize);
      yield { epoch, batch, indices, x: imageBatch(ds, indices), y: labelBatch(ds, indices) };
    }
  }
}

/** Load one split of a dataset and check it is self-consistent. */
export function loadDataset(name: DatasetName, opts: LoadOptions): ImageDataset {
  if (opts.split !== 'train' && opts.split !== 'test') throw new Error(`loadDataset: split '${String(opts.split)}', expected 'train' or 'test'`);
  let ds: ImageDataset;
  switch (name) {
    case 'mnist':
      ds = loadMnist(opts.split, opts.dataDir);
      break;
    case 'cifar10':
    case 'svhn': {
      if (!opts.dataDir) {
        throw new Error(`${name}: no data folder given; fetch the files with 'sgan data download ${name} --data-dir DIR' and pass that DIR`);
      }
      ds = name === 'cifar10' ? loadCifar10(opts.split, opts.dataDir) : loadSvhn(opts.split, opts.dataDir);
      break;
    }
    default:
      throw new Error(`loadDataset: unknown dataset '${String(name)}', expected one of ${DATASET_NAMES.join(', ')}`);
  }
  validateDataset(ds);
  return ds;
}
