/**
 * Does the entropy loss make G0 use z0, and what stops it? A diagnostic for the paper's claim that
 * without the entropy loss "G0 ignores z0".
 *
 * Trains the bottom stack alone, as in the independent stage (G0 conditioned on the real fc3 of
 * training images, D0 with its Q head), once per loss weighting, from the same initial weights and
 * batches, and reports:
 *   q0_loss_start / q0_loss_end  Q0's noise-reconstruction error mean((Q0(x) - z0)^2) over the first /
 *                                last `window` steps. Chance is 1/12 (z ~ U[0,1] predicted as 0.5):
 *                                a value there means x carries no recoverable trace of z0.
 *                                null when the weighting has no entropy term (Q0 is then not trained).
 *   level0_diversity             pixel std across z0 with fc3 fixed (one real image per class),
 *                                batch norm on its running averages, as the level-0 grids are drawn.
 * The interesting contrast is between the paper's weighting and the same run with one of the other
 * losses switched off: which losses keep Q0 at chance for a whole CPU-scale run.
 */
import * as tf from '@tensorflow/tfjs';
import { ImageDataset, epochPermutation, imageBatch, labelBatch } from './datasets/dataset';
import { Encoder } from './encoder';
import { meanStdAcrossSamples } from './metrics/diversity';
import { LossWeights, PAPER_WEIGHTS, TrainConfig } from './presets';
import { NUM_CLASSES, SGAN, modelConfig } from './sgan';
import { createTrainer, trainStep } from './train';

export interface ProbeVariant {
  id: string;
  label: string;
  weights: LossWeights;
  /** Train with the entropy loss alone for the probe's `warmupSteps` first (TrainConfig.entropyWarmupSteps). */
  warmup?: boolean;
}

/** The paper's weights with some losses switched off. */
const without = (...off: Array<keyof LossWeights>): LossWeights => {
  const w = { ...PAPER_WEIGHTS };
  for (const k of off) w[k] = 0;
  return w;
};

export const ENTROPY_PROBE_VARIANTS: readonly ProbeVariant[] = [
  { id: 'paper', label: 'adv + cond + ent (paper)', weights: without() },
  { id: 'no-entropy', label: 'adv + cond', weights: without('ent') },
  { id: 'adv-ent', label: 'adv + ent', weights: without('cond') },
  { id: 'cond-ent', label: 'cond + ent', weights: without('adv') },
  { id: 'ent-only', label: 'ent only', weights: without('adv', 'cond') },
  { id: 'warmup', label: 'ent only, then adv + cond + ent', weights: without(), warmup: true },
];

/** Q0's error when it has learned nothing: E[(z - 1/2)^2] for z ~ U[0,1]. */
export const Q0_CHANCE = 1 / 12;

export interface ProbeResult {
  id: string;
  label: string;
  weights: LossWeights;
  /** Steps of entropy-only training at the start (0: none). */
  warmup_steps: number;
  steps: number;
  window: number;
  q0_loss_start: number | null;
  q0_loss_end: number | null;
  /** Q0's mean error over each successive window of steps (empty without the entropy loss). */
  q0_loss_by_window: number[];
  q0_chance: number;
  level0_diversity: number;
  seconds: number;
}

/** The first training image of each class, in class order (throws if a class is missing). */
export function firstOfEachClass(ds: ImageDataset): number[] {
  const out: number[] = [];
  for (let c = 0; c < NUM_CLASSES; c++) {
    const i = ds.labels.indexOf(c);
    if (i < 0) throw new Error(`dataset ${ds.name}: no image of class ${c}`);
    out.push(i);
  }
  return out;
}

/** Pixel std across `samples` draws of z0 for each class's fixed fc3, averaged over classes. */
export async function bottomLevelDiversity(m: SGAN, fc3: tf.Tensor2D, samples: number, seed: number): Promise<number> {
  let sum = 0;
  for (let c = 0; c < fc3.shape[0]; c++) {
    const s = tf.tidy(() => {
      const cond = tf.tile(tf.slice(fc3, [c, 0], [1, -1]), [samples, 1]) as tf.Tensor2D;
      const z = tf.randomUniform([samples, m.cfg.stacks[0].zDim], 0, 1, 'float32', seed + c) as tf.Tensor2D;
      return meanStdAcrossSamples(m.G[0].apply(z, cond, { training: false }));
    });
    sum += (await s.data())[0];
    s.dispose();
  }
  return sum / fc3.shape[0];
}

/**
 * Train the bottom stack alone for `steps` batches under one loss weighting. `base` supplies the
 * batch size, Adam settings and seed (a preset's); its weights and stages are ignored.
 */
export async function probeBottomStack(
  data: ImageDataset,
  encoder: Encoder,
  variant: ProbeVariant,
  base: TrainConfig,
  opts: { steps: number; warmupSteps?: number; window?: number; samples?: number; onStep?: (done: number) => void },
): Promise<ProbeResult> {
  const started = Date.now();
  const warmup = variant.warmup ? opts.warmupSteps ?? 0 : 0;
  if (variant.warmup && !(warmup > 0 && warmup < opts.steps)) {
    throw new Error(`probe ${variant.id}: warm-up steps must be between 1 and steps - 1 (${opts.steps - 1}), found ${opts.warmupSteps}`);
  }
  const cfg: TrainConfig = { ...base, weights: { ...variant.weights }, entropyWarmupSteps: warmup };
  // The paper's model with its bottom stack only: G0 (z0, fc3) -> x, D0/Q0.
  const paper = modelConfig(cfg.experiment === 'mnist' ? 'mnist' : 'cifar', null);
  const t = createTrainer(cfg, encoder, { ...paper, stacks: [paper.stacks[0]] });
  const m = t.model;
  const window = Math.max(1, Math.min(opts.window ?? 50, Math.floor(opts.steps / 2)));
  const perEpoch = Math.floor(data.n / cfg.batchSize);
  if (perEpoch < 1) throw new Error(`probe: batch size ${cfg.batchSize} is larger than the dataset (${data.n} images)`);
  const q0: number[] = [];
  // Losses stay on the device and are read back once per `window` steps, not once per step.
  let pending: tf.Tensor1D[] = [];
  const readBack = async (lastStep: number) => {
    const stacked = tf.stack(pending);
    const v = (await stacked.data()) as Float32Array;
    tf.dispose([stacked, ...pending]);
    if (!v.every(Number.isFinite)) throw new Error(`probe ${variant.id}: a loss is not finite by step ${lastStep}`);
    // Each row: D0, G0.adv, G0.cond, G0.ent (see lossNames).
    for (let r = 0; r < pending.length; r++) q0.push(v[r * 4 + 3]);
    pending = [];
  };
  let perm: Uint32Array | null = null;
  for (let step = 0; step < opts.steps; step++) {
    const epoch = Math.floor(step / perEpoch);
    const b = step % perEpoch;
    if (b === 0 || perm === null) perm = epochPermutation(data.n, cfg.seed, epoch);
    const idx = perm.subarray(b * cfg.batchSize, (b + 1) * cfg.batchSize);
    const x = imageBatch(data, idx);
    const y = labelBatch(data, idx);
    pending.push(trainStep(t, 'independent', x, y, step));
    tf.dispose([x, y]);
    if (pending.length === window || step + 1 === opts.steps) await readBack(step + 1);
    opts.onStep?.(step + 1);
  }
  const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
  const trained = cfg.weights.ent > 0;
  const fc3 = tf.tidy(() => encoder.features(imageBatch(data, firstOfEachClass(data))));
  const div = await bottomLevelDiversity(m, fc3, opts.samples ?? 20, cfg.seed);
  fc3.dispose();
  m.dispose();
  t.gOpt.dispose();
  t.dOpt.dispose();
  return {
    id: variant.id,
    label: warmup ? `ent only for ${warmup} steps, then adv + cond + ent` : variant.label,
    weights: cfg.weights,
    warmup_steps: warmup,
    steps: opts.steps,
    window,
    q0_loss_start: trained ? mean(q0.slice(0, window)) : null,
    q0_loss_end: trained ? mean(q0.slice(-window)) : null,
    q0_loss_by_window: trained ? Array.from({ length: Math.ceil(q0.length / window) }, (_, k) => mean(q0.slice(k * window, (k + 1) * window))) : [],
    q0_chance: Q0_CHANCE,
    level0_diversity: div,
    seconds: (Date.now() - started) / 1000,
  };
}

/** Markdown table of probe results, in the order given. */
export function probeTable(rows: ProbeResult[]): string {
  const f = (v: number | null, d: number) => (v === null ? 'n/a (Q0 untrained)' : v.toFixed(d));
  const lines = [
    `| G0's loss | steps | Q0 error, first ${rows[0]?.window ?? 0} steps | Q0 error, last ${rows[0]?.window ?? 0} steps | level-0 diversity |`,
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.label} | ${r.steps} | ${f(r.q0_loss_start, 4)} | ${f(r.q0_loss_end, 4)} | ${r.level0_diversity.toFixed(4)} |`),
  ];
  return lines.join('\n') + '\n';
}
