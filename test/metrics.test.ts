/**
 * lib/metrics: FID (equal sets, the diagonal closed form, a numpy/scipy reference hard-coded below),
 * the streaming Gaussian statistics, the diversity metrics on stub generators (collapsed, random,
 * and one whose variation all comes from one level), the classifier score of a perfect classifier on
 * real MNIST test digits, and nearest neighbours against brute force.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { ImageDataset, loadDataset } from '../lib/datasets/dataset';
import { encoderAccuracy, loadEncoder } from '../lib/train-encoder';
import { encoderClassifier } from '../lib/metrics/classifier';
import { GenerativeModel, diversity, duplicateFraction } from '../lib/metrics/diversity';
import { GaussianStats, fitGaussian, frechetDistance } from '../lib/metrics/fid';
import { ScoreAccumulator } from '../lib/metrics/inception-score';
import { nearestNeighbours, writeNeighbourGrid } from '../lib/metrics/neighbours';
import { readPng } from '../lib/png';

before(async () => {
  await initBackend('cpu');
});

/** Deterministic uniform [0,1) numbers. */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

function gaussianRows(n: number, d: number, seed: number, scale = 1, offset = 0): Float64Array {
  const rnd = lcg(seed);
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    // Correlated features: each is the previous plus fresh noise.
    let prev = 0;
    for (let j = 0; j < d; j++) {
      const u = Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
      prev = 0.6 * prev + u;
      out[i * d + j] = offset + scale * prev;
    }
  }
  return out;
}

/** Two-pass mean and unbiased covariance, the textbook way. */
function directCov(x: Float64Array, d: number): { mean: Float64Array; cov: Float64Array } {
  const n = x.length / d;
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += x[i * d + j] / n;
  const cov = new Float64Array(d * d);
  for (let i = 0; i < n; i++)
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) cov[a * d + b] += ((x[i * d + a] - mean[a]) * (x[i * d + b] - mean[b])) / (n - 1);
  return { mean, cov };
}

// ---------------------------------------------------------------- Gaussian statistics and FID

test('GaussianStats: batches merged exactly, even far from the origin (no sum-of-squares cancellation)', () => {
  const d = 5;
  const x = gaussianRows(301, d, 1, 1e-3, 1e4); // mean 1e4, std 1e-3: x x^T would lose every digit
  const s = new GaussianStats(d);
  let start = 0;
  for (const b of [1, 7, 100, 3, 190]) {
    s.add(x.subarray(start * d, (start + b) * d));
    start += b;
  }
  assert.equal(s.n, 301);
  const ref = directCov(x, d);
  const cov = s.cov();
  ref.cov.forEach((v, i) => assert.ok(Math.abs(cov[i] - v) <= 1e-9 * Math.abs(ref.cov[(Math.floor(i / d)) * (d + 1)]), `cov[${i}] ${cov[i]} vs ${v}`));
  s.mean().forEach((v, i) => assert.ok(Math.abs(v - ref.mean[i]) < 1e-9));
  assert.throws(() => new GaussianStats(3).add([1, 2]), /not a whole number of rows of 3/);
  assert.throws(() => new GaussianStats(2).add([1, NaN]), /feature 1 is NaN/);
  const one = new GaussianStats(2);
  one.add([1, 2]);
  assert.throws(() => one.cov(), /at least 2 rows/);
});

test('FID of a set with itself is 0, also when the covariance is singular (fewer rows than dimensions)', () => {
  for (const [n, d] of [
    [200, 16],
    [40, 64],
  ]) {
    const g = fitGaussian(gaussianRows(n, d, 2), d);
    const f = frechetDistance(g, g);
    assert.ok(Math.abs(f) < 1e-6, `n=${n} d=${d}: ${f}`);
  }
  // And it is not 0 for a different set.
  const d = 16;
  assert.ok(frechetDistance(fitGaussian(gaussianRows(200, d, 2), d), fitGaussian(gaussianRows(200, d, 3), d)) > 0.1);
});

test('FID of diagonal Gaussians: sum (sqrt a - sqrt b)^2 + ||mu1 - mu2||^2', () => {
  const d = 6;
  const a = [0.5, 1, 2, 4, 0.1, 3];
  const b = [1, 1, 0.5, 9, 0.2, 0];
  const mu1 = Float64Array.from([0, 1, 2, 3, 4, 5]);
  const mu2 = Float64Array.from([0.5, 1, 1, 3, 4, 7]);
  const diag = (v: number[]) => {
    const m = new Float64Array(d * d);
    v.forEach((x, i) => (m[i * d + i] = x));
    return m;
  };
  const expected = a.reduce((s, x, i) => s + (Math.sqrt(x) - Math.sqrt(b[i])) ** 2, 0) + mu1.reduce((s, x, i) => s + (x - mu2[i]) ** 2, 0);
  const got = frechetDistance({ mean: mu1, cov: diag(a) }, { mean: mu2, cov: diag(b) });
  assert.ok(Math.abs(got - expected) < 1e-10, `${got} vs ${expected}`);
  assert.throws(() => frechetDistance({ mean: mu1, cov: diag(a) }, { mean: new Float64Array(2), cov: new Float64Array(4) }), /dimensions differ/);
});

// Generated once with numpy 1.24 + scipy 1.10 (pytorch-fid's formula):
//   mu, s = x.mean(0), np.cov(x, rowvar=False); covmean = scipy.linalg.sqrtm(s1.dot(s2)).real
//   fid = ((mu1 - mu2)**2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
const REF_A = [[-3.0894, 0.1223, 1.1383, 0.1224], [-0.635, 1.3265, -0.3393, -1.4282], [1.3566, 0.3875, 0.2131, 1.293], [0.3361, 0.5609, -0.2038, -0.2186], [2.061, 0.8757, -0.4465, 0.5145], [0.1087, 0.2728, 0.3966, 0.3424], [-1.0891, 0.4805, 0.1333, -1.6095], [1.2827, 0.0983, 0.0836, 0.7453], [-0.7148, 0.1407, 0.8938, 2.1815], [1.3828, 0.9664, -0.2261, 1.5612], [0.5828, 0.8464, -0.2318, -1.1569], [-0.368, 0.4174, 0.6375, 1.1775]];
const REF_B = [[0.3108, -0.1994, 0.0105, -0.8756], [-0.0256, -0.3325, -0.6, 0.5063], [1.3831, -0.671, -0.5385, -1.104], [-0.2958, 0.3924, 0.0042, 0.6081], [1.1249, 0.4642, 0.2637, -1.0459], [-1.0362, -0.2098, 0.1184, -0.4186], [-0.5423, -1.4976, -0.4044, -3.1967], [0.1144, 0.061, 0.1257, -1.7427], [0.8606, 0.9589, 0.0609, 1.3331], [0.5004, -0.1107, -0.7177, 1.2716]];
const REF_FID = 2.4560484346992606;

test('FID agrees with numpy + scipy.linalg.sqrtm on a hard-coded case', () => {
  const f = frechetDistance(fitGaussian(REF_A.flat(), 4), fitGaussian(REF_B.flat(), 4));
  assert.ok(Math.abs(f - REF_FID) < 1e-9 * REF_FID, `${f} vs scipy ${REF_FID}`);
});

// ---------------------------------------------------------------- diversity

const H = 8;

/**
 * A two-level stub with the SGAN generate() interface. fc3 = f(label, z1); image = g(fc3, z0), where
 * `uses` says which noises actually reach the output.
 */
function stub(levels: 1 | 2, uses: { z0: boolean; z1: boolean }): GenerativeModel {
  const proj0 = tf.randomNormal([4, H * H], 0, 3, 'float32', 11);
  const proj1 = tf.randomNormal([4, 16], 0, 1, 'float32', 12);
  const back = tf.randomNormal([16, H * H], 0, 0.5, 'float32', 13);
  const stacks = levels === 2 ? [{ zDim: 4 }, { zDim: 4 }] : [{ zDim: 4 }];
  return {
    levels,
    cfg: { stacks },
    generate(labels, z) {
      return tf.tidy(() => {
        const n = labels.shape[0];
        const lab = tf.tile(tf.reshape(tf.mul(tf.cast(labels, 'float32'), 0.1), [n, 1]), [1, 16]);
        const fc3 = levels === 2 && uses.z1 ? tf.add(lab, tf.matMul(z[1], proj1)) : tf.mul(lab, 1);
        let logits = tf.matMul(fc3, back);
        if (uses.z0) logits = tf.add(logits, tf.matMul(tf.sub(z[0], 0.5), proj0));
        const x = tf.reshape(tf.sigmoid(logits), [n, H, H, 1]);
        return levels === 2 ? [x, fc3] : [x];
      });
    },
  };
}

test('a collapsed generator (one image per class) has no diversity and only duplicates', async () => {
  const m = await diversity(stub(2, { z0: false, z1: false }), { samples: 6, conditions: 1 });
  assert.ok(m.level0_diversity < 1e-6, `level0 ${m.level0_diversity}`);
  assert.ok(m.level1_diversity! < 1e-6);
  assert.ok(m.level1_pixel_diversity! < 1e-6);
  assert.ok(m.duplicate_fraction > 0.999, `duplicates ${m.duplicate_fraction}`);
});

test('a generator using all its noise is diverse with no duplicates; each level is credited for its own noise', async () => {
  const all = await diversity(stub(2, { z0: true, z1: true }), { samples: 6, conditions: 2 });
  assert.ok(all.level0_diversity > 0.05, `level0 ${all.level0_diversity}`);
  assert.ok(all.level1_diversity! > 0.05 && all.level1_pixel_diversity! > 0.05, JSON.stringify(all));
  assert.equal(all.duplicate_fraction, 0);
  // Noise only at level 1: fixing fc3 leaves nothing to vary.
  const top = await diversity(stub(2, { z0: false, z1: true }), { samples: 6, conditions: 1 });
  assert.ok(top.level0_diversity < 1e-6 && top.level1_diversity! > 0.05);
  // Noise only at level 0: fc3 does not move with z1.
  const bottom = await diversity(stub(2, { z0: true, z1: false }), { samples: 6, conditions: 1 });
  assert.ok(bottom.level0_diversity > 0.05 && bottom.level1_diversity! < 1e-6 && bottom.level1_pixel_diversity! < 1e-6);
});

test('a single-stack model has level-0 diversity only', async () => {
  const m = await diversity(stub(1, { z0: true, z1: false }), { samples: 5, conditions: 1, classes: 3 });
  assert.ok(m.level0_diversity > 0.05);
  assert.equal(m.level1_diversity, null);
  assert.equal(m.level1_pixel_diversity, null);
});

test('duplicate threshold: real digits of one class are not near-duplicates, copies are', async () => {
  const ds = loadDataset('mnist', { split: 'test' });
  const idx: number[] = [];
  for (let i = 0; i < ds.n && idx.length < 30; i++) if (ds.labels[i] === 1) idx.push(i); // ones: the most alike
  const x = tf.tensor4d(Float32Array.from(idx.flatMap((i) => Array.from(ds.pixels.subarray(i * 784, (i + 1) * 784), (v) => v / 255))), [idx.length, 28, 28, 1]);
  assert.equal(await duplicateFraction(x), 0);
  const copies = tf.tile(tf.slice(x, [0, 0, 0, 0], [1, -1, -1, -1]), [5, 1, 1, 1]);
  const noisy = tf.add(copies, tf.randomUniform(copies.shape, -0.02, 0.02, 'float32', 1));
  assert.equal(await duplicateFraction(noisy), 1);
  tf.dispose([x, copies, noisy]);
});

// ---------------------------------------------------------------- classifier score on real digits

test('a perfect classifier on real MNIST test digits scores close to 10 (streamed per split)', () => {
  const ds = loadDataset('mnist', { split: 'test' });
  const acc = new ScoreAccumulator(ds.n, 10, 10);
  for (let start = 0; start < ds.n; start += 300) {
    const rows = Math.min(300, ds.n - start);
    const p = new Float32Array(rows * 10);
    for (let r = 0; r < rows; r++) p[r * 10 + ds.labels[start + r]] = 1;
    acc.add(p);
  }
  const s = acc.result();
  // exp(entropy of each split's label histogram): 10 only for perfectly balanced splits.
  assert.ok(s.mean > 9.5 && s.mean <= 10, `mean ${s.mean}`);
  assert.ok(s.std < 0.2, `std ${s.std}`);
});

const AUTHORS_ENCODER = path.join(__dirname, '..', '..', 'shared', 'data', 'sgan-pretrained', 'mnist_encoder.npz');

test("the authors' MNIST encoder as judge: real test digits score near 10", { skip: fs.existsSync(AUTHORS_ENCODER) ? false : 'no ../shared/data/sgan-pretrained' }, async () => {
  const full = loadDataset('mnist', { split: 'test' });
  const n = 500;
  const ds: ImageDataset = { ...full, n, pixels: full.pixels.subarray(0, n * 784), labels: full.labels.subarray(0, n) };
  const enc = loadEncoder(AUTHORS_ENCODER);
  const judge = encoderClassifier(enc);
  const acc = new ScoreAccumulator(n, 10, 5);
  for (let start = 0; start < n; start += 250) {
    const x = tf.tensor4d(Float32Array.from(ds.pixels.subarray(start * 784, (start + 250) * 784), (v) => v / 255), [250, 28, 28, 1]);
    const out = judge.classify(x);
    acc.add((await out.probs.data()) as Float32Array);
    tf.dispose([x, out.probs, out.features!]);
  }
  const s = acc.result();
  assert.ok(s.mean > 8.5 && s.mean <= 10, `classifier score ${s.mean}`);
  assert.ok((await encoderAccuracy(enc, ds)) > 0.95);
  enc.dispose();
});

// ---------------------------------------------------------------- nearest neighbours

test('nearest neighbours match brute force, streamed in batches; the grid has k+1 columns', async () => {
  const full = loadDataset('mnist', { split: 'train' });
  const n = 230;
  const train: ImageDataset = { ...full, n, pixels: full.pixels.subarray(0, n * 784), labels: full.labels.subarray(0, n) };
  const pick = [3, 100, 229];
  // Samples: three training digits slightly perturbed, so each one's nearest neighbour is itself.
  const base = tf.tensor4d(Float32Array.from(pick.flatMap((i) => Array.from(train.pixels.subarray(i * 784, (i + 1) * 784), (v) => v / 255))), [3, 28, 28, 1]);
  const samples = tf.clipByValue(tf.add(base, tf.randomUniform(base.shape, -0.01, 0.01, 'float32', 2)), 0, 1) as tf.Tensor4D;
  const k = 4;
  const nb = await nearestNeighbours(samples, train, { k, batchSize: 64 });
  const s = (await samples.data()) as Float32Array;
  for (let q = 0; q < 3; q++) {
    const d = Array.from({ length: n }, (_, i) => {
      let sum = 0;
      for (let p = 0; p < 784; p++) sum += (s[q * 784 + p] - train.pixels[i * 784 + p] / 255) ** 2;
      return { i, sum };
    }).sort((a, b) => a.sum - b.sum);
    assert.equal(nb.indices[q * k], pick[q]);
    assert.deepEqual(Array.from(nb.indices.subarray(q * k, (q + 1) * k)), d.slice(0, k).map((e) => e.i));
    d.slice(0, k).forEach((e, j) => assert.ok(Math.abs(nb.distances[q * k + j] - e.sum) < 1e-2 + 1e-4 * e.sum));
  }
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-nn-')), 'nn.png');
  await writeNeighbourGrid(file, samples, train, { k });
  const png = readPng(fs.readFileSync(file));
  // 28x28 digits at scale 2 with 2-pixel padding: (k+1) columns, 3 rows.
  assert.equal(png.width, (k + 1) * (56 + 2) + 2);
  assert.equal(png.height, 3 * (56 + 2) + 2);
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
  tf.dispose([base, samples]);
});
