// The three losses against values computed by hand (see each comment).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import * as L from '../lib/losses';

const close = (t: tf.Tensor, expected: number, tol = 1e-5) => {
  const v = t.dataSync()[0];
  assert.ok(Math.abs(v - expected) <= tol * Math.max(1, Math.abs(expected)), `got ${v}, expected ${expected}`);
};

test('losses', async (t) => {
  await initBackend('cpu');
  const logits = tf.tensor2d([[0], [2]]);

  await t.test('sigmoid BCE with logits: softplus(l) - t*l', () => {
    // target 1: [ln 2, ln(1+e^2) - 2] = [0.693147, 0.126928]
    close(L.bceWithLogits(logits, 1), (0.6931472 + 0.1269280) / 2);
    // target 0: [ln 2, ln(1+e^2)] = [0.693147, 2.126928]
    close(L.bceWithLogits(logits, 0), (0.6931472 + 2.1269280) / 2);
    // stable far from 0: BCE(sigmoid(100), 1) = 0, BCE(sigmoid(100), 0) = 100
    close(L.bceWithLogits(tf.tensor2d([[100]]), 1), 0);
    close(L.bceWithLogits(tf.tensor2d([[100]]), 0), 100);
  });

  await t.test('MNIST adversarial losses', () => {
    close(L.sigmoidDiscriminatorLoss(logits, logits), 0.5 * 0.4100376 + 0.5 * 1.4100376);
    close(L.sigmoidGeneratorLoss(logits), 0.4100376);
  });

  await t.test('cross-entropy (conditional loss of the top stack)', () => {
    // lse(1,2,3) = 3 + ln(1 + e^-1 + e^-2) = 3.4076059; minus l[2] = 3
    close(L.labelConditionalLoss(tf.tensor2d([[1, 2, 3]]), tf.tensor1d([2], 'int32')), 0.4076059);
    // label 0 instead: 3.4076059 - 1
    close(L.crossEntropyLoss(tf.tensor2d([[1, 2, 3]]), tf.tensor1d([0], 'int32')), 2.4076059);
  });

  await t.test('semi-supervised adversarial losses (CIFAR-10/SVHN)', () => {
    // l_real = l_fake = [0, 0]: lse = ln 2. class = ln 2; real = -ln 2 + ln 3; fake = ln 3
    const l = tf.tensor2d([[0, 0]]);
    const y = tf.tensor1d([0], 'int32');
    const ln2 = Math.log(2);
    const ln3 = Math.log(3);
    close(L.semiSupervisedDiscriminatorLoss(l, l, y), ln2 + 0.5 * (-ln2 + ln3) + 0.5 * ln3);
    close(L.semiSupervisedGeneratorLoss(l), -ln3);
    // A confident real logit for the right class lowers the class term.
    const good = L.semiSupervisedDiscriminatorLoss(tf.tensor2d([[5, 0]]), l, y).dataSync()[0];
    const bad = L.semiSupervisedDiscriminatorLoss(tf.tensor2d([[0, 5]]), l, y).dataSync()[0];
    assert.ok(good < bad, `${good} should be < ${bad}`);
  });

  await t.test('feature conditional and entropy losses: mean squared error', () => {
    close(L.featureConditionalLoss(tf.tensor2d([[1, 2]]), tf.tensor2d([[0, 0]])), 2.5);
    close(L.entropyLoss(tf.tensor2d([[0.5, 0.25], [1, 0]]), tf.tensor2d([[0, 0], [0, 0]])), (0.25 + 0.0625 + 1) / 4);
  });
});
