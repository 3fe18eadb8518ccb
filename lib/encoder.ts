/**
 * The encoder E: a small CNN classifier, pre-trained and then frozen while the GANs train. SGAN slices
 * it into levels: E0 maps an image x to fc3 (256 features after ReLU), E1 maps fc3 to class logits.
 *
 * Weights load from (and save to) the paper authors' .npz layout, so their released encoders and ours
 * are interchangeable: arrays arr_0..arr_7 = conv1 W (out,in,kh,kw), b; conv2 W, b; fc3 W (in,out), b;
 * fc4 W, b; convs are cross-correlations (as tf.conv2d), and fc3 reads the channels-first flattening of
 * the last pooled map. CIFAR-10/SVHN encoders see pixels/255 minus a per-pixel mean image.
 */
import * as tf from '@tensorflow/tfjs';
import { Conv2d, Dense, Init, Module, NamedVariables, collect, flattenChannelsFirst } from './layers';
import { NpyArray } from './npy';

export interface EncoderConfig {
  /** Input image side and channels. */
  size: number;
  channels: number;
  conv1: number;
  conv2: number;
  fc3: number;
  classes: number;
}

export const MNIST_ENCODER: EncoderConfig = { size: 28, channels: 1, conv1: 32, conv2: 32, fc3: 256, classes: 10 };
export const CIFAR_ENCODER: EncoderConfig = { size: 32, channels: 3, conv1: 64, conv2: 128, fc3: 256, classes: 10 };

/** Side of the last pooled map: two (valid 5x5 conv, 2x2 max-pool) blocks. */
export function pooledSize(size: number): number {
  const afterBlock = (s: number) => Math.floor((s - 4) / 2);
  return afterBlock(afterBlock(size));
}

export class Encoder implements Module {
  readonly conv1: Conv2d;
  readonly conv2: Conv2d;
  readonly fc3: Dense;
  readonly fc4: Dense;
  /** Per-pixel mean image, NHWC [1, H, W, C], subtracted from pixels/255; null for MNIST. */
  meanImage: tf.Tensor4D | null = null;

  constructor(readonly cfg: EncoderConfig, seed: number, trainable = true) {
    const init: Init = { seed, std: 0.01 };
    const p = pooledSize(cfg.size);
    this.conv1 = new Conv2d('conv1', { kernel: 5, in: cfg.channels, out: cfg.conv1, stride: 1, pad: 'valid' }, init, trainable);
    this.conv2 = new Conv2d('conv2', { kernel: 5, in: cfg.conv1, out: cfg.conv2, stride: 1, pad: 'valid' }, init, trainable);
    this.fc3 = new Dense('fc3', cfg.conv2 * p * p, cfg.fc3, init, { trainable });
    this.fc4 = new Dense('fc4', cfg.fc3, cfg.classes, init, { trainable });
  }

  /** Pixels in [0,1] to the encoder's input space (mean image removed where there is one). */
  preprocess(x01: tf.Tensor4D): tf.Tensor4D {
    return this.meanImage ? tf.sub(x01, this.meanImage) : x01;
  }

  /** E0 on an already preprocessed image: x -> fc3 (after ReLU). */
  featuresOfPreprocessed(x: tf.Tensor4D): tf.Tensor2D {
    let h = tf.maxPool(tf.relu(this.conv1.apply(x)), 2, 2, 'valid');
    h = tf.maxPool(tf.relu(this.conv2.apply(h)), 2, 2, 'valid');
    return tf.relu(this.fc3.apply(flattenChannelsFirst(h)));
  }

  /** E0: pixels in [0,1] -> fc3. */
  features(x01: tf.Tensor4D): tf.Tensor2D {
    return this.featuresOfPreprocessed(this.preprocess(x01));
  }

  /** E1: fc3 -> class logits (fc4, before softmax). */
  logits(fc3: tf.Tensor2D): tf.Tensor2D {
    return this.fc4.apply(fc3);
  }

  classify(x01: tf.Tensor4D): tf.Tensor2D {
    return this.logits(this.features(x01));
  }

  trainable(): NamedVariables {
    return collect({ conv1: this.conv1, conv2: this.conv2, fc3: this.fc3, fc4: this.fc4 }, 'trainable');
  }
  buffers(): NamedVariables {
    return new Map();
  }

  dispose(): void {
    for (const v of this.trainable().values()) v.dispose();
    this.meanImage?.dispose();
  }
}

/** The eight arrays of the authors' layout, in order. */
const NPZ_LAYOUT = ['conv1', 'conv2', 'fc3', 'fc4'] as const;

function expectShape(file: string, key: string, arr: NpyArray, shape: number[]): void {
  if (arr.shape.length !== shape.length || arr.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${file}: ${key} has shape (${arr.shape.join(',')}), expected (${shape.join(',')})`);
  }
}

function asFloat32(arr: NpyArray): Float32Array {
  return arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data as ArrayLike<number>);
}

/** Infer the encoder's config from the arrays' shapes (MNIST and CIFAR layouts differ only in sizes). */
export function configFromArrays(file: string, arrays: Record<string, NpyArray>): EncoderConfig {
  for (let i = 0; i < 8; i++) {
    if (!(`arr_${i}` in arrays)) throw new Error(`${file}: missing array arr_${i} (expected arr_0..arr_7: conv1 W,b; conv2 W,b; fc3 W,b; fc4 W,b)`);
  }
  const c1 = arrays.arr_0.shape;
  const c2 = arrays.arr_2.shape;
  const f3 = arrays.arr_4.shape;
  const f4 = arrays.arr_6.shape;
  if (c1.length !== 4 || c2.length !== 4 || f3.length !== 2 || f4.length !== 2) {
    throw new Error(`${file}: arr_0/arr_2 must be 4-D conv weights and arr_4/arr_6 2-D dense weights, found (${c1}), (${c2}), (${f3}), (${f4})`);
  }
  const [conv1, channels] = c1;
  const conv2 = c2[0];
  // fc3's input is conv2 * p * p with p = pooledSize(size); recover size from p.
  const p = Math.round(Math.sqrt(f3[0] / conv2));
  const size = [28, 32].find((s) => pooledSize(s) === p);
  if (size === undefined || conv2 * p * p !== f3[0]) {
    throw new Error(`${file}: fc3 W has ${f3[0]} inputs, which is not conv2 (${conv2}) x p x p for a 28x28 or 32x32 input`);
  }
  return { size, channels, conv1, conv2, fc3: f3[1], classes: f4[1] };
}

/** Load the authors' (or our own) .npz arrays into an encoder. */
export function encoderFromArrays(file: string, arrays: Record<string, NpyArray>): Encoder {
  const cfg = configFromArrays(file, arrays);
  const enc = new Encoder(cfg, 0, false);
  const p = pooledSize(cfg.size);
  const shapes: Record<string, [number[], number[]]> = {
    conv1: [[cfg.conv1, cfg.channels, 5, 5], [cfg.conv1]],
    conv2: [[cfg.conv2, cfg.conv1, 5, 5], [cfg.conv2]],
    fc3: [[cfg.conv2 * p * p, cfg.fc3], [cfg.fc3]],
    fc4: [[cfg.fc3, cfg.classes], [cfg.classes]],
  };
  NPZ_LAYOUT.forEach((layer, i) => {
    const W = arrays[`arr_${2 * i}`];
    const b = arrays[`arr_${2 * i + 1}`];
    expectShape(file, `arr_${2 * i} (${layer} W)`, W, shapes[layer][0]);
    expectShape(file, `arr_${2 * i + 1} (${layer} b)`, b, shapes[layer][1]);
    const target = enc[layer];
    tf.tidy(() => {
      let w = tf.tensor(asFloat32(W), W.shape);
      // (out, in, kh, kw) -> (kh, kw, in, out)
      if (layer.startsWith('conv')) w = tf.transpose(w, [2, 3, 1, 0]);
      target.W.assign(w);
      target.b!.assign(tf.tensor(asFloat32(b), b.shape));
    });
  });
  if ('meanimg' in arrays) enc.meanImage = meanImageTensor(file, arrays.meanimg, cfg);
  return enc;
}

/** A (C,H,W) mean image (the authors' cifar10_meanimg.npy layout) as NHWC [1,H,W,C]. */
export function meanImageTensor(file: string, arr: NpyArray, cfg: EncoderConfig): tf.Tensor4D {
  expectShape(file, 'mean image', arr, [cfg.channels, cfg.size, cfg.size]);
  return tf.tidy(() => tf.transpose(tf.tensor(asFloat32(arr), arr.shape), [1, 2, 0]).expandDims(0) as tf.Tensor4D);
}

/** The encoder's arrays in the authors' layout (to write an .npz our loader and theirs both read). */
export async function encoderToArrays(enc: Encoder): Promise<Array<{ name: string; shape: number[]; data: Float32Array }>> {
  const out: Array<{ name: string; shape: number[]; data: Float32Array }> = [];
  for (const [i, layer] of NPZ_LAYOUT.entries()) {
    const l = enc[layer];
    const W = layer.startsWith('conv') ? tf.transpose(l.W, [3, 2, 0, 1]) : l.W.clone();
    out.push({ name: `arr_${2 * i}`, shape: W.shape, data: (await W.data()) as Float32Array });
    out.push({ name: `arr_${2 * i + 1}`, shape: l.b!.shape, data: (await l.b!.data()) as Float32Array });
    W.dispose();
  }
  if (enc.meanImage) {
    const m = tf.transpose(tf.squeeze(enc.meanImage, [0]), [2, 0, 1]);
    out.push({ name: 'meanimg', shape: m.shape, data: (await m.data()) as Float32Array });
    m.dispose();
  }
  return out;
}
