/**
 * `sgan evaluate --checkpoint DIR ...`: class consistency, classifier score, Inception score (with an
 * Inception-v3 model), FID, per-level diversity and the real data's own scores (lib/evaluate.ts).
 * Prints the metrics as the last stdout line; --out also writes them to a JSON file.
 */
import { Command, InvalidArgumentError } from 'commander';
import { CLASSIFIER_CHOICES, ClassifierChoice, evaluateCheckpoint } from '../../lib/evaluate';
import { INPUT_RANGES, InputRange, OutputKind } from '../../lib/metrics/classifier';
import { DEFAULT_DUPLICATE_THRESHOLD } from '../../lib/metrics/diversity';
import { DEFAULT_SPLITS } from '../../lib/metrics/inception-score';
import { Split } from '../../lib/datasets/dataset';
import { choiceOption, intOption, printJsonLine, startBackend } from '../common';

interface EvaluateCliOptions {
  checkpoint: string;
  n: number;
  seed: number;
  batchSize: number;
  splits: number;
  encoder?: string;
  meanImage?: string;
  classifier?: ClassifierChoice;
  inceptionModel?: string;
  inceptionRange: InputRange;
  inceptionClassNode?: string;
  inceptionPoolNode?: string;
  inceptionOutput: OutputKind;
  inceptionBatch: number;
  fidReference: Split;
  dataDir?: string;
  diversitySamples: number;
  duplicateThreshold: number;
  neighbours?: string;
  out?: string;
}

function positiveNumber(name: string) {
  return (v: string): number => {
    const x = Number(v);
    if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got "${v}"`);
    return x;
  };
}

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description('judge a checkpoint: class consistency, classifier/Inception score, FID, per-level diversity, real-data reference scores')
    .requiredOption('--checkpoint <dir>', 'run folder or checkpoint.bin')
    .option('--n <n>', 'samples to generate (Inception-score convention: 50000)', intOption('--n', 2), 50000)
    .option('--seed <n>', 'noise seed', intOption('--seed', 0), 1)
    .option('--batch-size <n>', 'samples generated and judged at a time', intOption('--batch-size', 1), 100)
    .option('--splits <n>', 'parts the score is averaged over', intOption('--splits', 1), DEFAULT_SPLITS)
    .option('--encoder <file.npz>', "judge encoder in the authors' layout (default: the checkpoint's own)")
    .option('--mean-image <file.npy>', '(C,H,W) mean image for --encoder')
    .option('--classifier <kind>', `${CLASSIFIER_CHOICES.join('|')} (default: inception when --inception-model is given)`, choiceOption('--classifier', CLASSIFIER_CHOICES))
    .option('--inception-model <dir>', 'converted Inception-v3 tfjs graph model (model.json + shards; see docs/inception.md)')
    .option('--inception-range <range>', `pixel range the model expects: ${INPUT_RANGES.join(' | ')}`, choiceOption('--inception-range', INPUT_RANGES), '-1,1')
    .option('--inception-class-node <name>', 'graph node with the class scores (default: the model output)')
    .option('--inception-pool-node <name>', 'graph node with the 2048-d pool features for FID (default: a 2048-wide model output)')
    .option('--inception-output <kind>', 'auto | probabilities | logits', choiceOption('--inception-output', ['auto', 'probabilities', 'logits'] as const), 'auto')
    .option('--inception-batch <n>', 'images per Inception forward pass', intOption('--inception-batch', 1), 25)
    .option('--fid-reference <split>', 'real split FID compares with: train | test', choiceOption('--fid-reference', ['train', 'test'] as const), 'train')
    .option('--data-dir <dir>', 'dataset folder (MNIST: default the embedded digits)')
    .option('--diversity-samples <n>', 'samples per condition for the diversity metrics', intOption('--diversity-samples', 2), 20)
    .option('--duplicate-threshold <x>', 'RMS pixel distance below which two samples are near-duplicates', positiveNumber('--duplicate-threshold'), DEFAULT_DUPLICATE_THRESHOLD)
    .option('--neighbours <file.png>', 'also write nearest-training-image grid (one sample per class, 5 neighbours)')
    .option('--out <file.json>', 'write the metrics here (atomically)')
    .action(async (o: EvaluateCliOptions) => {
      await startBackend();
      const metrics = await evaluateCheckpoint({
        checkpoint: o.checkpoint,
        n: o.n,
        seed: o.seed,
        batchSize: o.batchSize,
        splits: o.splits,
        encoder: o.encoder,
        meanImage: o.meanImage,
        classifier: o.classifier,
        inception: o.inceptionModel
          ? {
              modelDir: o.inceptionModel,
              inputRange: o.inceptionRange,
              classNode: o.inceptionClassNode,
              poolNode: o.inceptionPoolNode,
              outputKind: o.inceptionOutput,
              batchSize: o.inceptionBatch,
            }
          : undefined,
        fidReference: o.fidReference,
        dataDir: o.dataDir,
        diversity: { samples: o.diversitySamples, threshold: o.duplicateThreshold },
        neighboursPng: o.neighbours,
        out: o.out,
      });
      printJsonLine(metrics);
    });
}
