/**
 * Adam (Kingma & Ba). Two forms, which differ only in where eps goes:
 *   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2;  a_t = lr * sqrt(1-b2^t)/(1-b1^t)
 *   outside the root (Kingma & Ba's "efficient" form, Lasagne, tfjs):  p -= a_t * m / (sqrt(v) + eps)
 *   inside the root (the authors' nn.adam_updates, from Improved GAN;  p -= lr * m^ / sqrt(v^ + eps)
 *     epsInsideSqrt), with m^ = m/(1-b1^t), v^ = v/(1-b2^t)
 * The difference is not cosmetic: with eps = 1e-8 inside, a weight whose gradients are much smaller
 * than sqrt(eps) = 1e-4 moves by ~lr * g / 1e-4 (like SGD) instead of by ~lr (Adam's normalised
 * step), so the tiny gradients that reach G through D at initialisation do not push every weight of G
 * by a full step.
 * Written here rather than using tf.train.adam because a checkpoint must restore it bit for bit:
 * tfjs's Adam keys its moments by position and, on restore, recomputes beta^t by pow() instead of the
 * running product it uses otherwise, so a resumed run drifts from an unbroken one in the last bits.
 * Here the state is named like the parameters and the step size is computed on the host in float64.
 */
import * as tf from '@tensorflow/tfjs';
import { NamedVariables } from './layers';

export interface AdamConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** eps inside the square root (the authors' GAN optimiser) instead of outside it. */
  epsInsideSqrt?: boolean;
}

/** The authors' GAN optimiser (nn.adam_updates, called with mom1=0.5). */
export const PAPER_ADAM: AdamConfig = { lr: 1e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8, epsInsideSqrt: true };

export class Adam {
  step = 0;
  readonly m: NamedVariables = new Map();
  readonly v: NamedVariables = new Map();

  constructor(readonly cfg: AdamConfig, readonly params: NamedVariables) {
    for (const [name, p] of params) {
      this.m.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
      this.v.set(name, tf.tidy(() => tf.variable(tf.zerosLike(p), false)));
    }
  }

  /** Step size for update t (1-based), bias correction folded in. */
  static stepSize(cfg: AdamConfig, t: number): number {
    return (cfg.lr * Math.sqrt(1 - Math.pow(cfg.beta2, t))) / (1 - Math.pow(cfg.beta1, t));
  }

  /** Apply gradients keyed by parameter name; parameters without a gradient are left alone. */
  apply(grads: Map<string, tf.Tensor>): void {
    this.step += 1;
    const { beta1, beta2, eps } = this.cfg;
    const a = Adam.stepSize(this.cfg, this.step);
    // Inside the root: m^ / sqrt(v^ + eps) = sqrt(1-b2^t) * m^ / sqrt(v + eps*(1-b2^t)), the factor
    // folded into `a` as in the other form.
    const epsInside = this.cfg.epsInsideSqrt ? eps * (1 - Math.pow(beta2, this.step)) : 0;
    tf.tidy(() => {
      for (const [name, g] of grads) {
        const p = this.params.get(name);
        if (!p) throw new Error(`Adam: gradient for unknown parameter "${name}"`);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        m.assign(mNew);
        v.assign(vNew);
        const denom = this.cfg.epsInsideSqrt ? tf.sqrt(tf.add(vNew, epsInside)) : tf.add(tf.sqrt(vNew), eps);
        p.assign(tf.sub(p, tf.mul(tf.div(mNew, denom), a)));
      }
    });
  }

  /** The moments as named variables, for checkpoints ("<param>/m", "<param>/v"). */
  state(): NamedVariables {
    const out: NamedVariables = new Map();
    for (const [k, t] of this.m) out.set(`${k}/m`, t);
    for (const [k, t] of this.v) out.set(`${k}/v`, t);
    return out;
  }

  dispose(): void {
    for (const t of this.state().values()) t.dispose();
  }
}

/**
 * Gradients of a scalar loss with respect to named parameters (a thin wrapper over tf.variableGrads
 * that maps tfjs's internal variable names back to ours). Also returns the loss value.
 */
export function namedGrads(f: () => tf.Scalar, params: NamedVariables): { value: tf.Scalar; grads: Map<string, tf.Tensor> } {
  const list = [...params.values()];
  const byTfName = new Map<string, string>();
  for (const [name, v] of params) byTfName.set(v.name, name);
  const { value, grads } = tf.variableGrads(f, list);
  const out = new Map<string, tf.Tensor>();
  for (const [tfName, g] of Object.entries(grads)) out.set(byTfName.get(tfName)!, g);
  return { value, grads: out };
}
