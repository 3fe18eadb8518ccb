/** Every paper experiment by name; `sgan experiment <name>` and the notebooks look them up here. */
import { ExperimentSpec } from '../lib/experiment';
import { ExperimentName } from '../lib/presets';
import { ablation } from './ablation';
import { cifar10 } from './cifar10';
import { mnist } from './mnist';
import { svhn } from './svhn';

export const EXPERIMENT_NAMES = ['mnist', 'cifar10', 'svhn', 'ablation'] as const;
export type ExperimentId = (typeof EXPERIMENT_NAMES)[number];

/** The ablation grid runs on MNIST unless another dataset is named. */
export function experimentSpec(name: ExperimentId, ablationDataset: ExperimentName = 'mnist'): ExperimentSpec {
  switch (name) {
    case 'mnist':
      return mnist;
    case 'cifar10':
      return cifar10;
    case 'svhn':
      return svhn;
    case 'ablation':
      return ablation(ablationDataset);
  }
}

export { runExperiment, mergeExperiment, loadExperimentResults } from '../lib/experiment';
