/** Paper Sec. 4.2 / Table 1 / Fig. 4: SGAN samples and scores on CIFAR-10 (needs --data-dir). */
import { ExperimentSpec } from '../lib/experiment';
import { AUTHORS_CIFAR10_ENCODER } from './judges';

export const cifar10: ExperimentSpec = {
  name: 'cifar10',
  title: 'SGAN on CIFAR-10: samples and scores',
  dataset: 'cifar10',
  variants: [{ id: 'sgan', label: 'SGAN (joint)', ablation: {} }],
  seeds: { smoke: [1], quick: [1], paper: [1] },
  evalSamples: { smoke: 200, quick: 2000, paper: 50000 },
  judges: [AUTHORS_CIFAR10_ENCODER],
};
