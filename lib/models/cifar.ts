/**
 * The CIFAR-10 networks of the authors' released code (SVHN uses the same setup), NHWC. Images reach
 * D0 and E as pixels/255 minus the training set's mean image; D heads give 10 logits used in the
 * semi-supervised loss of Improved GAN (lib/losses.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { BatchNorm, Conv2d, Dense, Deconv2d, Init, Mode, NamedVariables, collect, flatten, lrelu } from '../layers';
import { DMode, Discriminator, DiscriminatorOutput, Generator } from './types';

export const CIFAR_Z1 = 50;
export const CIFAR_Z0 = 16;

/** Dense (no bias) + BN + ReLU: the generators' building block. */
class DenseBnRelu {
  readonly fc: Dense;
  readonly bn: BatchNorm;
  constructor(name: string, nIn: number, nOut: number, init: Init) {
    this.fc = new Dense(name, nIn, nOut, init, { bias: false });
    this.bn = new BatchNorm(nOut);
  }
  apply(x: tf.Tensor2D, mode: Mode): tf.Tensor2D {
    return tf.relu(this.bn.apply(this.fc.apply(x), mode));
  }
  trainable(): NamedVariables {
    return collect({ fc: this.fc, bn: this.bn }, 'trainable');
  }
  buffers(): NamedVariables {
    return collect({ fc: this.fc, bn: this.bn }, 'buffers');
  }
}

/** z1 -> 256; onehot y -> 512; concat (768) -> 512 -> 512 -> dense 256 ReLU. */
export class CifarG1 implements Generator {
  readonly zEmbed: DenseBnRelu;
  readonly yEmbed: DenseBnRelu;
  readonly fc1: DenseBnRelu;
  readonly fc2: DenseBnRelu;
  readonly fc3: Dense;
  constructor(readonly zDim: number, condDim: number, outDim: number, init: Init) {
    this.zEmbed = new DenseBnRelu('G1.zEmbed', zDim, 256, init);
    this.yEmbed = new DenseBnRelu('G1.yEmbed', condDim, 512, init);
    this.fc1 = new DenseBnRelu('G1.fc1', 768, 512, init);
    this.fc2 = new DenseBnRelu('G1.fc2', 512, 512, init);
    this.fc3 = new Dense('G1.fc3', 512, outDim, init);
  }
  apply(z: tf.Tensor2D, cond: tf.Tensor2D, mode: Mode): tf.Tensor2D {
    const h = tf.concat([this.zEmbed.apply(z, mode), this.yEmbed.apply(cond, mode)], 1);
    return tf.relu(this.fc3.apply(this.fc2.apply(this.fc1.apply(h, mode), mode)));
  }
  private layers() {
    const { zEmbed, yEmbed, fc1, fc2, fc3 } = this;
    return { zEmbed, yEmbed, fc1, fc2, fc3 };
  }
  trainable(): NamedVariables {
    return collect(this.layers(), 'trainable');
  }
  buffers(): NamedVariables {
    return collect(this.layers(), 'buffers');
  }
}

/**
 * z0 -> 128 -> 128; concat(cond, that) -> dense 256*5*5 BN ReLU -> 5x5x256 -> deconv s2 -> 10x10x256
 * -> deconv valid -> 14x14x128 -> deconv s2 -> 28x28x128 -> deconv valid -> 32x32x3 sigmoid.
 */
export class CifarG0 implements Generator {
  readonly embed1: DenseBnRelu;
  readonly embed2: DenseBnRelu;
  readonly fc: DenseBnRelu;
  readonly deconv1: Deconv2d;
  readonly bn1: BatchNorm;
  readonly deconv2: Deconv2d;
  readonly bn2: BatchNorm;
  readonly deconv3: Deconv2d;
  readonly bn3: BatchNorm;
  readonly deconv4: Deconv2d;
  constructor(readonly zDim: number, condDim: number, init: Init) {
    this.embed1 = new DenseBnRelu('G0.embed1', zDim, 128, init);
    this.embed2 = new DenseBnRelu('G0.embed2', 128, 128, init);
    this.fc = new DenseBnRelu('G0.fc', condDim + 128, 5 * 5 * 256, init);
    this.deconv1 = new Deconv2d('G0.deconv1', { kernel: 5, in: 256, out: 256, stride: 2, pad: 'same', bias: false }, init);
    this.bn1 = new BatchNorm(256);
    this.deconv2 = new Deconv2d('G0.deconv2', { kernel: 5, in: 256, out: 128, stride: 1, pad: 'valid', bias: false }, init);
    this.bn2 = new BatchNorm(128);
    this.deconv3 = new Deconv2d('G0.deconv3', { kernel: 5, in: 128, out: 128, stride: 2, pad: 'same', bias: false }, init);
    this.bn3 = new BatchNorm(128);
    this.deconv4 = new Deconv2d('G0.deconv4', { kernel: 5, in: 128, out: 3, stride: 1, pad: 'valid' }, init);
  }
  apply(z: tf.Tensor2D, cond: tf.Tensor2D, mode: Mode): tf.Tensor4D {
    const e = this.embed2.apply(this.embed1.apply(z, mode), mode);
    let h = tf.reshape(this.fc.apply(tf.concat([cond, e], 1), mode), [-1, 5, 5, 256]) as tf.Tensor4D;
    h = tf.relu(this.bn1.apply(this.deconv1.apply(h), mode));
    h = tf.relu(this.bn2.apply(this.deconv2.apply(h), mode));
    h = tf.relu(this.bn3.apply(this.deconv3.apply(h), mode));
    return tf.sigmoid(this.deconv4.apply(h));
  }
  private layers() {
    const { embed1, embed2, fc, deconv1, bn1, deconv2, bn2, deconv3, bn3, deconv4 } = this;
    return { embed1, embed2, fc, deconv1, bn1, deconv2, bn2, deconv3, bn3, deconv4 };
  }
  trainable(): NamedVariables {
    return collect(this.layers(), 'trainable');
  }
  buffers(): NamedVariables {
    return collect(this.layers(), 'buffers');
  }
}

/** Additive Gaussian noise on D's input, training only, from the forward pass's seed stream. */
function gaussianNoise<T extends tf.Tensor>(x: T, sigma: number, mode: DMode): T {
  if (!mode.training) return x;
  return tf.add(x, tf.randomNormal(x.shape, 0, sigma, 'float32', mode.seeds?.next())) as T;
}

function dropout<T extends tf.Tensor>(x: T, rate: number, mode: DMode): T {
  return mode.training ? (tf.dropout(x, rate, undefined, mode.seeds?.next()) as T) : x;
}

/** Discriminators always normalise with the batch's own statistics. */
const D_BN: Mode = { training: true };

/** noise 0.2 -> dense 512 LReLU -> dense 512 BN LReLU -> Q dense zDim (linear); adv dense 10. */
export class CifarD1 implements Discriminator {
  readonly fc1: Dense;
  readonly fc2: Dense;
  readonly bn2: BatchNorm;
  readonly q: Dense;
  readonly adv: Dense;
  constructor(inDim: number, zDim: number, init: Init) {
    this.fc1 = new Dense('D1.fc1', inDim, 512, init);
    this.fc2 = new Dense('D1.fc2', 512, 512, init, { bias: false });
    this.bn2 = new BatchNorm(512);
    this.q = new Dense('D1.q', 512, zDim, init);
    this.adv = new Dense('D1.adv', 512, 10, init);
  }
  apply(h: tf.Tensor, mode: DMode): DiscriminatorOutput {
    let t = lrelu(this.fc1.apply(gaussianNoise(h as tf.Tensor2D, 0.2, mode))) as tf.Tensor2D;
    t = lrelu(this.bn2.apply(this.fc2.apply(t), D_BN)) as tf.Tensor2D;
    return { adv: this.adv.apply(t), q: this.q.apply(t) };
  }
  private layers() {
    const { fc1, fc2, bn2, q, adv } = this;
    return { fc1, fc2, bn2, q, adv };
  }
  trainable(): NamedVariables {
    return collect(this.layers(), 'trainable');
  }
  buffers(): NamedVariables {
    return collect(this.layers(), 'buffers');
  }
}

/**
 * noise 0.05 -> conv 96 -> conv 96 s2 BN (16x16) -> dropout 0.1 -> conv 192 BN -> conv 192 s2 BN
 * (8x8) -> dropout 0.1 -> conv 3x3 192 valid BN (6x6) -> 1x1 conv 192; all LReLU.
 * Q: dense zDim from the flattened 6x6x192 map; adv: global average pool -> dense 10.
 */
export class CifarD0 implements Discriminator {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm;
  readonly conv4: Conv2d;
  readonly bn4: BatchNorm;
  readonly conv5: Conv2d;
  readonly bn5: BatchNorm;
  readonly conv6: Conv2d;
  readonly q: Dense;
  readonly adv: Dense;
  constructor(channels: number, zDim: number, init: Init) {
    const c = (name: string, k: number, cin: number, cout: number, stride: number, pad: number, bias: boolean) =>
      new Conv2d(name, { kernel: k, in: cin, out: cout, stride, pad, bias }, init);
    this.conv1 = c('D0.conv1', 3, channels, 96, 1, 1, true);
    this.conv2 = c('D0.conv2', 3, 96, 96, 2, 1, false);
    this.bn2 = new BatchNorm(96);
    this.conv3 = c('D0.conv3', 3, 96, 192, 1, 1, false);
    this.bn3 = new BatchNorm(192);
    this.conv4 = c('D0.conv4', 3, 192, 192, 2, 1, false);
    this.bn4 = new BatchNorm(192);
    this.conv5 = c('D0.conv5', 3, 192, 192, 1, 0, false);
    this.bn5 = new BatchNorm(192);
    this.conv6 = c('D0.conv6', 1, 192, 192, 1, 0, true);
    this.q = new Dense('D0.q', 6 * 6 * 192, zDim, init);
    this.adv = new Dense('D0.adv', 192, 10, init);
  }
  apply(x: tf.Tensor, mode: DMode): DiscriminatorOutput {
    let h = gaussianNoise(x as tf.Tensor4D, 0.05, mode);
    h = lrelu(this.conv1.apply(h)) as tf.Tensor4D;
    h = lrelu(this.bn2.apply(this.conv2.apply(h), D_BN)) as tf.Tensor4D;
    h = dropout(h, 0.1, mode);
    h = lrelu(this.bn3.apply(this.conv3.apply(h), D_BN)) as tf.Tensor4D;
    h = lrelu(this.bn4.apply(this.conv4.apply(h), D_BN)) as tf.Tensor4D;
    h = dropout(h, 0.1, mode);
    h = lrelu(this.bn5.apply(this.conv5.apply(h), D_BN)) as tf.Tensor4D;
    h = lrelu(this.conv6.apply(h)) as tf.Tensor4D;
    return { adv: this.adv.apply(tf.mean(h, [1, 2]) as tf.Tensor2D), q: this.q.apply(flatten(h)) };
  }
  private layers() {
    const { conv1, conv2, bn2, conv3, bn3, conv4, bn4, conv5, bn5, conv6, q, adv } = this;
    return { conv1, conv2, bn2, conv3, bn3, conv4, bn4, conv5, bn5, conv6, q, adv };
  }
  trainable(): NamedVariables {
    return collect(this.layers(), 'trainable');
  }
  buffers(): NamedVariables {
    return collect(this.layers(), 'buffers');
  }
}
