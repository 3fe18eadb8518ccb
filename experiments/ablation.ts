/**
 * Paper Sec. 4.3 / Table 2-3: which parts of SGAN matter. Rows as in the paper; "DCGAN" is one GAN
 * with G0's architecture conditioned on labels instead of fc3, with the losses named.
 * Run for MNIST (default), CIFAR-10 and SVHN (`--dataset`, with --data-dir).
 */
import { ExperimentSpec, Variant } from '../lib/experiment';
import { ExperimentName } from '../lib/presets';
import { AUTHORS_CIFAR10_ENCODER, AUTHORS_MNIST_ENCODER } from './judges';

export const ABLATION_VARIANTS: Variant[] = [
  { id: 'sgan', label: 'SGAN (joint)', ablation: {} },
  { id: 'sgan-nojoint', label: 'SGAN-no-joint', ablation: { noJoint: true } },
  { id: 'dcgan-adv-cond-ent', label: 'DCGAN (Ladv + Lcond + Lent)', ablation: { baseline: 'dcgan' } },
  { id: 'dcgan-adv-cond', label: 'DCGAN (Ladv + Lcond)', ablation: { baseline: 'dcgan', noEntropy: true } },
  { id: 'dcgan-adv-ent', label: 'DCGAN (Ladv + Lent)', ablation: { baseline: 'dcgan', noCond: true } },
  { id: 'dcgan-adv', label: 'DCGAN (Ladv)', ablation: { baseline: 'dcgan', noCond: true, noEntropy: true } },
  { id: 'sgan-noent', label: 'SGAN without entropy loss', ablation: { noEntropy: true } },
];

export function ablation(dataset: ExperimentName = 'mnist'): ExperimentSpec {
  return {
    name: dataset === 'mnist' ? 'ablation' : `ablation-${dataset}`,
    title: `Ablation on ${dataset}: joint training, entropy and conditional losses`,
    dataset,
    variants: ABLATION_VARIANTS,
    seeds: { smoke: [1, 2], quick: [1, 2, 3], paper: [1, 2, 3] },
    evalSamples: { smoke: 200, quick: 1000, paper: 50000 },
    // 7 variants x 3 seeds = 21 trainings: the quick grid trains each cell for 2 whole epochs of the
    // 8,000 digits (500 steps; the MNIST quick preset: 800) so that it fits in about two hours of 2 cores.
    schedule:
      dataset === 'mnist'
        ? {
            quick: {
              stages: [
                { kind: 'independent', epochs: 1 },
                { kind: 'joint', epochs: 1 },
              ],
              batchesPerEpoch: null,
              scale:
                'CPU quick ablation: 1 independent + 1 joint epoch over the 8,000 embedded training digits (500 steps; single-GAN and no-joint rows: 2 independent epochs), batch 32, Adam lr 1e-3 (the authors\' form, eps inside the root), encoder pre-trained for 10 epochs (paper: 200 epochs on 60,000 digits, batch 100, lr 1e-4)',
            },
          }
        : undefined,
    judges: dataset === 'mnist' ? [AUTHORS_MNIST_ENCODER] : dataset === 'cifar10' ? [AUTHORS_CIFAR10_ENCODER] : [],
  };
}
