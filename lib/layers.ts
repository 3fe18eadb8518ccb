/**
 * The few layer types the SGAN networks need, as plain objects holding tf.Variables. A network is a
 * class that owns its layers and lists them for the optimiser (trainable) and for checkpoints
 * (trainable + running statistics). Layout is channels-last (NHWC) throughout; the authors' code is
 * channels-first, which only matters when loading their weights (lib/encoder.ts does the transposes).
 */
import * as tf from '@tensorflow/tfjs';
import { deriveSeed } from './seed';

export type NamedVariables = Map<string, tf.Variable>;

/** Anything that owns variables: layers and networks. */
export interface Module {
  /** Trainable variables, keyed by a stable name (used for checkpoints and optimiser state). */
  trainable(): NamedVariables;
  /** Non-trainable state (batch-norm running averages). */
  buffers(): NamedVariables;
}

/** Weight initialiser: N(0, std) from a named seed stream, identical on every backend. */
export interface Init {
  seed: number;
  std: number;
}

/** A variable whose initial value is freed with the scope (tf.tidy never disposes variables). */
function param(initial: () => tf.Tensor, trainable = true): tf.Variable {
  return tf.tidy(() => tf.variable(initial(), trainable));
}

function normalInit(shape: number[], init: Init, name: string, trainable = true): tf.Variable {
  return param(() => tf.randomNormal(shape, 0, init.std, 'float32', deriveSeed(init.seed, name)), trainable);
}

function prefixed(prefix: string, vars: NamedVariables, into: NamedVariables): void {
  for (const [k, v] of vars) into.set(`${prefix}.${k}`, v);
}

/** Collect the variables of named children into one map ("fc1.W", "bn1.gamma", ...). */
export function collect(children: Record<string, Module>, which: 'trainable' | 'buffers'): NamedVariables {
  const out: NamedVariables = new Map();
  for (const [name, m] of Object.entries(children)) prefixed(name, m[which](), out);
  return out;
}

export class Dense implements Module {
  readonly W: tf.Variable;
  readonly b: tf.Variable | null;
  constructor(name: string, nIn: number, nOut: number, init: Init, opts: { bias?: boolean; trainable?: boolean } = {}) {
    const trainable = opts.trainable ?? true;
    this.W = normalInit([nIn, nOut], init, `${name}.W`, trainable);
    this.b = opts.bias === false ? null : param(() => tf.zeros([nOut]), trainable);
  }
  apply(x: tf.Tensor2D): tf.Tensor2D {
    const y = tf.matMul(x, this.W as tf.Tensor2D) as tf.Tensor2D;
    return this.b ? (tf.add(y, this.b) as tf.Tensor2D) : y;
  }
  trainable(): NamedVariables {
    const m: NamedVariables = new Map([['W', this.W]]);
    if (this.b) m.set('b', this.b);
    return m;
  }
  buffers(): NamedVariables {
    return new Map();
  }
}

export type Padding = 'same' | 'valid' | number;

export class Conv2d implements Module {
  readonly W: tf.Variable; // [kh, kw, in, out]
  readonly b: tf.Variable | null;
  constructor(
    name: string,
    readonly cfg: { kernel: number; in: number; out: number; stride: number; pad: Padding; bias?: boolean },
    init: Init,
    trainable = true,
  ) {
    this.W = normalInit([cfg.kernel, cfg.kernel, cfg.in, cfg.out], init, `${name}.W`, trainable);
    this.b = cfg.bias === false ? null : param(() => tf.zeros([cfg.out]), trainable);
  }
  apply(x: tf.Tensor4D): tf.Tensor4D {
    const p = this.cfg.pad;
    // A numeric pad is symmetric, as in Theano/PyTorch ("pad 2"), which tf's 'same' is not at stride 2.
    const pad: 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]] =
      typeof p === 'number' ? [[0, 0], [p, p], [p, p], [0, 0]] : p;
    const y = tf.conv2d(x, this.W as tf.Tensor4D, this.cfg.stride, pad);
    return this.b ? tf.add(y, this.b) : y;
  }
  trainable(): NamedVariables {
    const m: NamedVariables = new Map([['W', this.W]]);
    if (this.b) m.set('b', this.b);
    return m;
  }
  buffers(): NamedVariables {
    return new Map();
  }
}

/**
 * Transposed convolution ("deconv"). 'same' at stride 2 doubles the size (the authors' 'half'
 * padding); 'valid' at stride 1 grows it by kernel-1.
 */
export class Deconv2d implements Module {
  readonly W: tf.Variable; // [kh, kw, out, in] as tf.conv2dTranspose expects
  readonly b: tf.Variable | null;
  constructor(
    name: string,
    readonly cfg: { kernel: number; in: number; out: number; stride: number; pad: 'same' | 'valid'; bias?: boolean },
    init: Init,
  ) {
    this.W = normalInit([cfg.kernel, cfg.kernel, cfg.out, cfg.in], init, `${name}.W`);
    this.b = cfg.bias === false ? null : param(() => tf.zeros([cfg.out]));
  }
  outSize(inSize: number): number {
    const { stride, kernel, pad } = this.cfg;
    return pad === 'same' ? inSize * stride : (inSize - 1) * stride + kernel;
  }
  apply(x: tf.Tensor4D): tf.Tensor4D {
    const [n, h, w] = x.shape;
    const shape: [number, number, number, number] = [n, this.outSize(h), this.outSize(w), this.cfg.out];
    const y = tf.conv2dTranspose(x, this.W as tf.Tensor4D, shape, this.cfg.stride, this.cfg.pad);
    return this.b ? tf.add(y, this.b) : y;
  }
  trainable(): NamedVariables {
    const m: NamedVariables = new Map([['W', this.W]]);
    if (this.b) m.set('b', this.b);
    return m;
  }
  buffers(): NamedVariables {
    return new Map();
  }
}

/** Whether a forward pass trains (batch statistics) or samples (running averages). */
export interface Mode {
  training: boolean;
  /** Fold this batch's statistics into the running averages (once per iteration, in the G step). */
  updateStats?: boolean;
}

/**
 * Batch norm as in the authors' code: batch mean and (biased) variance over all axes but the last,
 * eps 1e-6, learned scale and shift, running averages with momentum 0.9 for deterministic sampling.
 * Like theirs, the running variance averages the batch variance times n/(n-1), n the batch size (also
 * for conv maps, where the variance is over n*h*w values).
 *
 * In training the layer has its own gradient (tf.customGrad) instead of tfjs differentiating
 * tf.moments and the normalisation op by op: the same function and the same forward values, but
 * the backward pass takes 5 elementwise passes over the activation and 2 reductions instead of ~15
 * passes and 5 reductions (and saves one tensor for it instead of ~8). With M values per channel,
 * xc = x - mean, rstd = 1/sqrt(var + eps), xhat = xc * rstd, y = gamma * xhat + beta:
 *   dbeta = sum(dy);  dgamma = sum(dy * xhat) = rstd * sum(dy * xc);
 *   dx = gamma * rstd * (dy - dbeta / M - xhat * dgamma / M).
 */
export class BatchNorm implements Module {
  static readonly EPS = 1e-6;
  static readonly MOMENTUM = 0.9;
  readonly gamma: tf.Variable;
  readonly beta: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  constructor(readonly channels: number) {
    this.gamma = param(() => tf.ones([channels]));
    this.beta = param(() => tf.zeros([channels]));
    this.runningMean = param(() => tf.zeros([channels]), false);
    this.runningVar = param(() => tf.ones([channels]), false);
  }
  apply<T extends tf.Tensor>(x: T, mode: Mode): T {
    if (mode.training) return this.normalizeWithBatchStatistics(x, !!mode.updateStats);
    const scale = tf.mul(this.gamma, tf.rsqrt(tf.add(this.runningVar, BatchNorm.EPS)));
    return tf.add(tf.mul(tf.sub(x, this.runningMean), scale), this.beta) as T;
  }
  private normalizeWithBatchStatistics<T extends tf.Tensor>(x: T, updateStats: boolean): T {
    const axes = x.shape.slice(0, -1).map((_, i) => i);
    const perChannel = x.size / x.shape[x.rank - 1];
    const forward = (input: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, save: tf.GradSaveFunc) => {
      const mean = tf.mean(input, axes);
      const centred = tf.sub(input, mean);
      const variance = tf.mean(tf.square(centred), axes);
      if (updateStats) this.updateRunning(mean, variance, input.shape[0]);
      const rstd = tf.rsqrt(tf.add(variance, BatchNorm.EPS));
      const scale = tf.mul(gamma, rstd);
      save([centred, rstd, scale]);
      return {
        value: tf.add(tf.mul(centred, scale), beta),
        gradFunc: (dy: tf.Tensor, [xc, r, sc]: tf.Tensor[]) => {
          const dbeta = tf.sum(dy, axes);
          const dgamma = tf.mul(tf.sum(tf.mul(dy, xc), axes), r);
          // dx = sc * dy - xc * (sc * r * dgamma / M) - sc * dbeta / M
          const alongXc = tf.mul(sc, tf.mul(r, tf.div(dgamma, perChannel)));
          const constant = tf.mul(sc, tf.div(dbeta, perChannel));
          const dx = tf.sub(tf.sub(tf.mul(dy, sc), tf.mul(xc, alongXc)), constant);
          return [dx, dgamma, dbeta];
        },
      };
    };
    const f = tf.customGrad(forward as unknown as Parameters<typeof tf.customGrad>[0]);
    return f(x, this.gamma, this.beta) as T;
  }
  private updateRunning(mean: tf.Tensor, variance: tf.Tensor, batch: number): void {
    const m = BatchNorm.MOMENTUM;
    const unbias = batch > 1 ? batch / (batch - 1) : 1;
    // assign() is not recorded on the gradient tape: the running averages are data, not parameters.
    tf.tidy(() => {
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, m), tf.mul(mean, 1 - m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, m), tf.mul(variance, (1 - m) * unbias)));
    });
  }
  trainable(): NamedVariables {
    return new Map([
      ['gamma', this.gamma],
      ['beta', this.beta],
    ]);
  }
  buffers(): NamedVariables {
    return new Map([
      ['mean', this.runningMean],
      ['var', this.runningVar],
    ]);
  }
}

export const lrelu = (x: tf.Tensor, slope = 0.2) => tf.leakyRelu(x, slope);

/** Flatten NHWC to [N, H*W*C]. */
export function flatten(x: tf.Tensor4D): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  return tf.reshape(x, [n, h * w * c]);
}

/** Flatten NHWC in channels-first order ([N, C*H*W]), as Theano/Lasagne's dense layers saw it. */
export function flattenChannelsFirst(x: tf.Tensor4D): tf.Tensor2D {
  const [n, h, w, c] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 3, 1, 2]), [n, c * h * w]);
}

/** Dispose every variable of a module (for tests and notebooks that build many models). */
export function disposeModule(m: Module): void {
  for (const v of m.trainable().values()) v.dispose();
  for (const v of m.buffers().values()) v.dispose();
}
