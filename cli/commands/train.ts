import { Command, InvalidArgumentError } from 'commander';
import { EXPERIMENTS, ExperimentName, PRESETS, PresetName, applyAblation, presetConfig } from '../../lib/presets';
import { defaultRunDir, runTraining } from '../../lib/run';
import { choiceOption, intOption, printJsonLine, startBackend } from '../common';

interface TrainOpts {
  experiment: ExperimentName;
  preset: PresetName;
  seed: number;
  dataDir?: string;
  out?: string;
  resume?: boolean;
  entropy: boolean;
  cond: boolean;
  joint: boolean;
  baseline?: 'dcgan';
  encoder?: string;
  meanImage?: string;
  lr?: number;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train an SGAN (or the single-GAN baseline) with checkpoints; --resume continues a killed run')
    .requiredOption('--experiment <name>', EXPERIMENTS.join('|'), choiceOption('experiment', EXPERIMENTS))
    .option('--preset <name>', PRESETS.join('|'), choiceOption('preset', PRESETS), 'quick')
    .option('--seed <n>', 'random seed (fixes the run bit for bit on a given backend)', intOption('--seed', 0), 1)
    .option('--data-dir <dir>', 'dataset folder (MNIST defaults to the 10,000 embedded digits)')
    .option('--out <dir>', 'run folder (default runs/<experiment>-<preset>[-variant]-s<seed>)')
    .option('--resume', 'continue from the checkpoint in --out')
    .option('--no-entropy', 'ablation: drop the entropy loss (and the Q heads)')
    .option('--no-cond', 'ablation: drop the conditional loss')
    .option('--no-joint', 'ablation: independent training only')
    .option('--baseline <kind>', 'dcgan: one GAN with G0\'s architecture conditioned on labels', choiceOption('baseline', ['dcgan'] as const))
    .option('--encoder <file.npz>', 'use this encoder (ours or the authors\') instead of pre-training one')
    .option('--mean-image <file.npy>', 'mean image for --encoder (CIFAR-10/SVHN)')
    .option('--lr <rate>', 'Adam learning rate for G and D (default: the preset\'s)', (v: string) => {
      const x = Number(v);
      if (!(x > 0 && x < 1)) throw new InvalidArgumentError(`--lr must be in (0, 1), got "${v}"`);
      return x;
    })
    .action(async (o: TrainOpts) => {
      const backend = await startBackend();
      const ablation = { noEntropy: !o.entropy, noCond: !o.cond, noJoint: !o.joint, baseline: o.baseline ?? null };
      const cfg = applyAblation(presetConfig(o.experiment, o.preset, o.seed), ablation);
      if (o.lr !== undefined) cfg.adam = { ...cfg.adam, lr: o.lr };
      const outDir = o.out ?? defaultRunDir(o.experiment, o.preset, o.seed, ablation);
      const r = await runTraining({ cfg, dataDir: o.dataDir, outDir, resume: !!o.resume, encoderFile: o.encoder, meanImageFile: o.meanImage, backend });
      const last = r.meta.history[r.meta.history.length - 1];
      printJsonLine({ checkpoint: r.checkpoint, steps: r.meta.step, backend, train_seconds: r.meta.trainSeconds, losses: last?.losses ?? null });
    });
}
