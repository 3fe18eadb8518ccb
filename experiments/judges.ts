/**
 * The paper authors' pre-trained encoders as outside judges: a model trained against our own
 * encoder could learn to please it; the authors' encoder never saw our samples. Used when
 * ../shared/data/sgan-pretrained is present (the team's machines), skipped in a fresh clone.
 */
import { ExternalJudge } from '../lib/experiment';
import { sharedPath } from '../lib/paths';

const PRETRAINED = sharedPath('data', 'sgan-pretrained');

export const AUTHORS_MNIST_ENCODER: ExternalJudge = {
  id: 'authors',
  label: "class consistency (authors' E)",
  file: `${PRETRAINED}/mnist_encoder.npz`,
};

export const AUTHORS_CIFAR10_ENCODER: ExternalJudge = {
  id: 'authors',
  label: "class consistency (authors' E)",
  file: `${PRETRAINED}/cifar10_encoder.npz`,
  meanImage: `${PRETRAINED}/cifar10_meanimg.npy`,
};
