/**
 * SGAN training, top to bottom. Each iteration takes one batch and makes one discriminator update
 * (all D_i with their Q heads) and then one generator update (all G_i), with Adam(lr 1e-4, beta1 0.5).
 *
 *  independent stage: G_i is conditioned on the encoder's real h_{i+1} (labels for the top stack);
 *  joint stage:       G_i is conditioned on G_{i+1}'s output, and the gradient of loss_i flows into
 *                     G_{i+1} scaled by 0.01, so G_{i+1} minimises loss_{i+1} + 0.01 * loss_i.
 *
 * Per stack: L_D = adv_D + 10 * ent;  L_G = adv_G + 1 * cond + 10 * ent (weights from the config).
 * Losses stay on the device and are read back every `logEvery` steps (no sync per step); a NaN or
 * Inf stops the run naming the loss and step before a checkpoint with it could be written.
 */
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { Adam, namedGrads } from './adam';
import { LoadedCheckpoint, loadCheckpoint, prefixVars, restoreVariables, saveCheckpoint, checkpointPath } from './checkpoint';
import { ImageDataset, epochPermutation, imageBatch, labelBatch } from './datasets/dataset';
import { Encoder, EncoderConfig } from './encoder';
import { Mode } from './layers';
import {
  discriminatorAdversarialLoss,
  entropyLoss,
  featureConditionalLoss,
  generatorAdversarialLoss,
  labelConditionalLoss,
} from './losses';
import { Repr } from './models/types';
import { StageKind, TrainConfig, lossWeightsAt } from './presets';
import { createProgress, Progress } from './progress';
import { ModelConfig, NUM_CLASSES, SGAN, modelConfig } from './sgan';
import { SeedStream, deriveSeed } from './seed';
import { writeJsonAtomic } from './atomic';

export interface HistoryEntry {
  step: number;
  /** Mean of each loss over the steps since the previous entry. */
  losses: Record<string, number>;
  seconds: number;
}

/** What a checkpoint's header carries besides the tensors. */
export interface RunMeta {
  step: number;
  totalSteps: number;
  config: TrainConfig;
  model: ModelConfig;
  encoder: { config: EncoderConfig; source: string };
  backend: string;
  /** All randomness derives from (config.seed, step): see lib/seed.ts. */
  rng: { seed: number; step: number };
  history: HistoryEntry[];
  trainSeconds: number;
  adamSteps: { G: number; D: number };
}

export class TrainingDiverged extends Error {}

// ---------------------------------------------------------------------------------------------
// Schedule: which stage, epoch and batch a global step falls in.

export function stepsPerEpoch(cfg: TrainConfig, n: number): number {
  const full = Math.floor(n / cfg.batchSize);
  if (full < 1) throw new Error(`dataset has ${n} images, fewer than one batch of ${cfg.batchSize}`);
  return cfg.batchesPerEpoch === null ? full : Math.min(full, cfg.batchesPerEpoch);
}

export function totalSteps(cfg: TrainConfig, n: number): number {
  return cfg.stages.reduce((s, st) => s + st.epochs, 0) * stepsPerEpoch(cfg, n);
}

export interface Position {
  stage: StageKind;
  /** Epoch counted over the whole run (selects the data order). */
  epoch: number;
  batch: number;
}

export function locate(cfg: TrainConfig, n: number, step: number): Position {
  const spe = stepsPerEpoch(cfg, n);
  const epoch = Math.floor(step / spe);
  let e = epoch;
  for (const st of cfg.stages) {
    if (e < st.epochs) return { stage: st.kind, epoch, batch: step % spe };
    e -= st.epochs;
  }
  throw new Error(`step ${step} is past the end of the schedule`);
}

// ---------------------------------------------------------------------------------------------
// One iteration.

/** Identity forward, gradient scaled by s backward: how loss_i reaches G_{i+1} at weight 0.01. */
function scaleGradient(x: tf.Tensor, s: number): tf.Tensor {
  const scaled = (a: tf.Tensor, save: tf.GradSaveFunc) => {
    save([]);
    return { value: tf.clone(a), gradFunc: (dy: tf.Tensor) => tf.mul(dy, s) };
  };
  const f = tf.customGrad(scaled as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(x) as tf.Tensor;
}

/** Real representations of a batch as D and E see them. */
interface RealBatch {
  h: Record<Repr, tf.Tensor>;
  labels: tf.Tensor1D;
}

function realBatch(m: SGAN, x01: tf.Tensor4D, labels: tf.Tensor1D): RealBatch {
  const x = m.encoder.preprocess(x01);
  return { h: { x, fc3: m.encoder.featuresOfPreprocessed(x), y: tf.oneHot(labels, NUM_CLASSES).toFloat() }, labels };
}

/**
 * Generate every level for training. Returns each G_i's output (raw, e.g. pixels in [0,1]) and the
 * condition it was given. In the joint stage the condition is the level above's output, passed
 * through scaleGradient(feedback) when gradients are being taken.
 */
function generateForTraining(m: SGAN, stage: StageKind, real: RealBatch, z: tf.Tensor2D[], mode: Mode, feedback: number | null) {
  const fakes: tf.Tensor[] = new Array(m.levels);
  const conds: tf.Tensor2D[] = new Array(m.levels);
  for (let i = m.levels - 1; i >= 0; i--) {
    const s = m.cfg.stacks[i];
    let cond = real.h[s.condition] as tf.Tensor2D;
    if (stage === 'joint' && i < m.levels - 1) {
      cond = (feedback === null ? fakes[i + 1] : scaleGradient(fakes[i + 1], feedback)) as tf.Tensor2D;
    }
    conds[i] = cond;
    fakes[i] = m.G[i].apply(z[i], cond, mode);
  }
  return { fakes, conds };
}

export function lossNames(m: SGAN): string[] {
  const names: string[] = [];
  m.cfg.stacks.forEach((s, i) => names.push(`D${i}`, `${s.name}.adv`, `${s.name}.cond`, `${s.name}.ent`));
  return names;
}

export interface Trainer {
  model: SGAN;
  gOpt: Adam;
  dOpt: Adam;
  cfg: TrainConfig;
}

/**
 * One D update then one G update on a batch. Returns the losses as one small tensor, in the order of
 * lossNames(), left on the device.
 */
export function trainStep(t: Trainer, stage: StageKind, x01: tf.Tensor4D, labels: tf.Tensor1D, step: number): tf.Tensor1D {
  const { model: m, cfg } = t;
  const w = lossWeightsAt(cfg, step);
  const form = m.cfg.adversarial;
  return tf.tidy(() => {
    const real = realBatch(m, x01, labels);
    const n = labels.shape[0];
    const noise = (phase: string) =>
      m.cfg.stacks.map((s, i) => tf.randomUniform([n, s.zDim], 0, 1, 'float32', deriveSeed(cfg.seed, 'z', phase, i, step)) as tf.Tensor2D);
    const dMode = (phase: string, i: number) => ({ training: true, seeds: new SeedStream(deriveSeed(cfg.seed, 'D', phase, i, step)) });

    // Discriminators: real vs (fixed) fake, and Q learns to recover z from the fake.
    const zD = noise('D');
    const { fakes: fakesD } = generateForTraining(m, stage, real, zD, { training: true }, null);
    const dLossParts: tf.Scalar[] = [];
    const d = namedGrads(() => {
      let total: tf.Scalar = tf.scalar(0);
      m.cfg.stacks.forEach((s, i) => {
        const outReal = m.D[i].apply(real.h[s.generates], dMode('real', i));
        const outFake = m.D[i].apply(m.toDInput(s.generates, fakesD[i]), dMode('fake', i));
        let loss = tf.mul(w.adv, discriminatorAdversarialLoss(form, outReal.adv, outFake.adv, labels)) as tf.Scalar;
        if (w.ent > 0) loss = tf.add(loss, tf.mul(w.ent, entropyLoss(outFake.q, zD[i]))) as tf.Scalar;
        dLossParts.push(tf.keep(loss));
        total = tf.add(total, loss) as tf.Scalar;
      });
      return total;
    }, t.dOpt.params);
    t.dOpt.apply(d.grads);

    // Generators: fool D, match the condition through E, and keep z recoverable by Q.
    const zG = noise('G');
    const gParts: tf.Scalar[] = [];
    const g = namedGrads(() => {
      const { fakes, conds } = generateForTraining(m, stage, real, zG, { training: true, updateStats: true }, cfg.jointFeedback);
      let total: tf.Scalar = tf.scalar(0);
      m.cfg.stacks.forEach((s, i) => {
        const hD = m.toDInput(s.generates, fakes[i]);
        const out = m.D[i].apply(hD, dMode('gen', i));
        const adv = generatorAdversarialLoss(form, out.adv);
        const encoded = m.encode(s.generates, s.condition, hD);
        const cond = s.condition === 'y' ? labelConditionalLoss(encoded, labels) : featureConditionalLoss(encoded, conds[i]);
        const ent = entropyLoss(out.q, zG[i]);
        let loss = tf.mul(w.adv, adv) as tf.Scalar;
        if (w.cond > 0) loss = tf.add(loss, tf.mul(w.cond, cond)) as tf.Scalar;
        if (w.ent > 0) loss = tf.add(loss, tf.mul(w.ent, ent)) as tf.Scalar;
        gParts.push(tf.keep(adv), tf.keep(cond), tf.keep(ent));
        total = tf.add(total, loss) as tf.Scalar;
      });
      return total;
    }, t.gOpt.params);
    t.gOpt.apply(g.grads);

    const parts: tf.Scalar[] = [];
    m.cfg.stacks.forEach((_, i) => parts.push(dLossParts[i], gParts[3 * i], gParts[3 * i + 1], gParts[3 * i + 2]));
    const stacked = tf.stack(parts) as tf.Tensor1D;
    tf.dispose(parts); // kept out of the gradient scopes above; tidy will not free them
    return stacked;
  });
}

// ---------------------------------------------------------------------------------------------
// Building, saving and restoring a run.

/** A trainer for cfg's model (the SGAN or its baseline), or for `modelCfg` when given (the entropy probe's bottom stack). */
export function createTrainer(cfg: TrainConfig, encoder: Encoder, modelCfg?: ModelConfig): Trainer {
  const arch = cfg.experiment === 'mnist' ? 'mnist' : 'cifar';
  const model = new SGAN(modelCfg ?? modelConfig(arch, cfg.baseline), encoder, cfg.seed);
  // Q heads get no gradient without the entropy loss: leave them out of D's optimiser.
  const gOpt = new Adam(cfg.adam, model.params('G'));
  const dOpt = new Adam(cfg.adam, model.params('D', { withQ: cfg.weights.ent > 0 }));
  return { model, gOpt, dOpt, cfg };
}

/** Every tensor a checkpoint holds, by name. */
export function checkpointTensors(t: Trainer): Map<string, tf.Tensor> {
  const m = t.model;
  const all = new Map<string, tf.Tensor>([
    ...prefixVars('', m.params('G')),
    ...prefixVars('', m.params('D')),
    ...prefixVars('bn/', m.buffers()),
    ...prefixVars('adamG/', t.gOpt.state()),
    ...prefixVars('adamD/', t.dOpt.state()),
    ...prefixVars('E.', m.encoder.trainable()),
  ]);
  if (m.encoder.meanImage) all.set('E.meanImage', m.encoder.meanImage);
  return all;
}

export function restoreTrainer(t: Trainer, ckpt: LoadedCheckpoint<RunMeta>): void {
  const m = t.model;
  restoreVariables(ckpt, m.params('G'));
  restoreVariables(ckpt, m.params('D'));
  restoreVariables(ckpt, m.buffers(), 'bn/');
  restoreVariables(ckpt, t.gOpt.state(), 'adamG/');
  restoreVariables(ckpt, t.dOpt.state(), 'adamD/');
  t.gOpt.step = ckpt.meta.adamSteps.G;
  t.dOpt.step = ckpt.meta.adamSteps.D;
}

/** Rebuild the frozen encoder stored inside a checkpoint. */
export function encoderFromCheckpoint(ckpt: LoadedCheckpoint<RunMeta>): Encoder {
  const enc = new Encoder(ckpt.meta.encoder.config, 0, false);
  restoreVariables(ckpt, enc.trainable(), 'E.');
  const mean = ckpt.tensors.get('E.meanImage');
  if (mean) enc.meanImage = tf.tensor4d(mean.data, mean.shape as [number, number, number, number]);
  return enc;
}

/** Load a finished (or partial) run for sampling and evaluation: model in eval mode, plus its meta. */
export function loadModel(dirOrFile: string): { model: SGAN; meta: RunMeta; file: string } {
  const ckpt = loadCheckpoint<RunMeta>(dirOrFile);
  const encoder = encoderFromCheckpoint(ckpt);
  const model = new SGAN(ckpt.meta.model, encoder, 0);
  restoreVariables(ckpt, model.params('G'));
  restoreVariables(ckpt, model.params('D'));
  restoreVariables(ckpt, model.buffers(), 'bn/');
  return { model, meta: ckpt.meta, file: ckpt.file };
}

// ---------------------------------------------------------------------------------------------
// The loop.

export interface TrainOptions {
  cfg: TrainConfig;
  data: ImageDataset;
  encoder: Encoder;
  encoderSource: string;
  outDir: string;
  resume: boolean;
  backend: string;
  progress?: boolean;
  /** Called after every read-back of the losses. */
  onLog?: (e: HistoryEntry) => void;
  /** Called after every step with the number of steps done (notebooks, tests). */
  onStep?: (t: Trainer, stepsDone: number) => void;
}

export interface TrainResult {
  trainer: Trainer;
  meta: RunMeta;
  checkpoint: string;
}

function sameConfig(a: TrainConfig, b: TrainConfig): string | null {
  const ja = JSON.stringify(a);
  const jb = JSON.stringify(b);
  return ja === jb ? null : `checkpoint config ${jb} differs from this run's ${ja}`;
}

export async function train(opts: TrainOptions): Promise<TrainResult> {
  const { cfg, data } = opts;
  const trainer = createTrainer(cfg, opts.encoder);
  const names = lossNames(trainer.model);
  const total = totalSteps(cfg, data.n);
  fs.mkdirSync(opts.outDir, { recursive: true });

  let step = 0;
  let history: HistoryEntry[] = [];
  let trainSecondsBefore = 0;
  if (opts.resume && fs.existsSync(checkpointPath(opts.outDir))) {
    const ckpt = loadCheckpoint<RunMeta>(opts.outDir);
    const why = sameConfig(cfg, ckpt.meta.config);
    if (why) throw new Error(`${ckpt.file}: cannot resume: ${why}`);
    restoreTrainer(trainer, ckpt);
    step = ckpt.meta.step;
    history = ckpt.meta.history;
    trainSecondsBefore = ckpt.meta.trainSeconds;
  } else if (!opts.resume && fs.existsSync(checkpointPath(opts.outDir))) {
    throw new Error(`${checkpointPath(opts.outDir)} exists: pass --resume to continue it, or choose another --out`);
  }
  writeJsonAtomic(path.join(opts.outDir, 'config.json'), { config: cfg, model: trainer.model.cfg, encoder: opts.encoderSource });

  const started = Date.now();
  const meta = (): RunMeta => ({
    step,
    totalSteps: total,
    config: cfg,
    model: trainer.model.cfg,
    encoder: { config: opts.encoder.cfg, source: opts.encoderSource },
    backend: opts.backend,
    rng: { seed: cfg.seed, step },
    history,
    trainSeconds: trainSecondsBefore + (Date.now() - started) / 1000,
    adamSteps: { G: trainer.gOpt.step, D: trainer.dOpt.step },
  });
  let checkpoint = checkpointPath(opts.outDir);
  const progress: Progress | null = opts.progress === false ? null : createProgress(`train ${cfg.experiment}/${cfg.preset}`, total);

  // Losses of the steps since the last read-back, still on the device.
  let pending: Array<{ step: number; losses: tf.Tensor1D }> = [];
  let lastLog = Date.now();
  const flush = async () => {
    if (pending.length === 0) return;
    const stacked = tf.stack(pending.map((p) => p.losses));
    const values = (await stacked.data()) as Float32Array;
    stacked.dispose();
    const sums = new Array(names.length).fill(0);
    pending.forEach((p, r) => {
      names.forEach((name, c) => {
        const v = values[r * names.length + c];
        if (!Number.isFinite(v)) {
          throw new TrainingDiverged(`loss ${name} is ${v} at step ${p.step + 1}; training stopped, last good checkpoint kept at ${checkpoint}`);
        }
        sums[c] += v;
      });
    });
    const entry: HistoryEntry = {
      step: pending[pending.length - 1].step + 1,
      losses: Object.fromEntries(names.map((nm, c) => [nm, sums[c] / pending.length])),
      seconds: (Date.now() - lastLog) / 1000 / pending.length,
    };
    lastLog = Date.now();
    for (const p of pending) p.losses.dispose();
    pending = [];
    history.push(entry);
    opts.onLog?.(entry);
    const short: Record<string, number> = {};
    for (const k of names) if (k.startsWith('D') || k.endsWith('.adv') || k.endsWith('.cond')) short[k] = entry.losses[k];
    progress?.update(entry.step, short);
  };

  try {
    let perm: Uint32Array | null = null;
    let permEpoch = -1;
    while (step < total) {
      const pos = locate(cfg, data.n, step);
      if (pos.epoch !== permEpoch) {
        perm = epochPermutation(data.n, cfg.seed, pos.epoch);
        permEpoch = pos.epoch;
      }
      const idx = perm!.subarray(pos.batch * cfg.batchSize, (pos.batch + 1) * cfg.batchSize);
      const x = imageBatch(data, idx);
      const y = labelBatch(data, idx);
      const losses = trainStep(trainer, pos.stage, x, y, step);
      x.dispose();
      y.dispose();
      pending.push({ step, losses });
      step += 1;
      opts.onStep?.(trainer, step);
      if (step % cfg.logEvery === 0 || step === total) await flush();
      if (step % cfg.checkpointEvery === 0 || step === total) {
        await flush(); // a checkpoint is only written after its losses were checked
        checkpoint = await saveCheckpoint(opts.outDir, meta(), checkpointTensors(trainer));
        if (process.env.SGAN_LOG_CHECKPOINTS) process.stdout.write(`checkpoint step=${step}/${total}\n`);
      }
    }
  } finally {
    for (const p of pending) p.losses.dispose();
    progress?.stop();
  }
  return { trainer, meta: meta(), checkpoint };
}

