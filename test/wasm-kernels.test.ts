/**
 * The wasm training kernels (lib/wasm-kernels.ts) against tfjs's reference 'cpu' backend:
 * conv2d / conv2dTranspose forward and gradients over a grid of shapes, reference counting,
 * and a few Adam steps of a small CNN.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { registerWasmTrainingKernels } from '../lib/wasm-kernels';

type Pad = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type Shape4 = [number, number, number, number];

interface Result {
  values: Float32Array;
  shape: number[];
}

/** Deterministic standard normal samples (mulberry32 + Box-Muller). */
function randn(n: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 4294967297;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return out;
}

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Run `fn` on a backend and bring its results back as plain arrays (all tensors disposed). */
async function on(backend: 'cpu' | 'wasm', fn: () => tf.Tensor[]): Promise<Result[]> {
  assert.ok(await tf.setBackend(backend));
  const outs = tf.tidy(fn);
  const results = outs.map(t => ({ values: t.dataSync() as Float32Array, shape: t.shape.slice() }));
  tf.dispose(outs);
  return results;
}

/** max |actual - expected| / max |expected| <= tol, with a non-trivial reference. */
function assertClose(actual: Result, expected: Result, label: string, tol = 1e-4): void {
  assert.deepEqual(actual.shape, expected.shape, `${label}: shape`);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < expected.values.length; i++) {
    const a = actual.values[i];
    const e = expected.values[i];
    assert.ok(Number.isFinite(a), `${label}: non-finite value at ${i}`);
    scale = Math.max(scale, Math.abs(e));
    err = Math.max(err, Math.abs(a - e));
  }
  assert.ok(scale > 1e-3, `${label}: reference is (nearly) all zeros, the check would be trivial`);
  assert.ok(err <= tol * scale, `${label}: max abs error ${err.toExponential(2)} > ${tol} * ${scale.toExponential(2)}`);
}

interface ConvCase {
  x: Shape4; // conv2d input [N, H, W, C_in]
  k: number | [number, number];
  cout: number;
  stride: number | [number, number];
  pad: Pad;
}

const kernelSize = (c: ConvCase): [number, number] => (typeof c.k === 'number' ? [c.k, c.k] : c.k);

function label(c: ConvCase): string {
  return `x=[${c.x}] k=${c.k} cout=${c.cout} s=${c.stride} pad=${JSON.stringify(c.pad)}`;
}

/** conv2d output shape, computed by tfjs's own shape logic. */
function convOutShape(c: ConvCase): Shape4 {
  const info = tf.backend_util.computeConv2DInfo(c.x, [...kernelSize(c), c.x[3], c.cout], c.stride, 1, c.pad);
  return info.outShape as Shape4;
}

/**
 * For one case: conv2d forward and its gradients w.r.t. x and filter, and conv2dTranspose (the
 * adjoint, mapping the conv output shape back to x's shape) forward and its gradients w.r.t. its
 * input and filter, all with random upstream gradients.
 */
function convComputations(c: ConvCase, seed: number): () => tf.Tensor[] {
  const filterShape: Shape4 = [...kernelSize(c), c.x[3], c.cout];
  const yShape = convOutShape(c);
  const xData = randn(size(c.x), seed);
  const wData = randn(size(filterShape), seed + 1);
  const dyData = randn(size(yShape), seed + 2);
  const dxData = randn(size(c.x), seed + 3);
  return () => {
    const x = tf.tensor4d(xData, c.x);
    const w = tf.tensor4d(wData, filterShape);
    const dy = tf.tensor4d(dyData, yShape);
    const dx = tf.tensor4d(dxData, c.x);
    const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad);
    const tconv = (a: tf.Tensor, b: tf.Tensor) =>
      tf.conv2dTranspose(a as tf.Tensor4D, b as tf.Tensor4D, c.x, c.stride, c.pad);
    const [gx, gw] = tf.grads(conv)([x, w], dy);
    const [gdy, gtw] = tf.grads(tconv)([dy, w], dx);
    return [conv(x, w), gx, gw, tconv(dy, w), gdy, gtw];
  };
}

const OUTPUT_NAMES = ['conv2d', 'conv2d dL/dx', 'conv2d dL/dfilter', 'conv2dTranspose',
  'conv2dTranspose dL/dinput', 'conv2dTranspose dL/dfilter'];

async function checkCase(c: ConvCase, seed: number): Promise<void> {
  const compute = convComputations(c, seed);
  const expected = await on('cpu', compute);
  const actual = await on('wasm', compute);
  expected.forEach((e, i) => assertClose(actual[i], e, `${label(c)}: ${OUTPUT_NAMES[i]}`));
}

/** The grid: kernels 1/3/5 x strides 1/2 x four kinds of padding x odd/even sizes. */
function gridCases(): ConvCase[] {
  const channels: [number, number][] = [[1, 4], [3, 8], [8, 2], [9, 16], [16, 1]];
  const cases: ConvCase[] = [];
  let i = 0;
  for (const k of [1, 3, 5]) {
    for (const stride of [1, 2]) {
      const pads: Pad[] = ['same', 'valid', k === 5 ? 2 : 1, [[0, 0], [1, 2], [2, 0], [0, 0]]];
      for (const pad of pads) {
        for (const odd of [true, false]) {
          const [cin, cout] = channels[i % channels.length];
          const batch = i % 3 === 0 ? 1 : 3;
          const hw: [number, number] = odd ? (i % 2 ? [7, 9] : [9, 7]) : (i % 2 ? [8, 6] : [6, 8]);
          cases.push({ x: [batch, hw[0], hw[1], cin], k, cout, stride, pad });
          i++;
        }
      }
    }
  }
  return cases;
}

/** Shapes like the project's models (small batch), incl. outputs with a stride remainder (28 <- 12). */
const MODEL_CASES: ConvCase[] = [
  { x: [2, 8, 8, 16], k: 5, cout: 16, stride: 2, pad: 'same' }, // generator 4x4 -> 8x8
  { x: [2, 12, 12, 8], k: 5, cout: 16, stride: 1, pad: 'valid' }, // generator 8x8 -> 12x12
  { x: [2, 24, 24, 8], k: 5, cout: 8, stride: 2, pad: 'same' }, // generator 12x12 -> 24x24
  { x: [2, 28, 28, 1], k: 5, cout: 8, stride: 1, pad: 'valid' }, // generator 24x24 -> 28x28, encoder conv 1
  { x: [2, 28, 28, 1], k: 5, cout: 8, stride: 2, pad: 'same' }, // discriminator conv 1
  { x: [2, 7, 7, 8], k: 5, cout: 16, stride: 2, pad: 'same' }, // discriminator conv 3 (odd size)
  { x: [2, 28, 28, 2], k: 5, cout: 3, stride: 2, pad: 'valid' }, // 28 <- 12: (28 - 5) % 2 = 1
  { x: [2, 28, 28, 1], k: 4, cout: 4, stride: 2, pad: 'same' }, // even kernel
  { x: [2, 11, 10, 4], k: 3, cout: 5, stride: 3, pad: 'same' }, // stride 3, H != W
  { x: [2, 14, 13, 1], k: 5, cout: 64, stride: 1, pad: 'valid' }, // 1 dx channel, many dy channels
  { x: [3, 9, 9, 1], k: 3, cout: 24, stride: 1, pad: 'same' },
  { x: [2, 9, 8, 5], k: [3, 5], cout: 4, stride: [2, 1], pad: 'same' }, // non-square kernel and strides
  { x: [2, 9, 8, 12], k: [5, 3], cout: 6, stride: [1, 2], pad: 'valid' },
  { x: [2, 10, 9, 3], k: [2, 3], cout: 8, stride: [2, 3], pad: [[0, 0], [1, 0], [0, 2], [0, 0]] },
];

before(async () => {
  await initBackend('wasm');
});

test('registration is idempotent and replaces the stock wasm kernels', () => {
  const first = tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc;
  registerWasmTrainingKernels();
  registerWasmTrainingKernels();
  assert.ok(first !== undefined);
  assert.equal(tf.getKernel('Conv2DBackpropInput', 'wasm')?.kernelFunc, first);
  assert.ok(tf.getKernel('Conv2DBackpropFilter', 'wasm') !== undefined);
});

test('conv2d / conv2dTranspose and their gradients match cpu over the shape grid', async () => {
  const cases = gridCases();
  assert.equal(cases.length, 48);
  for (const [i, c] of cases.entries()) await checkCase(c, 1000 + 10 * i);
});

test('conv2d / conv2dTranspose and their gradients match cpu on model-like shapes', async () => {
  for (const [i, c] of MODEL_CASES.entries()) await checkCase(c, 5000 + 10 * i);
});

test('maxPool gradient matches cpu (negative windows, ties, overlapping windows, padding)', async () => {
  const cases: [Shape4, number, number, Pad][] = [
    [[2, 6, 6, 3], 2, 2, 'valid'], [[3, 7, 5, 4], 2, 2, 'same'], [[2, 7, 7, 2], 3, 1, 'valid'],
    [[2, 7, 6, 5], 3, 2, 'same'], [[1, 9, 9, 1], 2, 2, 1], [[100, 24, 24, 8], 2, 2, 'valid'],
  ];
  for (const [i, [shape, filterSize, stride, pad]] of cases.entries()) {
    const noise = randn(size(shape), 8000 + i);
    // Rounded values make ties common (also all-zero windows, as after a ReLU); the stock wasm
    // kernel lost the gradient of windows whose values are all negative.
    const xData = i % 2 === 0 ? noise : noise.map(v => Math.round(v * 2) / 2);
    const compute = () => {
      const x = tf.tensor4d(xData, shape);
      const pool = (t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, filterSize, stride, pad as 'same' | 'valid' | number);
      const y = pool(x);
      const dy = tf.tensor(randn(y.size, 8500 + i), y.shape);
      return [y, tf.grad(pool)(x, dy)];
    };
    const expected = await on('cpu', compute);
    const actual = await on('wasm', compute);
    assertClose(actual[0], expected[0], `maxPool ${JSON.stringify([shape, filterSize, stride, pad])}`);
    assertClose(actual[1], expected[1], `maxPool gradient ${JSON.stringify([shape, filterSize, stride, pad])}`);
  }
});

test('NCHW is rejected with a clear error', async () => {
  await tf.setBackend('wasm');
  const x = tf.zeros([1, 2, 4, 4]);
  const dy = tf.zeros([1, 3, 4, 4]);
  assert.throws(() => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
    { strides: 1, pad: 'same', dataFormat: 'NCHW', filterShape: [3, 3, 2, 3] } as unknown as tf.NamedAttrMap),
  /only dataFormat 'NHWC'/);
  tf.dispose([x, dy]);
});

test('repeated calls do not leak tensors or wasm data', async () => {
  await tf.setBackend('wasm');
  const backend = tf.backend() as unknown as { numDataIds(): number };
  const cases: ConvCase[] = [
    { x: [3, 9, 8, 3], k: 5, cout: 4, stride: 2, pad: 'same' }, // combined phases
    { x: [3, 9, 8, 9], k: 3, cout: 4, stride: 2, pad: 'valid' }, // separate phases + crops
    { x: [3, 9, 8, 1], k: 3, cout: 4, stride: 1, pad: 'valid' }, // depthwise single phase
    { x: [3, 9, 8, 8], k: 1, cout: 4, stride: 2, pad: 1 }, // zero phases, cropped dy
    { x: [3, 9, 8, 8], k: 5, cout: 4, stride: 1, pad: 'valid' }, // blocks of taps
    { x: [3, 9, 8, 1], k: 3, cout: 24, stride: 1, pad: 'same' }, // 1x1 GEMM + one-hot col2im
  ];
  const x = tf.tensor4d(randn(3 * 9 * 8 * 4, 7100), [3, 9, 8, 4]);
  const round = () => {
    for (const [i, c] of cases.entries()) {
      const outs = tf.tidy(convComputations(c, 7000 + i));
      tf.dispose(outs);
    }
    tf.dispose(tf.tidy(() => tf.grad((t: tf.Tensor) => tf.maxPool(t as tf.Tensor4D, 2, 2, 'same'))(x)));
  };
  round(); // warm-up: any lazily created state
  const tensors = tf.memory().numTensors;
  const dataIds = backend.numDataIds();
  for (let i = 0; i < 3; i++) round();
  assert.equal(tf.memory().numTensors, tensors);
  assert.equal(backend.numDataIds(), dataIds);
  x.dispose();
});

// ---------------------------------------------------------------------------------------------
// A few Adam steps of a small CNN: encoder conv + maxpool, dropout (fixed seed), batch norm via
// tf.moments, dense layers, a transposed-conv decoder.

const MODEL_SHAPES: Record<string, number[]> = {
  c1: [5, 5, 1, 6], c2: [3, 3, 6, 8], d1: [5 * 5 * 8, 16], gamma: [16], beta: [16],
  d2: [16, 4 * 4 * 8], t1: [5, 5, 6, 8], t2: [5, 5, 1, 6], head: [16, 1],
};

function modelLoss(p: Record<string, tf.Variable>, x: tf.Tensor4D): tf.Scalar {
  const n = x.shape[0];
  let h = tf.relu(tf.conv2d(x, p.c1 as tf.Tensor4D, 1, 'valid')); // 24
  h = tf.maxPool(h, 2, 2, 'valid'); // 12
  h = tf.leakyRelu(tf.conv2d(h, p.c2 as tf.Tensor4D, 2, 'same'), 0.2); // 6
  h = tf.maxPool(h, 2, 1, 'valid'); // 5
  // (no bias before batch norm: its gradient is exactly zero, i.e. pure rounding noise)
  let f = tf.matMul(tf.dropout(h.reshape([n, -1]), 0.25, undefined, 123), p.d1 as tf.Tensor2D);
  const { mean, variance } = tf.moments(f, 0);
  f = tf.add(tf.mul(tf.mul(tf.sub(f, mean), tf.rsqrt(tf.add(variance, 1e-5))), p.gamma), p.beta);
  f = tf.softplus(f);
  let g = tf.relu(tf.matMul(f, p.d2 as tf.Tensor2D)).reshape([n, 4, 4, 8]) as tf.Tensor4D;
  g = tf.relu(tf.conv2dTranspose(g, p.t1 as tf.Tensor4D, [n, 8, 8, 6], 2, 'same'));
  const img = tf.sigmoid(tf.conv2dTranspose(g, p.t2 as tf.Tensor4D, [n, 12, 12, 1], 1, 'valid'));
  const target = tf.image.resizeBilinear(x, [12, 12]);
  const logits = tf.matMul(f, p.head as tf.Tensor2D);
  const reconstruction = tf.mean(tf.square(tf.sub(img, target)));
  const classifier = tf.mean(tf.logSumExp(tf.concat([logits, tf.neg(logits)], 1), 1));
  return tf.add(reconstruction, classifier) as tf.Scalar;
}

async function adamSteps(backend: 'cpu' | 'wasm', steps: number): Promise<Result[]> {
  assert.ok(await tf.setBackend(backend));
  const names = Object.keys(MODEL_SHAPES);
  const params: Record<string, tf.Variable> = {};
  names.forEach((name, i) => {
    const shape = MODEL_SHAPES[name];
    params[name] = tf.variable(tf.tensor(randn(size(shape), 900 + i).map(v => v * 0.2), shape));
  });
  const x = tf.tensor4d(randn(4 * 28 * 28, 42).map(v => Math.abs(v) * 0.5), [4, 28, 28, 1]);
  const optimizer = tf.train.adam(0.01);
  for (let i = 0; i < steps; i++) {
    const loss = optimizer.minimize(() => modelLoss(params, x), true);
    loss?.dispose();
  }
  const results = names.map(name => ({ values: params[name].dataSync() as Float32Array, shape: params[name].shape.slice() }));
  optimizer.dispose();
  tf.dispose([x, ...Object.values(params)]);
  return results;
}

test('Adam steps of a small CNN on wasm match cpu', async () => {
  const expected = await adamSteps('cpu', 3);
  const actual = await adamSteps('wasm', 3);
  const names = Object.keys(MODEL_SHAPES);
  expected.forEach((e, i) => assertClose(actual[i], e, `weights ${names[i]} after 3 Adam steps`));
});
