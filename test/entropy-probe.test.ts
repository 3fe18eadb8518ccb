// The entropy probe (sgan probe-entropy): bottom stack alone, one result per loss weighting.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { ImageDataset, loadDataset } from '../lib/datasets/dataset';
import { Encoder, MNIST_ENCODER } from '../lib/encoder';
import { ENTROPY_PROBE_VARIANTS, Q0_CHANCE, firstOfEachClass, probeBottomStack, probeTable } from '../lib/entropy-probe';
import { presetConfig } from '../lib/presets';

const variant = (id: string) => ENTROPY_PROBE_VARIANTS.find((v) => v.id === id)!;

test('entropy probe', async (t) => {
  await initBackend('wasm');
  const data = loadDataset('mnist', { split: 'train' });
  const enc = new Encoder(MNIST_ENCODER, 3);
  const base = { ...presetConfig('mnist', 'smoke', 4), batchSize: 8 };

  await t.test('firstOfEachClass picks the first image of every class, and names a missing class', () => {
    const idx = firstOfEachClass(data);
    assert.deepEqual(idx.map((i) => data.labels[i]), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    idx.forEach((i, c) => assert.equal(data.labels.indexOf(c), i));
    const noNines: ImageDataset = { ...data, labels: data.labels.map((l) => (l === 9 ? 8 : l)) };
    assert.throws(() => firstOfEachClass(noNines), /no image of class 9/);
  });

  await t.test('the weightings are the paper\'s and the paper\'s with losses switched off', () => {
    assert.deepEqual(variant('paper').weights, { adv: 1, cond: 1, ent: 10 });
    for (const v of ENTROPY_PROBE_VARIANTS) {
      assert.ok(Object.entries(v.weights).every(([k, w]) => w === 0 || w === variant('paper').weights[k as 'adv']), v.id);
    }
    assert.equal(variant('no-entropy').weights.ent, 0);
  });

  await t.test('same seed, same numbers; no tensors left behind; Q0 error is null without the entropy loss', async () => {
    const before = tf.memory().numTensors;
    const a = await probeBottomStack(data, enc, variant('paper'), base, { steps: 3, samples: 4 });
    const after = tf.memory().numTensors;
    const b = await probeBottomStack(data, enc, variant('paper'), base, { steps: 3, samples: 4 });
    assert.equal(after, before, 'probe leaked tensors');
    assert.deepEqual({ ...a, seconds: 0 }, { ...b, seconds: 0 });
    assert.ok(Number.isFinite(a.q0_loss_start!) && Number.isFinite(a.q0_loss_end!));
    // An untrained Q0 sits near chance: sigmoid outputs ~0.5 against z ~ U[0,1].
    assert.ok(Math.abs(a.q0_loss_start! - Q0_CHANCE) < 0.02, `Q0 error ${a.q0_loss_start}`);
    assert.ok(a.level0_diversity > 0 && a.level0_diversity < 0.5, `level0 ${a.level0_diversity}`);
    const n = await probeBottomStack(data, enc, variant('no-entropy'), base, { steps: 3, samples: 4 });
    assert.equal(n.q0_loss_start, null);
    assert.equal(n.q0_loss_end, null);
    assert.notEqual(n.level0_diversity, a.level0_diversity, 'the weighting should change training');
    const md = probeTable([a, n]);
    assert.match(md, /\| adv \+ cond \+ ent \(paper\) \| 3 \|/);
    assert.match(md, /\| adv \+ cond \| 3 \| n\/a/);
  });

  await t.test('the warm-up weighting trains exactly like "ent only" for its first steps, then like the paper', async () => {
    const opts = { steps: 4, warmupSteps: 2, samples: 4 };
    const w = await probeBottomStack(data, enc, variant('warmup'), base, opts);
    const e = await probeBottomStack(data, enc, variant('ent-only'), base, opts);
    assert.equal(w.warmup_steps, 2);
    assert.equal(e.warmup_steps, 0, 'only the warm-up weighting warms up');
    assert.equal(w.window, 2);
    assert.equal(w.q0_loss_start, e.q0_loss_start, 'first two steps: entropy loss alone in both');
    assert.notEqual(w.q0_loss_end, e.q0_loss_end, 'after the warm-up the adversarial and conditional losses are on');
    assert.deepEqual(w.weights, { adv: 1, cond: 1, ent: 10 });
    assert.match(probeTable([w]), /\| ent only for 2 steps, then adv \+ cond \+ ent \| 4 \|/);
    await assert.rejects(probeBottomStack(data, enc, variant('warmup'), base, { steps: 4, warmupSteps: 4 }), /warm-up steps must be between 1 and steps - 1 \(3\), found 4/);
  });
  enc.dispose();
});
