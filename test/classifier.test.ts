/**
 * lib/metrics/classifier.ts: the file-system loader and the Inception path, on tiny graph models this
 * test writes in the tfjs graph-model format (no network, no real Inception), with predictions
 * checked against values computed by hand; and the encoder judge.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Encoder, MNIST_ENCODER } from '../lib/encoder';
import { Judgement } from '../lib/evaluate';
import { encoderClassifier, inceptionInput, loadGraphModelFromDir, loadInceptionClassifier, outputIsSoftmax, readModelJson } from '../lib/metrics/classifier';

before(async () => {
  await initBackend('cpu');
});

const tmpDirs: string[] = [];
after(() => tmpDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-gm-'));
  tmpDirs.push(d);
  return d;
}

// ---------------------------------------------------------------- writing graph models

const shape = (s: number[]) => ({ dim: s.map((d) => ({ size: String(d) })) });
const F = { type: 'DT_FLOAT' };

type Node = { name: string; op: string; input?: string[]; attr?: Record<string, unknown> };
type Weight = { name: string; shape: number[]; data: Float32Array | Int32Array };

function placeholder(name: string, s: number[]): Node {
  return { name, op: 'Placeholder', attr: { dtype: F, shape: { shape: shape(s) } } };
}
function constNode(w: Weight): Node {
  const dtype = w.data instanceof Int32Array ? 'DT_INT32' : 'DT_FLOAT';
  return { name: w.name, op: 'Const', attr: { value: { tensor: { dtype, tensorShape: shape(w.shape) } }, dtype: { type: dtype } } };
}
function op(name: string, kind: string, input: string[], attr: Record<string, unknown> = { T: F }): Node {
  return { name, op: kind, input, attr };
}
function matMul(name: string, a: string, b: string): Node {
  return op(name, 'MatMul', [a, b], { transpose_a: { b: false }, transpose_b: { b: false }, T: F });
}

/** Write model.json + the weights split into `shards` files of one group (a weight may span two). */
function writeGraphModel(dir: string, nodes: Node[], weights: Weight[], shards = 1): void {
  const bytes = Buffer.concat(weights.map((w) => Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength)));
  const cut = Math.ceil(bytes.length / shards);
  const paths: string[] = [];
  for (let s = 0; s < shards; s++) {
    const p = `group1-shard${s + 1}of${shards}.bin`;
    fs.writeFileSync(path.join(dir, p), bytes.subarray(s * cut, (s + 1) * cut));
    paths.push(p);
  }
  const json = {
    format: 'graph-model',
    generatedBy: 'sgan-ts test',
    convertedBy: 'hand',
    modelTopology: { node: [...weights.map(constNode), ...nodes], versions: { producer: 1 } },
    weightsManifest: [{ paths, weights: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: w.data instanceof Int32Array ? 'int32' : 'float32' })) }],
  };
  fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
}

function softmax(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

// ---------------------------------------------------------------- tests

test('a graph model written to disk loads through the file-system handler and predicts softmax(xW + b)', async () => {
  const dir = tmpDir();
  const W = new Float32Array([1, -2, 0.5, 3, 0.25, -1]); // [2, 3]
  const b = new Float32Array([0.1, 0.2, -0.3]);
  const nodes = [
    placeholder('x', [-1, 2]),
    matMul('mm', 'x', 'W'),
    op('logits', 'BiasAdd', ['mm', 'b'], { T: F, data_format: { s: Buffer.from('NHWC').toString('base64') } }),
    op('softmax', 'Softmax', ['logits']),
    op('out', 'Identity', ['softmax']),
  ];
  // Three shards: W's 24 bytes and b's 12 are cut at 12 and 24, so the loader must concatenate.
  writeGraphModel(dir, nodes, [{ name: 'W', shape: [2, 3], data: W }, { name: 'b', shape: [3], data: b }], 3);
  assert.equal(fs.readdirSync(dir).filter((f) => f.endsWith('.bin')).length, 3);
  const model = await loadGraphModelFromDir(dir);
  const xs = [
    [1, 0],
    [0.5, -2],
  ];
  const y = model.execute(tf.tensor2d(xs), 'out') as tf.Tensor;
  const got = await y.data();
  const expected = xs.flatMap(([x0, x1]) => softmax([0, 1, 2].map((j) => x0 * W[j] + x1 * W[3 + j] + b[j])));
  close(got, expected, 1e-6, 'probabilities');
  // The graph says whether an output is already a softmax, through Identity nodes.
  const json = readModelJson(dir);
  assert.equal(outputIsSoftmax(json, 'out'), true);
  assert.equal(outputIsSoftmax(json, 'logits:0'), false);
  assert.equal(outputIsSoftmax(json, 'nowhere'), null);
  model.dispose();
  y.dispose();
});

test('a missing shard or model.json is reported by name', async () => {
  const dir = tmpDir();
  writeGraphModel(dir, [placeholder('x', [-1, 2]), matMul('y', 'x', 'W')], [{ name: 'W', shape: [2, 1], data: new Float32Array([1, 2]) }]);
  fs.rmSync(path.join(dir, 'group1-shard1of1.bin'));
  await assert.rejects(loadGraphModelFromDir(dir), /lists weight shard 'group1-shard1of1\.bin', which is not in/);
  await assert.rejects(loadInceptionClassifier({ modelDir: path.join(dir, 'nope') }), /nope\/model\.json: cannot read .*docs\/inception\.md/);
});

test('Inception input: gray tiled to RGB, resized bilinearly, scaled to the chosen range', () => {
  const x = tf.tensor4d([0, 0.5, 1, 0.25], [1, 2, 2, 1]);
  const y = inceptionInput(x, 4, '-1,1');
  assert.deepEqual(y.shape, [1, 4, 4, 3]);
  const v = y.arraySync() as number[][][][];
  // Each channel is the same gray; corners keep the corner pixels (half-pixel centres), mapped x*2-1.
  assert.deepEqual(v[0][0][0], [-1, -1, -1]);
  assert.ok(Math.abs(v[0][3][3][0] - (0.25 * 2 - 1)) < 1e-6);
  // Output pixel (1,1) samples the source at (0.25, 0.25) with half-pixel centres (TF2's resize):
  // 0.75*(0.75*0 + 0.25*0.5) + 0.25*(0.75*1 + 0.25*0.25) = 0.296875 (corner-aligned sampling would give 0.4375).
  assert.ok(Math.abs(v[0][1][1][1] - (0.296875 * 2 - 1)) < 1e-6, `pixel (1,1) is ${v[0][1][1][1]}`);
  assert.ok(Math.abs((inceptionInput(x, 2, '0,255').arraySync() as number[][][][])[0][0][1][2] - 127.5) < 1e-4);
  tf.dispose([x, y]);
});

test('Inception classifier: 1001-class TF-slim output loses its background class; pool features come back', async () => {
  const dir = tmpDir();
  const K = 1001;
  const Wc = new Float32Array(3 * K).map((_, i) => Math.sin(i) * 2); // [3, 1001]
  const nodes = [
    placeholder('images', [-1, 8, 8, 3]),
    op('pool', 'Mean', ['images', 'axes'], { T: F, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } }),
    matMul('logits', 'pool', 'Wc'),
  ];
  writeGraphModel(dir, nodes, [{ name: 'axes', shape: [2], data: new Int32Array([1, 2]) }, { name: 'Wc', shape: [3, K], data: Wc }], 2);
  const clf = await loadInceptionClassifier({ modelDir: dir, size: 8, classNode: 'logits', poolNode: 'pool', batchSize: 2 });
  assert.equal(clf.scoreName, 'inception_score');
  assert.equal(clf.featureName, 'inception_pool');
  // Three flat gray images (resizing keeps them flat): pool = 2v - 1 in every channel.
  const vals = [0, 0.3, 1];
  const x = tf.concat(vals.map((v) => tf.fill([1, 4, 4, 1], v))) as tf.Tensor4D;
  const out = clf.classify(x); // batchSize 2: two forward passes, concatenated
  assert.deepEqual(out.probs.shape, [3, 1000]);
  assert.deepEqual(out.features!.shape, [3, 3]);
  const probs = await out.probs.data();
  const feats = await out.features!.data();
  vals.forEach((v, r) => {
    const p = 2 * v - 1;
    close(feats.subarray(r * 3, r * 3 + 3), [p, p, p], 1e-6, `pool row ${r}`);
    const logits = Array.from({ length: K }, (_, j) => p * (Wc[j] + Wc[K + j] + Wc[2 * K + j]));
    // Dropping class 0 and renormalising = a softmax over the other 1000 logits.
    close(probs.subarray(r * 1000, (r + 1) * 1000), softmax(logits.slice(1)), 1e-6, `probs row ${r}`);
  });
  tf.dispose([x, out.probs, out.features!]);
  clf.dispose();
});

test('Inception classifier without node names: the 2048-wide output is the pool, a Softmax output is not softmaxed again', async () => {
  const dir = tmpDir();
  const A = new Float32Array(3 * 2048).map((_, i) => ((i % 7) - 3) / 10); // [3, 2048]
  // Class c's weights follow the pool's signs, scaled by c, so the logits are about 0, 3, 6, 9.
  const Wc = new Float32Array(2048 * 4).map((_, i) => {
    const j = Math.floor(i / 4);
    return 0.01 * (i % 4) * Math.sign(A[j] + A[2048 + j] + A[4096 + j]);
  }); // [2048, 4]
  const nodes = [
    placeholder('images', [-1, 6, 6, 3]),
    op('mean', 'Mean', ['images', 'axes'], { T: F, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } }),
    matMul('pool', 'mean', 'A'),
    matMul('logits', 'pool', 'Wc'),
    op('predictions', 'Softmax', ['logits']),
    op('pool_out', 'Identity', ['pool']),
  ];
  writeGraphModel(dir, nodes, [
    { name: 'axes', shape: [2], data: new Int32Array([1, 2]) },
    { name: 'A', shape: [3, 2048], data: A },
    { name: 'Wc', shape: [2048, 4], data: Wc },
  ]);
  const clf = await loadInceptionClassifier({ modelDir: dir, size: 6, inputRange: '0,1' });
  assert.equal(clf.featureName, 'inception_pool');
  const x = tf.fill([2, 6, 6, 3], 0.5) as tf.Tensor4D;
  const out = clf.classify(x);
  assert.deepEqual(out.features!.shape, [2, 2048]);
  const pool = Array.from({ length: 2048 }, (_, j) => 0.5 * (A[j] + A[2048 + j] + A[4096 + j]));
  close((await out.features!.data()).subarray(0, 2048), pool, 1e-5, 'pool');
  const logits = [0, 1, 2, 3].map((c) => pool.reduce((s, v, j) => s + v * Wc[j * 4 + c], 0));
  // The logits are far apart, so a second softmax (near-uniform output) could not pass the check below.
  assert.ok(Math.max(...softmax(logits)) > 0.5, `logits ${logits}`);
  close((await out.probs.data()).subarray(0, 4), softmax(logits), 1e-5, 'probs');
  tf.dispose([x, out.probs, out.features!]);
  clf.dispose();
});

test('encoder judge: softmax of the encoder logits, with fc3 as features', async () => {
  const enc = new Encoder(MNIST_ENCODER, 3);
  const clf = encoderClassifier(enc);
  assert.equal(clf.scoreName, 'classifier_score');
  const x = tf.randomUniform([4, 28, 28, 1], 0, 1, 'float32', 5) as tf.Tensor4D;
  const out = clf.classify(x);
  const ref = tf.softmax(enc.classify(x));
  close(await out.probs.data(), await ref.data(), 1e-6, 'probs');
  assert.deepEqual(out.features!.shape, [4, 256]);
  tf.dispose([x, out.probs, out.features!, ref]);
  enc.dispose();
});

test('evaluation with an Inception model: Inception score and FID features come from it, class consistency from the encoder', async () => {
  const dir = tmpDir();
  const K = 1001;
  const Wc = new Float32Array(3 * K).map((_, i) => Math.cos(i) * 3);
  writeGraphModel(
    dir,
    [
      placeholder('images', [-1, 8, 8, 3]),
      op('pool', 'Mean', ['images', 'axes'], { T: F, Tidx: { type: 'DT_INT32' }, keep_dims: { b: false } }),
      matMul('logits', 'pool', 'Wc'),
    ],
    [{ name: 'axes', shape: [2], data: new Int32Array([1, 2]) }, { name: 'Wc', shape: [3, K], data: Wc }],
  );
  const inception = await loadInceptionClassifier({ modelDir: dir, size: 8, classNode: 'logits', poolNode: 'pool' });
  const enc = new Encoder(MNIST_ENCODER, 4);
  const encoder = encoderClassifier(enc);
  const n = 40;
  const judgement = new Judgement(n, 4, encoder, inception, 'inception', 3, 10, 1000);
  const x = tf.randomUniform([n, 28, 28, 1], 0, 1, 'float32', 9) as tf.Tensor4D;
  // The labels the encoder predicts, so class consistency must come out exactly 1.
  const predicted = Int32Array.from(tf.tidy(() => tf.argMax(enc.classify(x), 1)).dataSync());
  for (let s = 0; s < n; s += 16) {
    const b = tf.slice(x, [s, 0, 0, 0], [Math.min(16, n - s), -1, -1, -1]);
    await judgement.add(b, predicted.subarray(s, s + b.shape[0]));
    b.dispose();
  }
  const r = judgement.result();
  assert.equal(r.classConsistency, 1);
  assert.equal(r.inceptionScore!.n, n);
  assert.ok(r.inceptionScore!.mean > 1);
  // FID features are the 3-d pool: the mean of the network input (resized, mapped to [-1,1]).
  assert.equal(r.gaussian!.mean.length, 3);
  const inputMean = tf.tidy(() => tf.mean(inceptionInput(x, 8, '-1,1')).dataSync()[0]);
  assert.ok(Math.abs(r.gaussian!.mean[0] - inputMean) < 1e-5, `${r.gaussian!.mean[0]} vs ${inputMean}`);
  tf.dispose(x);
  inception.dispose();
  enc.dispose();
});
