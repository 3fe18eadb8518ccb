/**
 * Pre-training and evaluating the encoder E (a plain classifier; frozen afterwards). CIFAR-10/SVHN
 * inputs are pixels/255 minus the training set's per-pixel mean image, and CIFAR-10 is trained with
 * random horizontal flips, as the authors' encoder was.
 */
import * as tf from '@tensorflow/tfjs';
import { zipSync } from 'fflate';
import { Adam, namedGrads } from './adam';
import { writeFileAtomic } from './atomic';
import { ImageDataset, epochPermutation, imageBatch, labelBatch } from './datasets/dataset';
import { CIFAR_ENCODER, Encoder, EncoderConfig, MNIST_ENCODER, encoderFromArrays, encoderToArrays, meanImageTensor } from './encoder';
import { crossEntropyLoss } from './losses';
import { encodeNpy, readNpyFile, readNpz } from './npy';
import { createProgress } from './progress';
import { deriveSeed } from './seed';

export interface EncoderTrainConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** Random horizontal flips (CIFAR-10; digits must not be mirrored). */
  flips: boolean;
  /** L2 penalty on the weight matrices (not biases), added to the loss; 0 or absent: none. */
  weightDecay?: number;
}

export function encoderConfigFor(ds: ImageDataset): EncoderConfig {
  const cfg = ds.channels === 1 ? MNIST_ENCODER : CIFAR_ENCODER;
  if (ds.height !== cfg.size || ds.width !== cfg.size || ds.channels !== cfg.channels) {
    throw new Error(`dataset ${ds.name}: images are ${ds.height}x${ds.width}x${ds.channels}, the encoder expects ${cfg.size}x${cfg.size}x${cfg.channels}`);
  }
  return cfg;
}

/** Per-pixel mean of pixels/255 over a dataset, NHWC [1,H,W,C], accumulated in float64. */
export function meanImageOf(ds: ImageDataset): tf.Tensor4D {
  const per = ds.height * ds.width * ds.channels;
  const acc = new Float64Array(per);
  for (let i = 0; i < ds.n; i++) {
    const off = i * per;
    for (let j = 0; j < per; j++) acc[j] += ds.pixels[off + j];
  }
  const mean = Float32Array.from(acc, (v) => v / ds.n / 255);
  return tf.tensor4d(mean, [1, ds.height, ds.width, ds.channels]);
}

/** Sum of squares of a list of tensors. */
function l2(ts: tf.Tensor[]): tf.Scalar {
  return tf.addN(ts.map((t) => tf.sum(tf.square(t)))) as tf.Scalar;
}

/** Flip a random half of the batch left-right (seeded). */
function randomFlips(x: tf.Tensor4D, seed: number): tf.Tensor4D {
  return tf.tidy(() => {
    const n = x.shape[0];
    const mask = tf.less(tf.randomUniform([n, 1, 1, 1], 0, 1, 'float32', seed), 0.5);
    return tf.where(tf.broadcastTo(mask, x.shape), tf.reverse(x, 2), x) as tf.Tensor4D;
  });
}

export async function trainEncoder(ds: ImageDataset, cfg: EncoderTrainConfig, opts: { progress?: boolean } = {}): Promise<Encoder> {
  const enc = new Encoder(encoderConfigFor(ds), deriveSeed(cfg.seed, 'encoder'));
  if (ds.channels === 3) enc.meanImage = meanImageOf(ds);
  const opt = new Adam({ lr: cfg.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 }, enc.trainable());
  const spe = Math.floor(ds.n / cfg.batchSize);
  const total = spe * cfg.epochs;
  const wd = cfg.weightDecay ?? 0;
  const weights = [...opt.params.entries()].filter(([name]) => name.endsWith('.W')).map(([, v]) => v);
  const bar = opts.progress === false ? null : createProgress(`train-encoder ${ds.name}`, total);
  let lossSum: tf.Scalar = tf.scalar(0);
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const perm = epochPermutation(ds.n, deriveSeed(cfg.seed, 'encoder-data'), epoch);
    for (let b = 0; b < spe; b++) {
      const step = epoch * spe + b;
      const idx = perm.subarray(b * cfg.batchSize, (b + 1) * cfg.batchSize);
      const x0 = imageBatch(ds, idx);
      const y = labelBatch(ds, idx);
      const x = cfg.flips ? randomFlips(x0, deriveSeed(cfg.seed, 'flip', step)) : x0;
      const { value, grads } = namedGrads(() => {
        const ce = crossEntropyLoss(enc.classify(x), y);
        return wd > 0 ? (tf.add(ce, tf.mul(wd, l2(weights))) as tf.Scalar) : ce;
      }, opt.params);
      opt.apply(grads);
      const next = tf.add(lossSum, value) as tf.Scalar;
      lossSum.dispose();
      lossSum = next;
      tf.dispose([value, ...grads.values(), y, x0]);
      if (x !== x0) x.dispose();
      if ((step + 1) % 20 === 0 || step + 1 === total) {
        const mean = (await lossSum.data())[0] / 20;
        tf.dispose(lossSum);
        lossSum = tf.scalar(0);
        bar?.update(step + 1, { loss: mean });
      }
    }
  }
  lossSum.dispose();
  bar?.stop();
  return enc;
}

/** Fraction of a dataset the encoder classifies correctly, evaluated in batches. */
export async function encoderAccuracy(enc: Encoder, ds: ImageDataset, batchSize = 500): Promise<number> {
  let correct = 0;
  for (let start = 0; start < ds.n; start += batchSize) {
    const idx = Uint32Array.from({ length: Math.min(batchSize, ds.n - start) }, (_, i) => start + i);
    const hits = tf.tidy(() => {
      const x = imageBatch(ds, idx);
      const pred = tf.argMax(enc.classify(x), 1);
      return tf.sum(tf.cast(tf.equal(pred, labelBatch(ds, idx)), 'int32'));
    });
    correct += (await hits.data())[0];
    hits.dispose();
  }
  return correct / ds.n;
}

/** Save an encoder as .npz in the authors' layout (plus 'meanimg' when it has one). */
export async function saveEncoderNpz(enc: Encoder, file: string): Promise<void> {
  const files: Record<string, Uint8Array> = {};
  for (const a of await encoderToArrays(enc)) files[`${a.name}.npy`] = encodeNpy(a.data, a.shape);
  writeFileAtomic(file, zipSync(files, { level: 0 }));
}

/** Load an encoder .npz (the authors' or ours), optionally with a separate (C,H,W) mean-image .npy. */
export function loadEncoder(file: string, meanImageFile?: string): Encoder {
  const enc = encoderFromArrays(file, readNpz(file));
  if (meanImageFile) {
    enc.meanImage?.dispose();
    enc.meanImage = meanImageTensor(meanImageFile, readNpyFile(meanImageFile), enc.cfg);
  }
  return enc;
}
