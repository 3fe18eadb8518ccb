// Batch norm's running averages, as the authors' nn.BatchNormLayer keeps them.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { BatchNorm } from '../lib/layers';

test('batch norm: running mean and unbiased running variance, momentum 0.9', async () => {
  await initBackend('wasm');
  const bn = new BatchNorm(1);
  // 4 samples of one channel: mean 2.5, biased variance 1.25, unbiased (n/(n-1) = 4/3) 5/3.
  const x = tf.tensor2d([[1], [2], [3], [4]]);
  tf.tidy(() => bn.apply(x, { training: true, updateStats: true }));
  const mean = (await bn.runningMean.data())[0];
  const variance = (await bn.runningVar.data())[0];
  assert.ok(Math.abs(mean - 0.1 * 2.5) < 1e-6, `running mean ${mean}`);
  assert.ok(Math.abs(variance - (0.9 * 1 + 0.1 * (5 / 3))) < 1e-6, `running variance ${variance}`);
  // Training-mode output uses the biased batch variance: (x - 2.5)/sqrt(1.25 + 1e-6).
  const y = await tf.tidy(() => bn.apply(x, { training: true })).data();
  assert.ok(Math.abs(y[0] - -1.5 / Math.sqrt(1.25 + 1e-6)) < 1e-5, `normalised ${y[0]}`);
  // Without updateStats the running averages stay where they were.
  assert.equal((await bn.runningMean.data())[0], mean);
  tf.dispose([x, bn.gamma, bn.beta, bn.runningMean, bn.runningVar]);
});
