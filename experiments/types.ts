/** What an experiment definition is: a typed config the runner in lib/experiment.ts executes. */
export type { ExperimentSpec, Variant } from '../lib/experiment';
