/**
 * `sgan inception-score --probs FILE.npy [--splits 10]`: the Inception-score formula over an [N, K]
 * array of class probabilities saved by numpy (float32/float64). Whether the result may be called an
 * Inception score depends on where the probabilities came from (Inception-v3, or not): this command
 * only applies the formula. Needs no tfjs backend.
 */
import { Command } from 'commander';
import { inceptionScore, DEFAULT_SPLITS } from '../../lib/metrics/inception-score';
import { readNpyFile, toCOrder } from '../../lib/npy';
import { intOption, printJsonLine } from '../common';

/** Read an [N, K] float array in C order; throws naming the file on anything else. */
export function readProbabilities(file: string): { data: Float32Array | Float64Array; shape: number[] } {
  let arr = readNpyFile(file);
  if (!(arr.data instanceof Float32Array || arr.data instanceof Float64Array) || !/f\d$/.test(arr.dtype)) {
    throw new Error(`${file}: dtype ${arr.dtype}, expected float32 or float64 probabilities`);
  }
  if (arr.fortranOrder) arr = toCOrder(arr);
  return { data: arr.data as Float32Array | Float64Array, shape: arr.shape };
}

export function registerInceptionScore(program: Command): void {
  program
    .command('inception-score')
    .description('Inception-score formula (Salimans et al. 2016) over saved class probabilities; prints {"mean","std","n","splits"}')
    .requiredOption('--probs <file>', '.npy of shape [N, K]: each row a probability distribution (softmax output)')
    .option('--splits <n>', 'number of consecutive parts the score is averaged over', intOption('--splits', 1), DEFAULT_SPLITS)
    .action((opts: { probs: string; splits: number }) => {
      const { data, shape } = readProbabilities(opts.probs);
      let s;
      try {
        s = inceptionScore(data, shape, opts.splits);
      } catch (e) {
        throw new Error(`${opts.probs}: ${(e as Error).message}`);
      }
      printJsonLine({ mean: s.mean, std: s.std, n: s.n, splits: s.splits });
    });
}
