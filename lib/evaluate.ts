/**
 * Evaluation of a trained checkpoint, as the paper judges samples plus FID:
 *   class_consistency   fraction of samples the judge encoder classifies as their conditioning label;
 *   classifier_score    the Inception-score formula over the judge encoder's probabilities (named so
 *                       because it is not Inception-v3's);
 *   inception_score     the same formula over Inception-v3's probabilities, only with --inception-model;
 *   fid                 Fréchet distance to the real --fid-reference split, on Inception pool features
 *                       when the Inception model gives them, else on encoder fc3 (`fid_features` says
 *                       which; an encoder-fc3 FID is not comparable with published FIDs);
 *   diversity           per-level spread and the near-duplicate fraction (lib/metrics/diversity.ts);
 *   real_*              the same judges on the real test split, as the paper reports real-data scores.
 *
 * Streaming: samples are generated a batch at a time (labels cycling 0..9, noise seeded per batch
 * from --seed), judged, and dropped; what is kept is per-split score sums (splits x K), the running
 * Gaussian of the features (D x D) and a hit count. 50,000 CIFAR-10 samples through Inception never
 * sit in memory together.
 */
import * as tf from '@tensorflow/tfjs';
import { writeJsonAtomic } from './atomic';
import { activeBackend } from './backend';
import { ImageDataset, Split, imageBatch, loadDataset } from './datasets/dataset';
import { Encoder } from './encoder';
import { Classifier, InceptionOptions, encoderClassifier, loadInceptionClassifier } from './metrics/classifier';
import { DiversityMetrics, DiversityOptions, diversity, duplicateFraction } from './metrics/diversity';
import { Gaussian, GaussianStats, frechetDistance } from './metrics/fid';
import { DEFAULT_SPLITS, ScoreAccumulator, ScoreSummary } from './metrics/inception-score';
import { writeNeighbourGrid } from './metrics/neighbours';
import { createProgress } from './progress';
import { Provenance, provenance } from './provenance';
import { NUM_CLASSES, SGAN } from './sgan';
import { deriveSeed } from './seed';
import { loadModel } from './train';
import { loadEncoder } from './train-encoder';

export type ClassifierChoice = 'encoder' | 'inception';
export const CLASSIFIER_CHOICES: readonly ClassifierChoice[] = ['encoder', 'inception'];

export interface EvaluateOptions {
  checkpoint: string;
  /** Generated samples (the Inception-score convention is 50,000). */
  n?: number;
  seed?: number;
  batchSize?: number;
  splits?: number;
  /** Judge encoder .npz (authors' layout) instead of the checkpoint's own. */
  encoder?: string;
  meanImage?: string;
  classifier?: ClassifierChoice;
  /** Inception-v3 graph model folder and how to read it (docs/inception.md). */
  inception?: InceptionOptions;
  fidReference?: Split;
  dataDir?: string;
  diversity?: DiversityOptions;
  /** Write a nearest-training-neighbour grid (one sample per class, k = 5, pixel L2) here. */
  neighboursPng?: string;
  out?: string;
  progress?: boolean;
}

export interface Score {
  mean: number;
  std: number;
}

export interface Metrics extends DiversityMetrics {
  experiment: string;
  checkpoint: string;
  step: number;
  n: number;
  seed: number;
  splits: number;
  judge: string;
  classifier: ClassifierChoice;
  class_consistency: number;
  classifier_score: Score;
  classifier_score_mean: number;
  inception_score: Score | null;
  inception_score_mean: number | null;
  fid: number;
  fid_features: string;
  fid_reference: Split;
  fid_reference_n: number;
  real_n: number;
  real_class_consistency: number;
  real_classifier_score: Score;
  real_classifier_score_mean: number;
  real_inception_score: Score | null;
  real_inception_score_mean: number | null;
  /** Duplicate fraction of real test images (20 per class), the floor a generator is compared with. */
  real_duplicate_fraction: number;
  neighbours_png: string | null;
  seconds: number;
  peak_rss_mb: number;
  provenance: Provenance;
}

// ---------------------------------------------------------------------------------------------
// Judging a stream of images.

/** What is kept while images stream past: score sums, a hit count, the feature Gaussian. */
export class Judgement {
  private readonly classifierScore: ScoreAccumulator;
  private readonly inceptionScore: ScoreAccumulator | null;
  private readonly features: GaussianStats | null;
  private hits = 0;
  private seen = 0;

  constructor(
    readonly n: number,
    readonly splits: number,
    private readonly encoder: Classifier,
    private readonly inception: Classifier | null,
    /** Which judge's features feed FID; null: no features wanted. */
    private readonly fidFrom: 'encoder' | 'inception' | null,
    featureDim: number,
    classes: number,
    inceptionClasses: number,
  ) {
    this.classifierScore = new ScoreAccumulator(n, classes, splits);
    this.inceptionScore = inception ? new ScoreAccumulator(n, inceptionClasses, splits) : null;
    this.features = fidFrom ? new GaussianStats(featureDim) : null;
  }

  /** Judge a batch of images in [0,1] with their (conditioning or true) labels; disposes nothing of the caller's. */
  async add(x01: tf.Tensor4D, labels: ArrayLike<number>): Promise<void> {
    const enc = this.encoder.classify(x01);
    const probs = (await enc.probs.data()) as Float32Array;
    const k = enc.probs.shape[1];
    for (let i = 0; i < labels.length; i++) if (argmax(probs, i * k, k) === labels[i]) this.hits++;
    this.classifierScore.add(probs);
    if (this.fidFrom === 'encoder') this.features!.add(await enc.features!.data());
    tf.dispose([enc.probs, ...(enc.features ? [enc.features] : [])]);
    if (this.inception) {
      const inc = this.inception.classify(x01);
      this.inceptionScore!.add((await inc.probs.data()) as Float32Array);
      if (this.fidFrom === 'inception') this.features!.add(await inc.features!.data());
      tf.dispose([inc.probs, ...(inc.features ? [inc.features] : [])]);
    }
    this.seen += labels.length;
  }

  result(): { classConsistency: number; classifierScore: ScoreSummary; inceptionScore: ScoreSummary | null; gaussian: Gaussian | null } {
    return {
      classConsistency: this.hits / this.seen,
      classifierScore: this.classifierScore.result(),
      inceptionScore: this.inceptionScore?.result() ?? null,
      gaussian: this.features?.gaussian() ?? null,
    };
  }
}

function argmax(a: ArrayLike<number>, offset: number, k: number): number {
  let best = 0;
  for (let c = 1; c < k; c++) if (a[offset + c] > a[offset + best]) best = c;
  return best;
}

/** Labels 0..9 cycling from global sample index `start`, so every class gets n/10 samples. */
export function balancedLabels(start: number, count: number): Int32Array {
  return Int32Array.from({ length: count }, (_, i) => (start + i) % NUM_CLASSES);
}

export interface Judges {
  encoder: Classifier;
  inception: Classifier | null;
  fidFrom: 'encoder' | 'inception';
  featureDim: number;
  inceptionClasses: number;
}

function newJudgement(j: Judges, n: number, splits: number, withFeatures: boolean): Judgement {
  return new Judgement(n, splits, j.encoder, j.inception, withFeatures ? j.fidFrom : null, j.featureDim, NUM_CLASSES, j.inceptionClasses);
}

/** Judge a whole real split in batches. */
export async function judgeDataset(ds: ImageDataset, j: Judges, splits: number, batchSize: number, progress: boolean): Promise<ReturnType<Judgement['result']>> {
  const judgement = newJudgement(j, ds.n, Math.min(splits, ds.n), true);
  const bar = progress ? createProgress(`judge ${ds.name} ${ds.split}`, ds.n) : null;
  for (let start = 0; start < ds.n; start += batchSize) {
    const idx = Uint32Array.from({ length: Math.min(batchSize, ds.n - start) }, (_, i) => start + i);
    const x = imageBatch(ds, idx);
    await judgement.add(x, ds.labels.subarray(start, start + idx.length));
    x.dispose();
    bar?.update(start + idx.length);
  }
  bar?.stop();
  return judgement.result();
}

/** Generate n samples batch by batch and judge them; nothing but the judgement is kept. */
export async function judgeSamples(
  model: SGAN,
  j: Judges,
  opts: { n: number; seed: number; batchSize: number; splits: number; progress: boolean },
): Promise<ReturnType<Judgement['result']>> {
  const judgement = newJudgement(j, opts.n, opts.splits, true);
  const bar = opts.progress ? createProgress('evaluate samples', opts.n) : null;
  for (let start = 0, b = 0; start < opts.n; start += opts.batchSize, b++) {
    const count = Math.min(opts.batchSize, opts.n - start);
    const labelsArr = balancedLabels(start, count);
    const labels = tf.tensor1d(labelsArr, 'int32');
    const z = model.noise(count, deriveSeed(opts.seed, 'evaluate', b), 'evaluate');
    const outs = model.generate(labels, z);
    await judgement.add(outs[0] as tf.Tensor4D, labelsArr);
    tf.dispose([labels, ...z, ...outs]);
    bar?.update(start + count);
  }
  bar?.stop();
  return judgement.result();
}

/** Duplicate fraction of the first `per` real images of each class. */
export async function realDuplicateFraction(ds: ImageDataset, per = 20, threshold?: number): Promise<number> {
  let sum = 0;
  let classes = 0;
  for (let c = 0; c < NUM_CLASSES; c++) {
    const idx: number[] = [];
    for (let i = 0; i < ds.n && idx.length < per; i++) if (ds.labels[i] === c) idx.push(i);
    if (idx.length < 2) continue;
    const x = imageBatch(ds, idx);
    sum += await duplicateFraction(x, threshold);
    x.dispose();
    classes++;
  }
  return sum / classes;
}

/** One sample per class (seeded), for the neighbour grid. */
function onePerClass(model: SGAN, seed: number): tf.Tensor4D {
  const labels = tf.tensor1d(balancedLabels(0, NUM_CLASSES), 'int32');
  const z = model.noise(NUM_CLASSES, deriveSeed(seed, 'neighbours'), 'neighbours');
  const outs = model.generate(labels, z);
  tf.dispose([labels, ...z, ...outs.slice(1)]);
  return outs[0] as tf.Tensor4D;
}

function backendName(): string {
  try {
    return activeBackend();
  } catch {
    return tf.getBackend();
  }
}

function judgeEncoder(opts: EvaluateOptions, model: SGAN, source: string): { enc: Encoder; judge: string; owned: boolean } {
  if (opts.encoder) return { enc: loadEncoder(opts.encoder, opts.meanImage), judge: `encoder ${opts.encoder}`, owned: true };
  if (opts.meanImage) throw new Error(`--mean-image goes with --encoder; the checkpoint's encoder carries its own mean image`);
  return { enc: model.encoder, judge: `checkpoint encoder (${source})`, owned: false };
}

async function buildJudges(opts: EvaluateOptions, enc: Encoder, judgeName: string): Promise<Judges> {
  const choice = opts.classifier ?? (opts.inception ? 'inception' : 'encoder');
  if (choice === 'inception' && !opts.inception) {
    throw new Error(`--classifier inception needs --inception-model DIR (a converted Inception-v3; see docs/inception.md)`);
  }
  const inception = choice === 'inception' ? await loadInceptionClassifier(opts.inception!) : null;
  let inceptionClasses = 0;
  let featureDim = enc.cfg.fc3;
  if (inception) {
    // One probe image tells the class count and the feature width.
    const probe = tf.zeros([1, enc.cfg.size, enc.cfg.size, enc.cfg.channels]) as tf.Tensor4D;
    const out = inception.classify(probe);
    inceptionClasses = out.probs.shape[1];
    if (out.features) featureDim = out.features.shape[1];
    tf.dispose([probe, out.probs, ...(out.features ? [out.features] : [])]);
  }
  return {
    encoder: encoderClassifier(enc, judgeName),
    inception,
    fidFrom: inception?.featureName ? 'inception' : 'encoder',
    featureDim,
    inceptionClasses,
  };
}

function score(s: ScoreSummary): Score {
  return { mean: s.mean, std: s.std };
}

export function peakRssMb(): number {
  // maxRSS is in kilobytes.
  return process.resourceUsage().maxRSS / 1024;
}

/** Evaluate a checkpoint; writes metrics.json atomically when opts.out is given. */
export async function evaluateCheckpoint(opts: EvaluateOptions): Promise<Metrics> {
  const started = Date.now();
  const n = opts.n ?? 50000;
  const seed = opts.seed ?? 1;
  const batchSize = opts.batchSize ?? 100;
  const splits = opts.splits ?? DEFAULT_SPLITS;
  const progress = opts.progress ?? true;
  const fidReference = opts.fidReference ?? 'train';
  const { model, meta, file } = loadModel(opts.checkpoint);
  const { enc, judge, owned } = judgeEncoder(opts, model, meta.encoder.source);
  let judges: Judges | null = null;
  try {
    judges = await buildJudges(opts, enc, judge);
    const experiment = meta.config.experiment;
    const test = loadDataset(experiment, { split: 'test', dataDir: opts.dataDir });
    if (test.height !== enc.cfg.size || test.channels !== enc.cfg.channels) {
      throw new Error(`judge encoder expects ${enc.cfg.size}x${enc.cfg.size}x${enc.cfg.channels} images, ${experiment} has ${test.height}x${test.width}x${test.channels}`);
    }
    const real = await judgeDataset(test, judges, splits, batchSize, progress);
    const realDup = await realDuplicateFraction(test, 20, opts.diversity?.threshold);
    const reference = fidReference === 'test' ? real : await judgeDataset(loadDataset(experiment, { split: 'train', dataDir: opts.dataDir }), judges, splits, batchSize, progress);
    const gen = await judgeSamples(model, judges, { n, seed, batchSize, splits, progress });
    const div = await diversity(model, { seed, ...opts.diversity });
    let neighboursPng: string | null = null;
    if (opts.neighboursPng) {
      const samples = onePerClass(model, seed);
      await writeNeighbourGrid(opts.neighboursPng, samples, loadDataset(experiment, { split: 'train', dataDir: opts.dataDir }), { k: 5, space: 'pixel' });
      samples.dispose();
      neighboursPng = opts.neighboursPng;
    }
    const metrics: Metrics = {
      experiment,
      checkpoint: file,
      step: meta.step,
      n,
      seed,
      splits,
      judge,
      classifier: judges.inception ? 'inception' : 'encoder',
      class_consistency: gen.classConsistency,
      classifier_score: score(gen.classifierScore),
      classifier_score_mean: gen.classifierScore.mean,
      inception_score: gen.inceptionScore ? score(gen.inceptionScore) : null,
      inception_score_mean: gen.inceptionScore?.mean ?? null,
      fid: frechetDistance(gen.gaussian!, reference.gaussian!),
      fid_features: judges.fidFrom === 'inception' ? judges.inception!.featureName! : judges.encoder.featureName!,
      fid_reference: fidReference,
      fid_reference_n: reference.gaussian!.n,
      real_n: test.n,
      real_class_consistency: real.classConsistency,
      real_classifier_score: score(real.classifierScore),
      real_classifier_score_mean: real.classifierScore.mean,
      real_inception_score: real.inceptionScore ? score(real.inceptionScore) : null,
      real_inception_score_mean: real.inceptionScore?.mean ?? null,
      real_duplicate_fraction: realDup,
      ...div,
      neighbours_png: neighboursPng,
      seconds: (Date.now() - started) / 1000,
      peak_rss_mb: peakRssMb(),
      provenance: provenance({ seed, backend: backendName(), preset: meta.config.preset, scale: meta.config.scale }),
    };
    if (opts.out) writeJsonAtomic(opts.out, metrics);
    return metrics;
  } finally {
    judges?.inception?.dispose();
    if (owned) enc.dispose();
    model.dispose();
    model.encoder.dispose();
  }
}
