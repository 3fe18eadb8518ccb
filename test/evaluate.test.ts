/**
 * lib/evaluate.ts and `sgan evaluate` on a smoke MNIST checkpoint built here (seconds on wasm; the
 * untrained encoder is enough for plumbing). Checks the streamed numbers against the same numbers
 * computed another way, determinism in --seed, metrics.json, the CLI's last line, and that making the
 * model ignore its noise collapses the diversity metrics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { imageBatch, loadDataset } from '../lib/datasets/dataset';
import { Encoder, MNIST_ENCODER } from '../lib/encoder';
import { Metrics, balancedLabels, evaluateCheckpoint } from '../lib/evaluate';
import { diversity } from '../lib/metrics/diversity';
import { inceptionScore } from '../lib/metrics/inception-score';
import { MnistG0, MnistG1 } from '../lib/models/mnist';
import { applyAblation, presetConfig } from '../lib/presets';
import { encoderAccuracy } from '../lib/train-encoder';
import { loadModel, train } from '../lib/train';

const ROOT = path.join(__dirname, '..');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-eval-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SGAN_DIR = path.join(tmp, 'sgan');
const DCGAN_DIR = path.join(tmp, 'dcgan');

before(async () => {
  const backend = await initBackend('wasm');
  const data = loadDataset('mnist', { split: 'train' });
  // One checkpoint at the end instead of one every 2 steps.
  const base = { ...presetConfig('mnist', 'smoke', 1), checkpointEvery: 1000 };
  for (const [dir, cfg] of [
    [SGAN_DIR, base],
    [DCGAN_DIR, applyAblation(base, { baseline: 'dcgan' })],
  ] as const) {
    const encoder = new Encoder(MNIST_ENCODER, 1);
    await train({ cfg, data, encoder, encoderSource: 'untrained (test)', outDir: dir, resume: false, backend, progress: false });
    encoder.dispose();
  }
});

const small = { n: 120, seed: 3, batchSize: 64, splits: 10, fidReference: 'test' as const, diversity: { samples: 3, conditions: 1 }, progress: false };

test('labels cycle 0..9 across batches, so every class gets n/10 samples', () => {
  assert.deepEqual(Array.from(balancedLabels(0, 12)), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
  assert.deepEqual(Array.from(balancedLabels(64, 3)), [4, 5, 6]);
});

let first: Metrics;

test('evaluateCheckpoint: every metric present and in range; real-data numbers match a direct computation', async () => {
  const out = path.join(tmp, 'metrics.json');
  const m = await evaluateCheckpoint({ checkpoint: SGAN_DIR, ...small, out });
  first = m;
  assert.equal(m.experiment, 'mnist');
  assert.equal(m.n, 120);
  assert.equal(m.classifier, 'encoder');
  assert.equal(m.inception_score, null, 'no Inception model: no Inception score');
  assert.ok(m.class_consistency >= 0 && m.class_consistency <= 1);
  assert.ok(m.classifier_score.mean >= 1 && m.classifier_score.mean <= 10);
  assert.equal(m.classifier_score_mean, m.classifier_score.mean);
  assert.ok(Number.isFinite(m.fid) && m.fid > 0);
  assert.equal(m.fid_features, 'encoder_fc3');
  assert.equal(m.fid_reference_n, 2000);
  for (const k of ['level0_diversity', 'level1_diversity', 'level1_pixel_diversity', 'duplicate_fraction'] as const) {
    assert.equal(typeof m[k], 'number', k);
  }
  assert.ok(m.peak_rss_mb > 50 && m.peak_rss_mb < 4096, `peak RSS ${m.peak_rss_mb}`);
  assert.equal(m.provenance.backend, 'wasm');
  // metrics.json is the same object.
  assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), JSON.parse(JSON.stringify(m)));

  // Real test split, computed the plain way: all probabilities in memory, then the formula.
  const { model } = loadModel(SGAN_DIR);
  const test = loadDataset('mnist', { split: 'test' });
  assert.ok(Math.abs(m.real_class_consistency - (await encoderAccuracy(model.encoder, test))) < 1e-12);
  const probs = tf.tidy(() => tf.softmax(model.encoder.classify(imageBatch(test, Uint32Array.from({ length: test.n }, (_, i) => i)))));
  const direct = inceptionScore((await probs.data()) as Float32Array, probs.shape, 10);
  assert.ok(Math.abs(m.real_classifier_score.mean - direct.mean) < 1e-6 * direct.mean, `${m.real_classifier_score.mean} vs ${direct.mean}`);
  assert.ok(Math.abs(m.real_classifier_score.std - direct.std) < 1e-5);
  probs.dispose();
  model.dispose();
});

test('the same seed gives the same numbers, another seed other samples; no tensor leaks', async () => {
  // Building a model leaves its initial-value tensors alive (lib/layers.ts: tf.variable(init) keeps
  // `init`); evaluation must leave nothing beyond that.
  let count = tf.memory().numTensors;
  const { model } = loadModel(SGAN_DIR);
  model.dispose();
  model.encoder.dispose();
  const construction = tf.memory().numTensors - count;
  count = tf.memory().numTensors;
  const repeat = await evaluateCheckpoint({ checkpoint: SGAN_DIR, ...small });
  assert.equal(tf.memory().numTensors - count, construction, 'evaluation leaves no tensors of its own behind');
  const other = await evaluateCheckpoint({ checkpoint: SGAN_DIR, ...small, seed: small.seed + 1 });
  assert.equal(repeat.classifier_score.mean, first.classifier_score.mean);
  assert.equal(repeat.class_consistency, first.class_consistency);
  assert.equal(repeat.fid, first.fid);
  assert.equal(repeat.level0_diversity, first.level0_diversity);
  assert.notEqual(other.fid, first.fid);
  // The real data's scores do not depend on the noise seed.
  assert.equal(other.real_classifier_score.mean, first.real_classifier_score.mean);
});

test('an SGAN made to ignore its noise collapses the diversity metrics', async () => {
  const { model } = loadModel(SGAN_DIR);
  // A 6-step smoke generator barely moves with its noise (weights ~N(0, 0.02)); larger random
  // weights make one that does, so that cutting the noise paths has something to remove.
  let k = 0;
  for (const [name, v] of model.params('G')) if (name.endsWith('.W')) v.assign(tf.randomNormal(v.shape, 0, 0.15, 'float32', k++));
  const before = await diversity(model, { samples: 5, conditions: 1, seed: 2 });
  const g0 = model.G[0] as MnistG0;
  const g1 = model.G[1] as MnistG1;
  // z0 reaches G0 only through embed; z1 reaches G1 only through the first zDim rows of fc1.
  g0.embed.W.assign(tf.zerosLike(g0.embed.W));
  const zDim = model.cfg.stacks[1].zDim;
  g1.fc1.W.assign(tf.concat([tf.zeros([zDim, g1.fc1.W.shape[1]]), tf.slice(g1.fc1.W, [zDim, 0], [-1, -1])]));
  const after = await diversity(model, { samples: 5, conditions: 1, seed: 2 });
  assert.ok(before.level0_diversity > 1e-3 && before.level1_diversity! > 1e-4, JSON.stringify(before));
  assert.ok(after.level0_diversity < 1e-5, `level0 ${after.level0_diversity}`);
  assert.ok(after.level1_diversity! < 1e-5 && after.level1_pixel_diversity! < 1e-5);
  assert.equal(after.duplicate_fraction, 1);
  assert.ok(before.duplicate_fraction < 1);
  model.dispose();
});

test('the single-GAN baseline has no level-1 metrics', async () => {
  const m = await evaluateCheckpoint({ checkpoint: DCGAN_DIR, ...small, n: 50 });
  assert.equal(m.level1_diversity, null);
  assert.equal(m.level1_pixel_diversity, null);
  assert.equal(typeof m.level0_diversity, 'number');
});

test('CLI: last stdout line is the metrics; --out writes them; a missing Inception model is a clear error', () => {
  const out = path.join(tmp, 'cli.json');
  const env = { ...process.env, SGAN_BACKEND: 'wasm' };
  const args = ['evaluate', '--checkpoint', SGAN_DIR, '--n', '60', '--fid-reference', 'test', '--diversity-samples', '3', '--out', out];
  let r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'sgan.js'), ...args], { cwd: ROOT, env, encoding: 'utf8', timeout: 180_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  const last = JSON.parse(lines[lines.length - 1]) as Metrics;
  assert.equal(last.n, 60);
  for (const k of ['class_consistency', 'classifier_score_mean', 'level0_diversity', 'level1_diversity'] as const) assert.equal(typeof last[k], 'number', k);
  assert.equal(typeof last.classifier_score.mean, 'number');
  assert.equal(JSON.parse(fs.readFileSync(out, 'utf8')).fid, last.fid);
  r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'sgan.js'), 'evaluate', '--checkpoint', SGAN_DIR, '--classifier', 'inception'], { cwd: ROOT, env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--classifier inception needs --inception-model DIR/);
});
