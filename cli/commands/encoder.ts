import { Command, InvalidArgumentError } from 'commander';
import * as path from 'path';
import { DATASET_NAMES, DatasetName, Split, loadDataset } from '../../lib/datasets/dataset';
import { encoderAccuracy, loadEncoder, saveEncoderNpz, trainEncoder } from '../../lib/train-encoder';
import { choiceOption, intOption, printJsonLine, startBackend } from '../common';

export function registerTrainEncoder(program: Command): void {
  program
    .command('train-encoder')
    .description("pre-train the encoder E (a classifier) and save it as .npz in the paper authors' layout")
    .requiredOption('--dataset <name>', DATASET_NAMES.join('|'), choiceOption('dataset', DATASET_NAMES))
    .option('--data-dir <dir>', 'dataset folder (MNIST defaults to the 10,000 embedded digits)')
    .requiredOption('--out <file.npz>', 'where to write the weights')
    .option('--epochs <n>', 'training epochs', intOption('--epochs', 1), 10)
    .option('--batch-size <n>', 'batch size', intOption('--batch-size', 1), 100)
    .option('--seed <n>', 'random seed', intOption('--seed', 0), 1)
    .option('--weight-decay <l2>', 'L2 penalty on the weight matrices (smaller fc3 features)', (v: string) => {
      const x = Number(v);
      if (!(x >= 0 && x < 1)) throw new InvalidArgumentError(`--weight-decay must be in [0, 1), got "${v}"`);
      return x;
    }, 0)
    .action(async (o: { dataset: DatasetName; dataDir?: string; out: string; epochs: number; batchSize: number; seed: number; weightDecay: number }) => {
      const backend = await startBackend();
      const train = loadDataset(o.dataset, { split: 'train', dataDir: o.dataDir });
      const t0 = Date.now();
      const enc = await trainEncoder(train, { epochs: o.epochs, batchSize: o.batchSize, lr: 1e-3, seed: o.seed, flips: o.dataset === 'cifar10', weightDecay: o.weightDecay });
      await saveEncoderNpz(enc, o.out);
      const test = loadDataset(o.dataset, { split: 'test', dataDir: o.dataDir });
      const accuracy = await encoderAccuracy(enc, test);
      printJsonLine({ dataset: o.dataset, out: path.resolve(o.out), epochs: o.epochs, seed: o.seed, weight_decay: o.weightDecay, backend, test_n: test.n, test_accuracy: accuracy, seconds: (Date.now() - t0) / 1000 });
    });
}

export function registerEvalEncoder(program: Command): void {
  program
    .command('eval-encoder')
    .description('classification accuracy of an encoder (.npz, ours or the authors\') on a dataset split')
    .requiredOption('--dataset <name>', DATASET_NAMES.join('|'), choiceOption('dataset', DATASET_NAMES))
    .option('--data-dir <dir>', 'dataset folder (MNIST defaults to the 10,000 embedded digits)')
    .option('--split <split>', 'train|test', choiceOption('split', ['train', 'test'] as const), 'test')
    .requiredOption('--weights <file.npz>', 'encoder weights')
    .option('--mean-image <file.npy>', 'per-pixel mean image (C,H,W) subtracted from pixels/255 (CIFAR-10/SVHN)')
    .action(async (o: { dataset: DatasetName; dataDir?: string; split: Split; weights: string; meanImage?: string }) => {
      const backend = await startBackend();
      const enc = loadEncoder(o.weights, o.meanImage);
      if (enc.cfg.channels === 3 && !enc.meanImage) {
        process.stderr.write(`warning: ${o.weights} has no mean image and none was given (--mean-image); inputs are raw pixels/255\n`);
      }
      const ds = loadDataset(o.dataset, { split: o.split, dataDir: o.dataDir });
      if (ds.height !== enc.cfg.size || ds.channels !== enc.cfg.channels) {
        throw new Error(`${o.weights}: encoder takes ${enc.cfg.size}x${enc.cfg.size}x${enc.cfg.channels} images, ${o.dataset} has ${ds.height}x${ds.width}x${ds.channels}`);
      }
      const accuracy = await encoderAccuracy(enc, ds);
      printJsonLine({ dataset: o.dataset, split: o.split, n: ds.n, accuracy, weights: o.weights, mean_image: o.meanImage ?? null, source: ds.source, backend });
    });
}
