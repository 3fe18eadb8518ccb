/** Paper Sec. 4.2 / Fig. 5: SGAN samples on SVHN (needs --data-dir with train_32x32.mat). */
import { ExperimentSpec } from '../lib/experiment';

export const svhn: ExperimentSpec = {
  name: 'svhn',
  title: 'SGAN on SVHN: samples and scores',
  dataset: 'svhn',
  variants: [{ id: 'sgan', label: 'SGAN (joint)', ablation: {} }],
  seeds: { smoke: [1], quick: [1], paper: [1] },
  evalSamples: { smoke: 200, quick: 2000, paper: 50000 },
};
