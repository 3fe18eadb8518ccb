// Presets and the ablation switches: pure config functions, no backend needed.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { PAPER_WEIGHTS, applyAblation, lossWeightsAt, presetConfig } from '../lib/presets';

test('the paper preset has no entropy warm-up; the loss weights are the paper\'s at every step', () => {
  const cfg = presetConfig('mnist', 'paper', 1);
  assert.equal(cfg.entropyWarmupSteps, 0);
  assert.deepEqual(lossWeightsAt(cfg, 0), PAPER_WEIGHTS);
  assert.deepEqual(lossWeightsAt(cfg, 10_000), PAPER_WEIGHTS);
});

test('during the entropy warm-up only the entropy loss is on; from its last step on, the configured weights', () => {
  const cfg = { ...presetConfig('mnist', 'smoke', 1), entropyWarmupSteps: 3 };
  assert.deepEqual(lossWeightsAt(cfg, 0), { adv: 0, cond: 0, ent: 10 });
  assert.deepEqual(lossWeightsAt(cfg, 2), { adv: 0, cond: 0, ent: 10 });
  assert.deepEqual(lossWeightsAt(cfg, 3), PAPER_WEIGHTS);
});

test('--no-entropy switches the entropy loss and its warm-up off; other switches keep the warm-up', () => {
  const cfg = { ...presetConfig('mnist', 'quick', 1), entropyWarmupSteps: 200 };
  const noEnt = applyAblation(cfg, { noEntropy: true });
  assert.equal(noEnt.weights.ent, 0);
  assert.equal(noEnt.entropyWarmupSteps, 0);
  assert.deepEqual(lossWeightsAt(noEnt, 0), { adv: 1, cond: 1, ent: 0 }, 'no step of a no-entropy run trains on nothing');
  assert.equal(applyAblation(cfg, { noJoint: true }).entropyWarmupSteps, 200);
  assert.equal(cfg.weights.ent, 10, 'applyAblation leaves its input alone');
});

test('step counts: MNIST quick preset 800 steps, the quick ablation grid 500 per cell (8,000 training digits)', async () => {
  const { totalSteps } = await import('../lib/train');
  const { cellConfig } = await import('../lib/experiment');
  const { ablation } = await import('../experiments/ablation');
  assert.equal(totalSteps(presetConfig('mnist', 'quick', 1), 8000), 800);
  assert.equal(totalSteps(cellConfig(ablation('mnist'), 'quick', 1), 8000), 500);
  assert.equal(totalSteps(cellConfig(ablation('mnist'), 'quick', 1, { noJoint: true }), 8000), 500);
  assert.equal(totalSteps(presetConfig('mnist', 'paper', 1), 60000), 120000, "the paper's 200 epochs of 600 batches");
});
