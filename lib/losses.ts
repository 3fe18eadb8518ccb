/**
 * The three SGAN losses as small pure functions of tensors (all return scalars, means over the batch).
 *   adversarial: sigmoid cross-entropy (MNIST) or the 10-logit semi-supervised form of Improved GAN
 *                (CIFAR-10/SVHN);
 *   conditional: cross-entropy of E's logits against the labels (top stack), squared error of E's
 *                features against the condition (lower stacks);
 *   entropy:     squared error of Q's reconstruction of the generator's noise (a variational bound
 *                on the conditional entropy H(h_i | h_{i+1})).
 * Weights (adv 1, cond 1, ent 10) are applied by the trainer, not here.
 */
import * as tf from '@tensorflow/tfjs';

/** Binary cross-entropy of sigmoid(logits) against a constant target, stably: softplus(l) - t*l. */
export function bceWithLogits(logits: tf.Tensor, target: 0 | 1): tf.Scalar {
  return tf.tidy(() => {
    const sp = tf.softplus(logits);
    return tf.mean(target === 1 ? tf.sub(sp, logits) : sp) as tf.Scalar;
  });
}

/** MNIST D: 0.5 * BCE(D(real), 1) + 0.5 * BCE(D(fake), 0). */
export function sigmoidDiscriminatorLoss(realLogits: tf.Tensor, fakeLogits: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.add(tf.mul(0.5, bceWithLogits(realLogits, 1)), tf.mul(0.5, bceWithLogits(fakeLogits, 0))) as tf.Scalar);
}

/** MNIST G: BCE(D(fake), 1) (the non-saturating form). */
export function sigmoidGeneratorLoss(fakeLogits: tf.Tensor): tf.Scalar {
  return bceWithLogits(fakeLogits, 1);
}

/** -mean(l[y]) + mean(logsumexp(l)): softmax cross-entropy with integer labels. */
export function crossEntropyLoss(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const picked = tf.sum(tf.mul(logits, tf.oneHot(labels, logits.shape[1])), 1);
    return tf.sub(tf.mean(tf.logSumExp(logits, 1)), tf.mean(picked)) as tf.Scalar;
  });
}

/**
 * Semi-supervised D loss (Salimans et al. 2016, as in the authors' CIFAR code), l = 10 logits:
 *   class = CE(l_real, y); real = -mean(lse(l_real)) + mean(softplus(lse(l_real)));
 *   fake = mean(softplus(lse(l_fake)));  D = class + 0.5 * real + 0.5 * fake.
 * lse(l) acts as the logit of "real": D(x) = Z/(Z+1) with Z = sum(exp(l)).
 */
export function semiSupervisedDiscriminatorLoss(realLogits: tf.Tensor2D, fakeLogits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const lseReal = tf.logSumExp(realLogits, 1);
    const lseFake = tf.logSumExp(fakeLogits, 1);
    const cls = crossEntropyLoss(realLogits, labels);
    const real = tf.add(tf.neg(tf.mean(lseReal)), tf.mean(tf.softplus(lseReal)));
    const fake = tf.mean(tf.softplus(lseFake));
    return tf.add(cls, tf.add(tf.mul(0.5, real), tf.mul(0.5, fake))) as tf.Scalar;
  });
}

/** Semi-supervised G loss: -mean(softplus(lse(l_fake))). */
export function semiSupervisedGeneratorLoss(fakeLogits: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => tf.neg(tf.mean(tf.softplus(tf.logSumExp(fakeLogits, 1)))) as tf.Scalar);
}

/** mean((a - b)^2) over all elements. */
export function meanSquaredError(a: tf.Tensor, b: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.squaredDifference(a, b)) as tf.Scalar);
}

/** Conditional loss of the top stack: E's logits on the generated h against the labels. */
export const labelConditionalLoss = crossEntropyLoss;

/** Conditional loss of a lower stack: E's features of the generated h against the condition. */
export const featureConditionalLoss = meanSquaredError;

/** Entropy loss: Q's reconstruction of the noise z from the generated sample. */
export const entropyLoss = meanSquaredError;

export type AdversarialForm = 'sigmoid' | 'semi-supervised';

export function discriminatorAdversarialLoss(form: AdversarialForm, real: tf.Tensor2D, fake: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return form === 'sigmoid' ? sigmoidDiscriminatorLoss(real, fake) : semiSupervisedDiscriminatorLoss(real, fake, labels);
}

export function generatorAdversarialLoss(form: AdversarialForm, fake: tf.Tensor2D): tf.Scalar {
  return form === 'sigmoid' ? sigmoidGeneratorLoss(fake) : semiSupervisedGeneratorLoss(fake);
}
