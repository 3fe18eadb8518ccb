/**
 * The speed work (threaded wasm, project kernels, fused ops, the Adam and batch-norm rewrites) must
 * not change what is computed: a few training steps on wasm (as lib/backend.ts sets it up, threads
 * included) and on the plain JavaScript cpu backend, from the same seed and batch, must give the same
 * losses and parameters up to float32 rounding.
 *
 * Tolerance. The backends sum in different orders (XNNPACK's blocked GEMMs, the project's
 * phase-decomposed conv gradients, threads splitting the work), so single ops differ by ~1e-6
 * relative. Training amplifies that only mildly over 3 steps: Adam's first update is lr * g/|g| per
 * parameter, so a gradient component near 0 whose sign differs moves a weight by 2e-4 at most
 * (weights are ~0.02) and the losses by far less. Measured: losses agree to ~1e-6 relative, parameters
 * to ~1e-5 of their scale. We allow 1e-3 relative on every loss of every step and 1e-3 of the largest
 * |value| of each parameter tensor: 100x the observed error, and 100x below what a wrong gradient
 * (a missing factor, a dropped term, a wrong sign) produces already at step 2.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend, wasmThreadsCount } from '../lib/backend';
import { ImageDataset, imageBatch, labelBatch, loadDataset } from '../lib/datasets/dataset';
import { CIFAR_ENCODER, Encoder, EncoderConfig, MNIST_ENCODER } from '../lib/encoder';
import { ExperimentName, StageKind, presetConfig } from '../lib/presets';
import { createTrainer, lossNames, trainStep } from '../lib/train';

const STEPS = 3;
const LOSS_RTOL = 1e-3;
const PARAM_TOL = 1e-3;

interface Trace {
  names: string[];
  /** losses[step][k] */
  losses: number[][];
  params: Map<string, Float32Array>;
}

/** STEPS training steps of a freshly built model on the current backend; everything read back. */
async function trace(experiment: ExperimentName, stage: StageKind, batch: number, x01: Float32Array, xShape: number[], labels: Int32Array): Promise<Trace> {
  const ec: EncoderConfig = experiment === 'mnist' ? MNIST_ENCODER : CIFAR_ENCODER;
  const encoder = new Encoder(ec, 3);
  if (ec.channels === 3) encoder.meanImage = tf.fill([1, ec.size, ec.size, ec.channels], 0.45) as tf.Tensor4D;
  const cfg = { ...presetConfig(experiment, 'smoke', 7), batchSize: batch };
  const t = createTrainer(cfg, encoder);
  const x = tf.tensor4d(x01, xShape as [number, number, number, number]);
  const y = tf.tensor1d(labels, 'int32');
  const losses: number[][] = [];
  for (let step = 0; step < STEPS; step++) {
    const l = trainStep(t, stage, x, y, step);
    losses.push(Array.from(await l.data()));
    l.dispose();
  }
  const params = new Map<string, Float32Array>();
  for (const [name, v] of [...t.model.params('G'), ...t.model.params('D')]) params.set(name, (await v.data()) as Float32Array);
  for (const [name, v] of t.model.buffers()) params.set(`bn/${name}`, (await v.data()) as Float32Array);
  const names = lossNames(t.model);
  tf.dispose([x, y]);
  t.model.dispose();
  t.gOpt.dispose();
  t.dOpt.dispose();
  encoder.dispose();
  return { names, losses, params };
}

function compare(label: string, wasm: Trace, cpu: Trace): { lossErr: number; paramErr: number } {
  let lossErr = 0;
  wasm.losses.forEach((row, s) =>
    row.forEach((v, k) => {
      const ref = cpu.losses[s][k];
      assert.ok(Number.isFinite(v), `${label}: ${wasm.names[k]} at step ${s + 1} is ${v}`);
      const rel = Math.abs(v - ref) / Math.max(Math.abs(ref), 1e-3);
      lossErr = Math.max(lossErr, rel);
      assert.ok(rel <= LOSS_RTOL, `${label}: loss ${wasm.names[k]} at step ${s + 1}: wasm ${v} vs cpu ${ref} (relative ${rel.toExponential(2)})`);
    }),
  );
  let paramErr = 0;
  assert.deepEqual([...wasm.params.keys()].sort(), [...cpu.params.keys()].sort());
  for (const [name, a] of wasm.params) {
    const b = cpu.params.get(name)!;
    let scale = 0;
    let err = 0;
    for (let i = 0; i < b.length; i++) {
      scale = Math.max(scale, Math.abs(b[i]));
      err = Math.max(err, Math.abs(a[i] - b[i]));
    }
    const rel = err / Math.max(scale, 1e-6);
    paramErr = Math.max(paramErr, rel);
    assert.ok(rel <= PARAM_TOL, `${label}: parameter ${name} differs by ${err.toExponential(2)} (scale ${scale.toExponential(2)})`);
  }
  return { lossErr, paramErr };
}

/** A batch of real digits, or (CIFAR-10, not embedded) deterministic pseudo-random pixels. */
function batchOf(experiment: ExperimentName, n: number, mnist: ImageDataset): { x: Float32Array; shape: number[]; labels: Int32Array } {
  const idx = Uint32Array.from({ length: n }, (_, i) => i * 37);
  if (experiment === 'mnist') {
    const xs = imageBatch(mnist, idx);
    const ys = labelBatch(mnist, idx);
    const out = { x: xs.dataSync() as Float32Array, shape: xs.shape, labels: ys.dataSync() as Int32Array };
    tf.dispose([xs, ys]);
    return out;
  }
  const size = n * 32 * 32 * 3;
  const x = new Float32Array(size);
  for (let i = 0; i < size; i++) x[i] = ((i * 2654435761) >>> 0) / 4294967296;
  return { x, shape: [n, 32, 32, 3], labels: Int32Array.from(idx, (_, i) => (i * 3) % 10) };
}

test('speed work keeps results: wasm (as configured) vs cpu, same seed, 3 steps', async (t) => {
  await initBackend('wasm');
  const threads = wasmThreadsCount();
  const mnist = loadDataset('mnist', { split: 'train' });
  const cases: Array<{ experiment: ExperimentName; stage: StageKind; batch: number }> = [
    { experiment: 'mnist', stage: 'independent', batch: 8 },
    { experiment: 'mnist', stage: 'joint', batch: 8 },
    // CIFAR-10 adds D-side batch norm, dropout, input noise and the semi-supervised loss.
    { experiment: 'cifar10', stage: 'joint', batch: 4 },
  ];
  for (const c of cases) {
    await t.test(`${c.experiment} ${c.stage} batch ${c.batch} (wasm threads: ${threads})`, async () => {
      const b = batchOf(c.experiment, c.batch, mnist);
      await initBackend('wasm');
      const wasm = await trace(c.experiment, c.stage, c.batch, b.x, b.shape, b.labels);
      await initBackend('cpu');
      const cpu = await trace(c.experiment, c.stage, c.batch, b.x, b.shape, b.labels);
      const { lossErr, paramErr } = compare(`${c.experiment}/${c.stage}`, wasm, cpu);
      t.diagnostic(`${c.experiment}/${c.stage}: max relative loss difference ${lossErr.toExponential(2)}, parameters ${paramErr.toExponential(2)}`);
    });
  }
  await initBackend('wasm');
});
