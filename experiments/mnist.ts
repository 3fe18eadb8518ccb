/** Paper Sec. 4.1 / Fig. 2-3: SGAN samples on MNIST, per-class grids and per-level variation. */
import { ExperimentSpec } from '../lib/experiment';
import { AUTHORS_MNIST_ENCODER } from './judges';

export const mnist: ExperimentSpec = {
  name: 'mnist',
  title: 'SGAN on MNIST: samples and per-level variation',
  dataset: 'mnist',
  variants: [{ id: 'sgan', label: 'SGAN (joint)', ablation: {} }],
  seeds: { smoke: [1], quick: [1], paper: [1] },
  evalSamples: { smoke: 200, quick: 1000, paper: 50000 },
  judges: [AUTHORS_MNIST_ENCODER],
};
