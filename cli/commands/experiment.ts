import { Command } from 'commander';
import { EXPERIMENT_NAMES, ExperimentId, experimentSpec } from '../../experiments';
import { mergeExperiment, parseShard, runExperiment } from '../../lib/experiment';
import { EXPERIMENTS, ExperimentName, PRESETS, PresetName } from '../../lib/presets';
import { choiceOption, intListOption, printJsonLine, startBackend } from '../common';

interface ExperimentOpts {
  preset: PresetName;
  seeds?: number[];
  dataDir?: string;
  shard?: string;
  dataset: ExperimentName;
  encoder?: string;
  meanImage?: string;
  results: string;
  runs: string;
}

export function registerExperiment(program: Command): void {
  const cmd = program
    .command('experiment')
    .description('run a paper experiment (resumable; finished cells are skipped), or merge shards into its table')
    .argument('<name>', EXPERIMENT_NAMES.join('|'), choiceOption('experiment', EXPERIMENT_NAMES))
    .option('--preset <name>', PRESETS.join('|'), choiceOption('preset', PRESETS), process.env.SGAN_PRESET ?? 'quick')
    .option('--seeds <list>', 'comma-separated seeds (default: the experiment\'s, e.g. 1,2,3 for the ablation)', intListOption('--seeds'))
    .option('--data-dir <dir>', 'dataset folder (MNIST defaults to the 10,000 embedded digits)')
    .option('--shard <i/n>', 'run only cells k with k mod n = i (e.g. one Slurm array task); merge afterwards')
    .option('--dataset <name>', `ablation only: ${EXPERIMENTS.join('|')}`, choiceOption('dataset', EXPERIMENTS), 'mnist')
    .option('--encoder <file.npz>', 'encoder for every cell (default: pre-trained once per experiment and preset)')
    .option('--mean-image <file.npy>', 'mean image for --encoder (CIFAR-10/SVHN)')
    .option('--results <dir>', 'results root', 'results')
    .option('--runs <dir>', 'run folders root (checkpoints)', 'runs')
    .action(async (name: ExperimentId, o: ExperimentOpts) => {
      const backend = await startBackend();
      const spec = experimentSpec(name, o.dataset);
      const summary = await runExperiment(spec, {
        preset: o.preset, seeds: o.seeds, dataDir: o.dataDir, shard: o.shard ? parseShard(o.shard) : undefined,
        resultsRoot: o.results, runsRoot: o.runs, encoderFile: o.encoder, meanImageFile: o.meanImage, backend,
      });
      printJsonLine({ experiment: spec.name, preset: o.preset, dir: summary.dir, done: summary.done, skipped: summary.skipped, missing: summary.missing, table: summary.table !== null });
    });
  cmd
    .command('merge')
    .description('build the table from the cell files of all shards (copied into one results folder)')
    .argument('<name>', EXPERIMENT_NAMES.join('|'), choiceOption('experiment', EXPERIMENT_NAMES))
    .option('--preset <name>', PRESETS.join('|'), choiceOption('preset', PRESETS), 'quick')
    .option('--seeds <list>', 'comma-separated seeds', intListOption('--seeds'))
    .option('--dataset <name>', `ablation only: ${EXPERIMENTS.join('|')}`, choiceOption('dataset', EXPERIMENTS), 'mnist')
    .option('--results <dir>', 'results root', 'results')
    .action(async (name: ExperimentId, o: { preset: PresetName; seeds?: number[]; dataset: ExperimentName; results: string }) => {
      const spec = experimentSpec(name, o.dataset);
      const r = mergeExperiment(spec, { preset: o.preset, seeds: o.seeds, resultsRoot: o.results, backend: 'n/a (merge)' });
      printJsonLine({ experiment: spec.name, preset: o.preset, rows: r.table?.length ?? 0 });
    });
}
