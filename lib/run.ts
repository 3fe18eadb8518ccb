/**
 * One SGAN training run end to end: data, encoder (given, reused from the run folder, or pre-trained
 * and saved there), then lib/train.ts. A killed run restarted with resume continues where its last
 * checkpoint left off, encoder included.
 */
import * as fs from 'fs';
import * as path from 'path';
import { loadDataset } from './datasets/dataset';
import { Encoder } from './encoder';
import { Ablation, PresetName, TrainConfig } from './presets';
import { TrainResult, train } from './train';
import { loadEncoder, saveEncoderNpz, trainEncoder } from './train-encoder';

export interface RunOptions {
  cfg: TrainConfig;
  dataDir?: string;
  outDir: string;
  resume: boolean;
  /** An encoder .npz (ours or the authors'); else one is pre-trained into outDir/encoder.npz. */
  encoderFile?: string;
  meanImageFile?: string;
  backend: string;
  progress?: boolean;
  log?: (line: string) => void;
}

/** The conventional run folder: runs/<experiment>-<preset>[-variant]-s<seed>. */
export function defaultRunDir(experiment: string, preset: PresetName, seed: number, a: Ablation = {}): string {
  const tags = [a.baseline ? `dcgan` : null, a.noJoint ? 'nojoint' : null, a.noEntropy ? 'noent' : null, a.noCond ? 'nocond' : null].filter(Boolean);
  return path.join('runs', [experiment, preset, ...tags, `s${seed}`].join('-'));
}

export async function prepareEncoder(o: RunOptions): Promise<{ encoder: Encoder; source: string }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  if (o.encoderFile) return { encoder: loadEncoder(o.encoderFile, o.meanImageFile), source: path.resolve(o.encoderFile) };
  const own = path.join(o.outDir, 'encoder.npz');
  if (fs.existsSync(own)) return { encoder: loadEncoder(own), source: own };
  const data = loadDataset(o.cfg.experiment, { split: 'train', dataDir: o.dataDir });
  log(`pre-training the ${o.cfg.experiment} encoder (${o.cfg.encoderEpochs} epochs) -> ${own}`);
  const encoder = await trainEncoder(
    data,
    { epochs: o.cfg.encoderEpochs, batchSize: 100, lr: 1e-3, seed: o.cfg.seed, flips: o.cfg.experiment === 'cifar10' },
    { progress: o.progress },
  );
  fs.mkdirSync(o.outDir, { recursive: true });
  await saveEncoderNpz(encoder, own);
  // Reload from disk so an uninterrupted run and a resumed one see the very same float32 weights.
  encoder.dispose();
  return { encoder: loadEncoder(own), source: own };
}

export async function runTraining(o: RunOptions): Promise<TrainResult> {
  const data = loadDataset(o.cfg.experiment, { split: 'train', dataDir: o.dataDir });
  const { encoder, source } = await prepareEncoder(o);
  return train({ cfg: o.cfg, data, encoder, encoderSource: source, outDir: o.outDir, resume: o.resume, backend: o.backend, progress: o.progress });
}
