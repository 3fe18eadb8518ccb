/**
 * The MNIST networks of the authors' released code (see ../shared/docs/sgan-reference.md), NHWC.
 * G1: (z1, y) -> fc3-hat.  G0: (z0, fc3) -> x-hat.  D1 judges fc3, D0 judges images; both carry Q.
 */
import * as tf from '@tensorflow/tfjs';
import { BatchNorm, Conv2d, Dense, Deconv2d, Init, Mode, NamedVariables, collect, flatten, lrelu } from '../layers';
import { DMode, Discriminator, DiscriminatorOutput, Generator } from './types';

export const MNIST_Z1 = 50;
export const MNIST_Z0 = 50;

/** concat(z1, onehot y) -> dense 512 BN ReLU -> dense 512 BN ReLU -> dense 256 ReLU. */
export class MnistG1 implements Generator {
  readonly fc1: Dense;
  readonly bn1: BatchNorm;
  readonly fc2: Dense;
  readonly bn2: BatchNorm;
  readonly fc3: Dense;
  constructor(readonly zDim: number, condDim: number, outDim: number, init: Init) {
    // A BN layer replaces the bias of the layer it follows.
    this.fc1 = new Dense('G1.fc1', zDim + condDim, 512, init, { bias: false });
    this.bn1 = new BatchNorm(512);
    this.fc2 = new Dense('G1.fc2', 512, 512, init, { bias: false });
    this.bn2 = new BatchNorm(512);
    this.fc3 = new Dense('G1.fc3', 512, outDim, init);
  }
  apply(z: tf.Tensor2D, cond: tf.Tensor2D, mode: Mode): tf.Tensor2D {
    let h = tf.relu(this.bn1.apply(this.fc1.apply(tf.concat([z, cond], 1)), mode));
    h = tf.relu(this.bn2.apply(this.fc2.apply(h), mode));
    return tf.relu(this.fc3.apply(h));
  }
  private layers() {
    return { fc1: this.fc1, bn1: this.bn1, fc2: this.fc2, bn2: this.bn2, fc3: this.fc3 };
  }
  trainable(): NamedVariables {
    return collect(this.layers(), 'trainable');
  }
  buffers(): NamedVariables {
    return collect(this.layers(), 'buffers');
  }
}

/**
 * z0 -> dense 128 BN ReLU (embedding); concat(cond, embedding) -> dense 128*4*4 BN ReLU -> 4x4x128
 * -> deconv 5x5 s2 -> 8x8x128 BN ReLU -> deconv 5x5 s1 valid -> 12x12x64 BN ReLU
 * -> deconv 5x5 s2 -> 24x24x64 BN ReLU -> deconv 5x5 s1 valid -> 28x28x1 sigmoid.
 * cond is fc3 (SGAN) or one-hot labels (the single-GAN "DCGAN" baseline).
 */
export class MnistG0 implements Generator {
  readonly embed: Dense;
  readonly bnEmbed: BatchNorm;
  readonly fc: Dense;
  readonly bnFc: BatchNorm;
  readonly deconv1: Deconv2d;
  readonly bn1: BatchNorm;
  readonly deconv2: Deconv2d;
  readonly bn2: BatchNorm;
  readonly deconv3: Deconv2d;
  readonly bn3: BatchNorm;
  readonly deconv4: Deconv2d;
  constructor(readonly zDim: number, condDim: number, init: Init) {
    this.embed = new Dense('G0.embed', zDim, 128, init, { bias: false });
    this.bnEmbed = new BatchNorm(128);
    this.fc = new Dense('G0.fc', condDim + 128, 4 * 4 * 128, init, { bias: false });
    this.bnFc = new BatchNorm(4 * 4 * 128);
    this.deconv1 = new Deconv2d('G0.deconv1', { kernel: 5, in: 128, out: 128, stride: 2, pad: 'same', bias: false }, init);
    this.bn1 = new BatchNorm(128);
    this.deconv2 = new Deconv2d('G0.deconv2', { kernel: 5, in: 128, out: 64, stride: 1, pad: 'valid', bias: false }, init);
    this.bn2 = new BatchNorm(64);
    this.deconv3 = new Deconv2d('G0.deconv3', { kernel: 5, in: 64, out: 64, stride: 2, pad: 'same', bias: false }, init);
    this.bn3 = new BatchNorm(64);
    this.deconv4 = new Deconv2d('G0.deconv4', { kernel: 5, in: 64, out: 1, stride: 1, pad: 'valid' }, init);
  }
  apply(z: tf.Tensor2D, cond: tf.Tensor2D, mode: Mode): tf.Tensor4D {
    const e = tf.relu(this.bnEmbed.apply(this.embed.apply(z), mode));
    const h0 = tf.relu(this.bnFc.apply(this.fc.apply(tf.concat([cond, e], 1)), mode));
    let h = tf.reshape(h0, [-1, 4, 4, 128]) as tf.Tensor4D;
    h = tf.relu(this.bn1.apply(this.deconv1.apply(h), mode));
    h = tf.relu(this.bn2.apply(this.deconv2.apply(h), mode));
    h = tf.relu(this.bn3.apply(this.deconv3.apply(h), mode));
    return tf.sigmoid(this.deconv4.apply(h));
  }
  private layers() {
    const { embed, bnEmbed, fc, bnFc, deconv1, bn1, deconv2, bn2, deconv3, bn3, deconv4 } = this;
    return { embed, bnEmbed, fc, bnFc, deconv1, bn1, deconv2, bn2, deconv3, bn3, deconv4 };
  }
  trainable(): NamedVariables {
    return collect(this.layers(), 'trainable');
  }
  buffers(): NamedVariables {
    return collect(this.layers(), 'buffers');
  }
}

/** fc3 -> dense 256 LReLU -> dense 256 LReLU -> heads: Q dense zDim sigmoid; adv dense 1 (logit). */
export class MnistD1 implements Discriminator {
  readonly fc1: Dense;
  readonly fc2: Dense;
  readonly q: Dense;
  readonly adv: Dense;
  constructor(inDim: number, zDim: number, init: Init) {
    this.fc1 = new Dense('D1.fc1', inDim, 256, init);
    this.fc2 = new Dense('D1.fc2', 256, 256, init);
    this.q = new Dense('D1.q', 256, zDim, init);
    this.adv = new Dense('D1.adv', 256, 1, init);
  }
  apply(h: tf.Tensor, _mode: DMode): DiscriminatorOutput {
    const t = lrelu(this.fc2.apply(lrelu(this.fc1.apply(h as tf.Tensor2D)) as tf.Tensor2D)) as tf.Tensor2D;
    return { adv: this.adv.apply(t), q: tf.sigmoid(this.q.apply(t)) };
  }
  trainable(): NamedVariables {
    return collect({ fc1: this.fc1, fc2: this.fc2, q: this.q, adv: this.adv }, 'trainable');
  }
  buffers(): NamedVariables {
    return new Map();
  }
}

/** x -> conv 5x5 32/64/128, stride 2, pad 2, LReLU -> dense 256 LReLU -> Q (sigmoid), adv (logit). */
export class MnistD0 implements Discriminator {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly conv3: Conv2d;
  readonly fc: Dense;
  readonly q: Dense;
  readonly adv: Dense;
  constructor(zDim: number, init: Init) {
    this.conv1 = new Conv2d('D0.conv1', { kernel: 5, in: 1, out: 32, stride: 2, pad: 2 }, init);
    this.conv2 = new Conv2d('D0.conv2', { kernel: 5, in: 32, out: 64, stride: 2, pad: 2 }, init);
    this.conv3 = new Conv2d('D0.conv3', { kernel: 5, in: 64, out: 128, stride: 2, pad: 2 }, init);
    this.fc = new Dense('D0.fc', 4 * 4 * 128, 256, init);
    this.q = new Dense('D0.q', 256, zDim, init);
    this.adv = new Dense('D0.adv', 256, 1, init);
  }
  apply(x: tf.Tensor, _mode: DMode): DiscriminatorOutput {
    let h = lrelu(this.conv1.apply(x as tf.Tensor4D)) as tf.Tensor4D;
    h = lrelu(this.conv2.apply(h)) as tf.Tensor4D;
    h = lrelu(this.conv3.apply(h)) as tf.Tensor4D;
    const t = lrelu(this.fc.apply(flatten(h))) as tf.Tensor2D;
    return { adv: this.adv.apply(t), q: tf.sigmoid(this.q.apply(t)) };
  }
  private layers() {
    const { conv1, conv2, conv3, fc, q, adv } = this;
    return { conv1, conv2, conv3, fc, q, adv };
  }
  trainable(): NamedVariables {
    return collect(this.layers(), 'trainable');
  }
  buffers(): NamedVariables {
    return new Map();
  }
}
