/**
 * An SGAN: a frozen encoder E and a list of stacks, bottom first (index = level). Stack i generates
 * h_i from noise z_i and the representation above it, h_{i+1}; the top stack is conditioned on labels.
 * The paper's two-stack model is stacks [G0: fc3 -> x, G1: y -> fc3]. The single conditional GAN
 * ("DCGAN" baselines of the ablation) is one stack [G0: y -> x] judged by the whole encoder.
 * A third stack is a new entry in `stacks` plus a generator/discriminator for its representation.
 */
import * as tf from '@tensorflow/tfjs';
import { Encoder } from './encoder';
import { Init, Mode, NamedVariables, collect } from './layers';
import { AdversarialForm } from './losses';
import { CIFAR_Z0, CIFAR_Z1, CifarD0, CifarD1, CifarG0, CifarG1 } from './models/cifar';
import { MNIST_Z0, MNIST_Z1, MnistD0, MnistD1, MnistG0, MnistG1 } from './models/mnist';
import { Discriminator, Generator, Repr } from './models/types';
import { deriveSeed } from './seed';

export type Architecture = 'mnist' | 'cifar';

export interface StackSpec {
  /** 'G0', 'G1', ...: also the prefix of its parameters' names. */
  name: string;
  generates: Repr;
  condition: Repr;
  zDim: number;
}

export interface ModelConfig {
  architecture: Architecture;
  adversarial: AdversarialForm;
  /** Bottom first. */
  stacks: StackSpec[];
}

export const NUM_CLASSES = 10;

export function sganStacks(arch: Architecture): StackSpec[] {
  const [z0, z1] = arch === 'mnist' ? [MNIST_Z0, MNIST_Z1] : [CIFAR_Z0, CIFAR_Z1];
  return [
    { name: 'G0', generates: 'x', condition: 'fc3', zDim: z0 },
    { name: 'G1', generates: 'fc3', condition: 'y', zDim: z1 },
  ];
}

/** The ablation's single GAN: G0's architecture conditioned on labels instead of fc3. */
export function baselineStacks(arch: Architecture): StackSpec[] {
  return [{ name: 'G0', generates: 'x', condition: 'y', zDim: arch === 'mnist' ? MNIST_Z0 : CIFAR_Z0 }];
}

export function modelConfig(arch: Architecture, baseline: 'dcgan' | null): ModelConfig {
  return {
    architecture: arch,
    adversarial: arch === 'mnist' ? 'sigmoid' : 'semi-supervised',
    stacks: baseline === 'dcgan' ? baselineStacks(arch) : sganStacks(arch),
  };
}

/** Width of a representation when it is a generator's condition or a discriminator's input. */
function reprDim(r: Repr, encoder: Encoder): number {
  if (r === 'y') return NUM_CLASSES;
  if (r === 'fc3') return encoder.cfg.fc3;
  throw new Error(`an image cannot be a condition in this model`);
}

function buildStack(cfg: ModelConfig, s: StackSpec, encoder: Encoder, init: Init): { G: Generator; D: Discriminator } {
  const condDim = reprDim(s.condition, encoder);
  const mnist = cfg.architecture === 'mnist';
  if (s.generates === 'x') {
    return mnist
      ? { G: new MnistG0(s.zDim, condDim, init), D: new MnistD0(s.zDim, init) }
      : { G: new CifarG0(s.zDim, condDim, init), D: new CifarD0(encoder.cfg.channels, s.zDim, init) };
  }
  if (s.generates === 'fc3') {
    const d = encoder.cfg.fc3;
    return mnist
      ? { G: new MnistG1(s.zDim, condDim, d, init), D: new MnistD1(d, s.zDim, init) }
      : { G: new CifarG1(s.zDim, condDim, d, init), D: new CifarD1(d, s.zDim, init) };
  }
  throw new Error(`stack ${s.name}: no generator architecture for representation '${s.generates}'`);
}

export class SGAN {
  readonly G: Generator[];
  readonly D: Discriminator[];

  constructor(readonly cfg: ModelConfig, readonly encoder: Encoder, seed: number) {
    this.G = [];
    this.D = [];
    cfg.stacks.forEach((s, level) => {
      const { G, D } = buildStack(cfg, s, encoder, { seed: deriveSeed(seed, 'init', level), std: 0.02 });
      this.G.push(G);
      this.D.push(D);
    });
  }

  get levels(): number {
    return this.cfg.stacks.length;
  }

  /** Parameters of all generators or all discriminators, named "G0.fc.W", "D1.q.b", ... */
  params(which: 'G' | 'D', opts: { withQ?: boolean } = {}): NamedVariables {
    const nets = which === 'G' ? this.G : this.D;
    const named: Record<string, (typeof nets)[number]> = {};
    nets.forEach((n, i) => (named[`${which}${i}`] = n));
    const all = collect(named, 'trainable');
    if (which === 'D' && opts.withQ === false) {
      for (const k of [...all.keys()]) if (/^D\d+\.q\./.test(k)) all.delete(k);
    }
    return all;
  }

  /** Batch-norm running averages of all networks. */
  buffers(): NamedVariables {
    const named: Record<string, Generator | Discriminator> = {};
    this.G.forEach((n, i) => (named[`G${i}`] = n));
    this.D.forEach((n, i) => (named[`D${i}`] = n));
    return collect(named, 'buffers');
  }

  /** A representation as a discriminator or the encoder sees it (images: mean image removed). */
  toDInput(r: Repr, h: tf.Tensor): tf.Tensor {
    return r === 'x' ? this.encoder.preprocess(h as tf.Tensor4D) : h;
  }

  /** E_i: the encoder slice that maps what stack i generates to what it is conditioned on. */
  encode(from: Repr, to: Repr, hD: tf.Tensor): tf.Tensor2D {
    if (from === 'x' && to === 'fc3') return this.encoder.featuresOfPreprocessed(hD as tf.Tensor4D);
    if (from === 'fc3' && to === 'y') return this.encoder.logits(hD as tf.Tensor2D);
    if (from === 'x' && to === 'y') return this.encoder.logits(this.encoder.featuresOfPreprocessed(hD as tf.Tensor4D));
    throw new Error(`no encoder slice from '${from}' to '${to}'`);
  }

  /**
   * Top-down generation: the top stack gets one-hot labels, each lower stack the output of the one
   * above. Returns every level's output, bottom first. Sampling uses running BN averages.
   */
  generate(labels: tf.Tensor1D, z: tf.Tensor2D[], mode: Mode = { training: false }): tf.Tensor[] {
    return tf.tidy(() => {
      const out: tf.Tensor[] = new Array(this.levels);
      let cond: tf.Tensor2D = tf.oneHot(labels, NUM_CLASSES).toFloat() as tf.Tensor2D;
      for (let i = this.levels - 1; i >= 0; i--) {
        out[i] = this.G[i].apply(z[i], cond, mode);
        cond = out[i] as tf.Tensor2D;
      }
      return out;
    });
  }

  /** Noise z_i ~ U[0,1] for every level, from seeds derived from `seed`. */
  noise(n: number, seed: number, tag = 'sample'): tf.Tensor2D[] {
    return this.cfg.stacks.map((s, i) => tf.randomUniform([n, s.zDim], 0, 1, 'float32', deriveSeed(seed, tag, i)) as tf.Tensor2D);
  }

  dispose(): void {
    for (const v of this.params('G').values()) v.dispose();
    for (const v of this.params('D').values()) v.dispose();
    for (const v of this.buffers().values()) v.dispose();
  }
}
