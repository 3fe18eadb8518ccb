// Adam in both eps placements, against values computed by hand.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { Adam, AdamConfig, PAPER_ADAM } from '../lib/adam';

/** One parameter at 0, one Adam step with gradient g; returns the new value. */
async function oneStep(cfg: AdamConfig, g: number): Promise<number> {
  const p = tf.variable(tf.scalar(0));
  const opt = new Adam(cfg, new Map([['p', p]]));
  const grad = tf.scalar(g);
  opt.apply(new Map([['p', grad]]));
  const v = (await p.data())[0];
  tf.dispose([p, grad, ...opt.state().values()]);
  return v;
}

test('Adam: eps outside vs inside the square root', async () => {
  await initBackend('wasm');
  const outside: AdamConfig = { lr: 1e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
  const inside: AdamConfig = { ...outside, epsInsideSqrt: true };
  // After one step m = (1-b1) g and v = (1-b2) g^2, so the step is lr*g/(|g| + eps/sqrt(1-b2)) with eps
  // outside (it meets the uncorrected v) and lr*g/sqrt(g^2 + eps) inside.
  const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-3 * Math.abs(b), `${what}: ${a} vs ${b}`);
  close(await oneStep(outside, 1e-6), -1e-4 * (1e-6 / (1e-6 + 1e-8 / Math.sqrt(0.001))), 'tiny gradient, eps outside: most of a full step');
  close(await oneStep(inside, 1e-6), -1e-4 * (1e-6 / Math.sqrt(1e-12 + 1e-8)), 'tiny gradient, eps inside: ~1% of a step');
  // For a gradient far above sqrt(eps) the two agree.
  close(await oneStep(outside, 0.5), -1e-4, 'large gradient, eps outside');
  close(await oneStep(inside, 0.5), -1e-4, 'large gradient, eps inside');
  assert.equal(PAPER_ADAM.epsInsideSqrt, true, "the authors' nn.adam_updates puts eps inside the root");
  assert.equal(PAPER_ADAM.beta1, 0.5);
});

test('Adam inside the root: the second step matches the formula with bias correction', async () => {
  await initBackend('wasm');
  const cfg: AdamConfig = { lr: 1e-3, beta1: 0.5, beta2: 0.999, eps: 1e-8, epsInsideSqrt: true };
  const p = tf.variable(tf.scalar(0));
  const opt = new Adam(cfg, new Map([['p', p]]));
  const gs = [2e-5, -1e-5];
  let m = 0;
  let v = 0;
  let expected = 0;
  gs.forEach((g, i) => {
    const grad = tf.scalar(g);
    opt.apply(new Map([['p', grad]]));
    grad.dispose();
    const t = i + 1;
    m = 0.5 * m + 0.5 * g;
    v = 0.999 * v + 0.001 * g * g;
    expected -= (cfg.lr * (m / (1 - 0.5 ** t))) / Math.sqrt(v / (1 - 0.999 ** t) + 1e-8);
  });
  const got = (await p.data())[0];
  assert.ok(Math.abs(got - expected) <= 1e-4 * Math.abs(expected), `${got} vs ${expected}`);
  tf.dispose([p, ...opt.state().values()]);
});
