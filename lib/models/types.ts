/**
 * What a stack is made of. A stack i has a generator G_i(z_i, h_{i+1}) -> h_i-hat and a discriminator
 * D_i with its Q head (noise reconstruction for the entropy loss). Representations are named:
 * 'x' (image), 'fc3' (encoder features), 'y' (labels, fed to G as one-hot).
 */
import * as tf from '@tensorflow/tfjs';
import { Mode, Module } from '../layers';
import { SeedStream } from '../seed';

export type Repr = 'x' | 'fc3' | 'y';

export interface Generator extends Module {
  readonly zDim: number;
  /** z: [N, zDim] noise in [0,1]; cond: the representation above (one-hot labels or fc3). */
  apply(z: tf.Tensor2D, cond: tf.Tensor2D, mode: Mode): tf.Tensor;
}

export interface DiscriminatorOutput {
  /** Adversarial logits: [N,1] (sigmoid form) or [N,10] (semi-supervised form). */
  adv: tf.Tensor2D;
  /** Q head's reconstruction of the generator's noise, [N, zDim]. */
  q: tf.Tensor2D;
}

/** Randomness of a discriminator's forward pass (input noise, dropout), drawn from named streams. */
export interface DMode {
  training: boolean;
  seeds?: SeedStream;
}

export interface Discriminator extends Module {
  apply(h: tf.Tensor, mode: DMode): DiscriminatorOutput;
}
