/**
 * Speed benchmark (`sgan bench`). On a machine without a GPU the backend's speed decides which
 * experiments anyone can run, so this measures, on every backend that loads:
 *  - one training iteration (trainStep: one D step and one G step over both stacks) of the MNIST and
 *    the CIFAR-10 SGAN at the paper's architecture and batch (100), on synthetic data (the cost of an
 *    iteration does not depend on pixel values; the PyTorch peer uses random data too);
 *  - sampling throughput (model.generate in eval mode, batch 500) and classifier-score evaluation
 *    throughput (encoder.classify + softmax, batch 500), in images/s;
 *  - optionally (profile) a per-kernel profile of one iteration: tf.profile, aggregated by kernel;
 *  - peak RSS of the process.
 * When Debian's PyTorch is installed it also runs the PyTorch peer of the MNIST iteration
 * (../shared/reference/torch_sgan_mnist.py) with 1 and with 2 threads in the same run, right after our
 * MNIST iteration, and reports ours/PyTorch as a ratio of medians: absolute times on a shared 2-core
 * machine mean little, a ratio measured back to back means more. The load average is recorded too.
 *
 * Timing: every timed call ends by reading back a small result (await data()), so the work is done
 * when the clock stops on any backend; wasm and cpu kernels are synchronous anyway.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { BACKEND_ORDER, BackendName, initBackend, wasmThreadsCount } from './backend';
import { CIFAR_ENCODER, Encoder, EncoderConfig, MNIST_ENCODER } from './encoder';
import { StageKind, presetConfig } from './presets';
import { sharedPath } from './paths';
import { Provenance, provenance } from './provenance';
import { Trainer, createTrainer, trainStep } from './train';

export type BenchExperiment = 'mnist' | 'cifar10';
export const BENCH_EXPERIMENTS: readonly BenchExperiment[] = ['mnist', 'cifar10'];

/** The paper's batch for training; sampling and evaluation use larger batches, as a sampler would. */
export const TRAIN_BATCH = 100;
export const EVAL_BATCH = 500;

/**
 * The cpu backend is ~40x slower than wasm: a CIFAR-10 iteration takes minutes. It is timed only when
 * asked for (--backends cpu), with these counts, which the JSON states.
 */
export const CPU_ITERS = 2;
export const CPU_WARMUP = 1;

export const DEFAULT_TORCH_SCRIPT = sharedPath('reference', 'torch_sgan_mnist.py');
const PYTHON = '/usr/bin/python3';

export interface BenchOptions {
  iters: number;
  warmup: number;
  /** Backends to try, in order. */
  backends: BackendName[];
  /** Whether the list was given explicitly (then cpu is timed, with CPU_ITERS/CPU_WARMUP). */
  backendsExplicit: boolean;
  experiments: BenchExperiment[];
  /** Stage of the timed iteration; 'independent' is what the PyTorch peer times. */
  stage: StageKind;
  torch: boolean;
  torchScript: string;
  profile: boolean;
  /** Progress lines (stderr); silent when absent. */
  log?: (line: string) => void;
}

export interface Timing {
  iters: number;
  warmup: number;
  medianMs: number;
  minMs: number;
  samplesMs: number[];
}

export interface Throughput extends Timing {
  batch: number;
  /** batch / median time. */
  imagesPerSecond: number;
  /** batch / min time. */
  imagesPerSecondBest: number;
}

export interface KernelRow {
  kernel: string;
  totalMs: number;
  count: number;
}

export interface KernelProfile {
  /** Wall time of the profiled iteration (profiling itself adds a little). */
  wallMs: number;
  /** Sum of the kernels' own times; wallMs - kernelMs is JavaScript overhead between kernels. */
  kernelMs: number;
  kernelCalls: number;
  kernels: KernelRow[];
  /**
   * Entries that are not kernels but composite ops (tf.customGrad forward and gradient functions,
   * e.g. batch norm's): tf.profile records them besides the kernels they run, so they are listed
   * here and left out of kernelMs.
   */
  composites: KernelRow[];
}

export interface ExperimentBench {
  experiment: BenchExperiment;
  stage: StageKind;
  batch: number;
  iteration: Timing;
  sampling: Throughput;
  classify: Throughput;
  profile?: KernelProfile;
  /** Tensors left behind by the measurements (should be 0). */
  leakedTensors: number;
}

export interface BackendBench {
  backend: BackendName;
  status: 'ok' | 'unavailable' | 'skipped' | 'failed';
  reason?: string;
  /** XNNPACK threads of the wasm backend. */
  threads?: number;
  note?: string;
  experiments: ExperimentBench[];
  /** Peak RSS of the whole process after this backend's measurements (cumulative). */
  peakRssMiB?: number;
  /** ours (MNIST iteration median) / PyTorch (faster median). */
  ratioToPytorch?: number;
}

export interface TorchRun {
  threads: number;
  ok: boolean;
  error?: string;
  framework?: string;
  medianMs?: number;
  minMs?: number;
  iters?: number;
}

export interface TorchBench {
  available: boolean;
  reason?: string;
  script: string;
  runs: TorchRun[];
  /** The faster of the medians, and with how many threads. */
  bestMedianMs?: number;
  bestThreads?: number;
  /** Which of our measurements it ran right after. */
  ranAfter?: string;
}

export interface BenchReport {
  kind: 'sgan-bench';
  provenance: Provenance;
  settings: { iters: number; warmup: number; stage: StageKind; trainBatch: number; evalBatch: number; experiments: BenchExperiment[]; data: string };
  loadAverage: { start: number[]; end: number[] };
  cpus: number;
  backends: BackendBench[];
  pytorch: TorchBench;
  /** Headline: the first backend measured (the fastest that loads), MNIST iteration median / PyTorch's. */
  ratio: { backend: BackendName; oursMedianMs: number; pytorchMedianMs: number; value: number } | null;
  peakRssMiB: number;
}

// ---------------------------------------------------------------------------------------------
// Measuring

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const round = (x: number, digits = 2): number => Number(x.toFixed(digits));

/** `warmup` untimed calls, then `iters` timed ones. */
async function timeRepeated(iters: number, warmup: number, once: () => Promise<void>): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await once();
  const samples: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    await once();
    samples.push(performance.now() - t0);
  }
  return { iters, warmup, medianMs: round(median(samples)), minMs: round(Math.min(...samples)), samplesMs: samples.map((s) => round(s, 1)) };
}

function throughput(t: Timing, batch: number): Throughput {
  return { ...t, batch, imagesPerSecond: round((batch * 1000) / t.medianMs, 1), imagesPerSecondBest: round((batch * 1000) / t.minMs, 1) };
}

export const peakRssMiB = (): number => round(process.resourceUsage().maxRSS / 1024, 1);

/** Everything one experiment's measurements need, built on the active backend. */
interface Bench {
  trainer: Trainer;
  encoder: Encoder;
  x: tf.Tensor4D;
  labels: tf.Tensor1D;
  step: number;
}

function encoderConfig(e: BenchExperiment): EncoderConfig {
  return e === 'mnist' ? MNIST_ENCODER : CIFAR_ENCODER;
}

function setUp(e: BenchExperiment): Bench {
  const ec = encoderConfig(e);
  const encoder = new Encoder(ec, 1);
  // A CIFAR-10 encoder subtracts a mean image in real runs; include that (cheap) work.
  if (ec.channels === 3) encoder.meanImage = tf.fill([1, ec.size, ec.size, ec.channels], 0.5) as tf.Tensor4D;
  const trainer = createTrainer(presetConfig(e, 'paper', 1), encoder);
  const x = tf.randomUniform([TRAIN_BATCH, ec.size, ec.size, ec.channels], 0, 1, 'float32', 1) as tf.Tensor4D;
  const labels = tf.tensor1d(Array.from({ length: TRAIN_BATCH }, (_, i) => i % 10), 'int32');
  return { trainer, encoder, x, labels, step: 0 };
}

function tearDown(b: Bench): void {
  b.trainer.model.dispose();
  b.trainer.gOpt.dispose();
  b.trainer.dOpt.dispose();
  b.encoder.dispose();
  tf.dispose([b.x, b.labels]);
}

async function iterationOnce(b: Bench, stage: StageKind): Promise<void> {
  const losses = trainStep(b.trainer, stage, b.x, b.labels, b.step++);
  await losses.data();
  losses.dispose();
}

async function samplingOnce(b: Bench): Promise<void> {
  const m = b.trainer.model;
  const labels = tf.tensor1d(Array.from({ length: EVAL_BATCH }, (_, i) => i % 10), 'int32');
  const z = m.noise(EVAL_BATCH, b.step++);
  const out = m.generate(labels, z, { training: false });
  await out[0].data();
  tf.dispose([labels, ...z, ...out]);
}

async function classifyOnce(b: Bench, images: tf.Tensor4D): Promise<void> {
  const probs = tf.tidy(() => tf.softmax(b.encoder.classify(images)));
  await probs.data();
  probs.dispose();
}

/** tf.profile around one iteration, aggregated per kernel name, most expensive first. */
export async function profileIteration(run: () => tf.Tensor): Promise<KernelProfile> {
  const t0 = performance.now();
  const info = await tf.profile(async () => {
    const out = run();
    await out.data();
    return out;
  });
  const wallMs = performance.now() - t0;
  tf.dispose(info.result as tf.Tensor);
  const byName = new Map<string, KernelRow>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const row = byName.get(k.name) ?? { kernel: k.name, totalMs: 0, count: 0 };
    row.totalMs += ms;
    row.count += 1;
    byName.set(k.name, row);
  }
  const backend = tf.getBackend();
  const rows = [...byName.values()].map((r) => ({ ...r, totalMs: round(r.totalMs) })).sort((a, b) => b.totalMs - a.totalMs);
  const kernels = rows.filter((r) => tf.getKernel(r.kernel, backend) !== undefined);
  const composites = rows.filter((r) => tf.getKernel(r.kernel, backend) === undefined);
  const kernelMs = kernels.reduce((sum, r) => sum + r.totalMs, 0);
  const kernelCalls = kernels.reduce((sum, r) => sum + r.count, 0);
  return { wallMs: round(wallMs), kernelMs: round(kernelMs), kernelCalls, kernels, composites };
}

async function benchExperiment(
  e: BenchExperiment, opts: BenchOptions, counts: { iters: number; warmup: number }, afterIteration: () => void,
): Promise<ExperimentBench> {
  const log = opts.log ?? (() => {});
  const b = setUp(e);
  try {
    log(`  ${e}: iteration (batch ${TRAIN_BATCH}, ${opts.stage}) x ${counts.iters} after ${counts.warmup} warm-up`);
    const iteration = await timeRepeated(counts.iters, counts.warmup, () => iterationOnce(b, opts.stage));
    log(`  ${e}: iteration median ${iteration.medianMs} ms, min ${iteration.minMs} ms`);
    afterIteration();
    let profile: KernelProfile | undefined;
    if (opts.profile) {
      profile = await profileIteration(() => trainStep(b.trainer, opts.stage, b.x, b.labels, b.step++));
      log(`  ${e}: profiled one iteration: ${profile.wallMs} ms wall, ${profile.kernelMs} ms in ${profile.kernelCalls} kernel calls`);
    }
    const sampling = throughput(await timeRepeated(counts.iters, counts.warmup, () => samplingOnce(b)), EVAL_BATCH);
    log(`  ${e}: sampling ${sampling.imagesPerSecond} images/s`);
    const ec = encoderConfig(e);
    const images = tf.randomUniform([EVAL_BATCH, ec.size, ec.size, ec.channels], 0, 1, 'float32', 2) as tf.Tensor4D;
    const classify = throughput(await timeRepeated(counts.iters, counts.warmup, () => classifyOnce(b, images)), EVAL_BATCH);
    images.dispose();
    log(`  ${e}: classifier ${classify.imagesPerSecond} images/s`);
    return { experiment: e, stage: opts.stage, batch: TRAIN_BATCH, iteration, sampling, classify, profile, leakedTensors: 0 };
  } finally {
    tearDown(b);
  }
}

// ---------------------------------------------------------------------------------------------
// The PyTorch peer

export function torchAvailable(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON}: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} -c 'import torch' failed: ${(r.stderr || '').trim().split('\n').pop()} (install: apt-get install -y python3-torch)`;
  return null;
}

function runTorch(script: string, threads: number, iters: number): TorchRun {
  const r = spawnSync(PYTHON, [script, '--threads', String(threads), '--iters', String(iters)], { encoding: 'utf8', maxBuffer: 1 << 20 });
  const lines = (r.stdout || '').trim().split('\n');
  try {
    if (r.status !== 0) throw new Error((r.stderr || '').trim().split('\n').pop() || `exit ${r.status}`);
    const j = JSON.parse(lines[lines.length - 1]) as { framework: string; ms_per_iteration_median: number; ms_per_iteration_min: number; iters: number };
    return { threads, ok: true, framework: j.framework, medianMs: j.ms_per_iteration_median, minMs: j.ms_per_iteration_min, iters: j.iters };
  } catch (e) {
    return { threads, ok: false, error: (e as Error).message };
  }
}

function benchTorch(opts: BenchOptions, ranAfter: string): TorchBench {
  const log = opts.log ?? (() => {});
  const script = opts.torchScript;
  if (!opts.torch) return { available: false, reason: 'skipped (--no-torch)', script, runs: [] };
  if (!fs.existsSync(script)) return { available: false, reason: `reference script not found: ${script}`, script, runs: [] };
  const why = torchAvailable();
  if (why !== null) return { available: false, reason: `PyTorch not installed: ${why}`, script, runs: [] };
  const runs: TorchRun[] = [];
  for (const threads of [1, 2]) {
    log(`  pytorch: ${threads} thread(s) x ${opts.iters}`);
    runs.push(runTorch(script, threads, opts.iters));
    const r = runs[runs.length - 1];
    log(r.ok ? `  pytorch: ${threads} thread(s): median ${r.medianMs} ms` : `  pytorch: ${threads} thread(s) failed: ${r.error}`);
  }
  const ok = runs.filter((r) => r.ok);
  if (ok.length === 0) return { available: false, reason: 'every PyTorch run failed', script, runs, ranAfter };
  const best = ok.reduce((a, b) => (b.medianMs! < a.medianMs! ? b : a));
  return { available: true, script, runs, bestMedianMs: best.medianMs, bestThreads: best.threads, ranAfter };
}

// ---------------------------------------------------------------------------------------------
// The whole run

export async function runBench(opts: BenchOptions): Promise<BenchReport> {
  const log = opts.log ?? (() => {});
  const started = performance.now();
  const loadStart = os.loadavg().map((l) => round(l));
  const backends: BackendBench[] = [];
  let torch: TorchBench | null = null;

  for (const name of opts.backends) {
    if (name === 'cpu' && !opts.backendsExplicit) {
      backends.push({
        backend: name, status: 'skipped', experiments: [],
        reason: `~40x slower than wasm; time it with --backends cpu (${CPU_ITERS} iterations after ${CPU_WARMUP} warm-up)`,
      });
      continue;
    }
    try {
      await initBackend(name);
    } catch (e) {
      backends.push({ backend: name, status: 'unavailable', reason: (e as Error).message, experiments: [] });
      log(`backend ${name}: unavailable: ${(e as Error).message}`);
      continue;
    }
    const threads = name === 'wasm' ? wasmThreadsCount() : undefined;
    const counts = name === 'cpu' ? { iters: CPU_ITERS, warmup: CPU_WARMUP } : { iters: opts.iters, warmup: opts.warmup };
    const entry: BackendBench = {
      backend: name, status: 'ok', experiments: [], threads,
      note: name === 'cpu' ? `cpu backend (~40x slower than wasm): ${CPU_ITERS} timed iterations after ${CPU_WARMUP} warm-up` : undefined,
    };
    backends.push(entry);
    log(`backend ${name}${threads !== undefined ? ` (${threads} threads)` : ''}`);
    try {
      for (const e of opts.experiments) {
        const before = tf.memory().numTensors;
        // The PyTorch peer runs right after our first MNIST iteration timing: back to back.
        const afterIteration = () => {
          if (torch === null && e === 'mnist') torch = benchTorch(opts, `${name} mnist iteration`);
        };
        const r = await benchExperiment(e, opts, counts, afterIteration);
        r.leakedTensors = tf.memory().numTensors - before;
        entry.experiments.push(r);
      }
    } catch (err) {
      entry.status = 'failed';
      entry.reason = (err as Error).message;
      log(`backend ${name}: failed: ${entry.reason}`);
    }
    entry.peakRssMiB = peakRssMiB();
  }
  const pytorch: TorchBench = torch ?? (opts.experiments.includes('mnist')
    ? benchTorch(opts, 'no MNIST iteration was timed')
    : { available: false, reason: 'MNIST not benchmarked', script: opts.torchScript, runs: [] });

  let ratio: BenchReport['ratio'] = null;
  for (const b of backends) {
    const mnist = b.experiments.find((e) => e.experiment === 'mnist');
    if (!mnist || pytorch.bestMedianMs === undefined) continue;
    b.ratioToPytorch = round(mnist.iteration.medianMs / pytorch.bestMedianMs, 3);
    ratio ??= { backend: b.backend, oursMedianMs: mnist.iteration.medianMs, pytorchMedianMs: pytorch.bestMedianMs, value: b.ratioToPytorch };
  }
  const okNames = backends.filter((b) => b.status === 'ok').map((b) => b.backend);
  return {
    kind: 'sgan-bench',
    provenance: provenance({
      seed: 1,
      backend: okNames.join(',') || 'none',
      preset: 'paper',
      scale: `benchmark: paper architecture, one training iteration at batch ${TRAIN_BATCH}, sampling/classifier at batch ${EVAL_BATCH}, synthetic data`,
      wallSeconds: round((performance.now() - started) / 1000, 1),
    }),
    settings: {
      iters: opts.iters, warmup: opts.warmup, stage: opts.stage, trainBatch: TRAIN_BATCH, evalBatch: EVAL_BATCH,
      experiments: opts.experiments, data: 'synthetic: uniform [0,1) pixels, labels 0..9',
    },
    loadAverage: { start: loadStart, end: os.loadavg().map((l) => round(l)) },
    cpus: os.cpus().length,
    backends,
    pytorch,
    ratio,
    peakRssMiB: peakRssMiB(),
  };
}

export const DEFAULT_BENCH_BACKENDS: readonly BackendName[] = BACKEND_ORDER;

/** A human-readable summary of a report (what `sgan bench` prints without --json). */
export function formatReport(r: BenchReport, topKernels = 10): string {
  const out: string[] = [];
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  out.push(`sgan bench: ${r.settings.iters} timed iterations after ${r.settings.warmup} warm-up, stage ${r.settings.stage}; ` +
    `load average ${r.loadAverage.start.join(' ')} -> ${r.loadAverage.end.join(' ')} on ${r.cpus} CPUs`);
  for (const b of r.backends) {
    if (b.status !== 'ok') {
      out.push(`${b.backend}: ${b.status}${b.reason ? `: ${b.reason}` : ''}`);
      if (b.status !== 'failed') continue;
    } else {
      out.push(`${b.backend}${b.threads !== undefined ? ` (${b.threads} threads)` : ''}${b.note ? ` [${b.note}]` : ''}:`);
    }
    for (const e of b.experiments) {
      out.push(`  ${e.experiment.padEnd(7)} iteration (batch ${e.batch}) median ${ms(e.iteration.medianMs)}, min ${ms(e.iteration.minMs)}` +
        ` | sampling ${e.sampling.imagesPerSecond} img/s | classifier ${e.classify.imagesPerSecond} img/s`);
      if (e.profile) {
        const p = e.profile;
        out.push(`    profile: ${ms(p.wallMs)} wall, ${ms(p.kernelMs)} in ${p.kernelCalls} kernel calls; top ${topKernels}:`);
        for (const k of p.kernels.slice(0, topKernels)) {
          out.push(`      ${k.kernel.padEnd(24)} ${k.totalMs.toFixed(1).padStart(8)} ms  ${String(k.count).padStart(5)} calls  ${((100 * k.totalMs) / p.kernelMs).toFixed(1).padStart(5)}%`);
        }
      }
      if (e.leakedTensors !== 0) out.push(`    warning: ${e.leakedTensors} tensors left behind`);
    }
    if (b.peakRssMiB !== undefined) out.push(`  peak RSS so far ${b.peakRssMiB} MiB`);
  }
  const t = r.pytorch;
  if (t.available) {
    out.push(`pytorch (${t.runs.find((x) => x.ok)?.framework}): ` +
      t.runs.map((x) => (x.ok ? `${x.threads} thread(s) median ${ms(x.medianMs!)}` : `${x.threads} thread(s) failed`)).join('; ') +
      ` -> ${ms(t.bestMedianMs!)} (ran after ${t.ranAfter})`);
  } else {
    out.push(`pytorch: not measured: ${t.reason}`);
  }
  for (const b of r.backends) {
    if (b.ratioToPytorch !== undefined) out.push(`ratio ours/PyTorch (MNIST iteration medians), ${b.backend}: ${b.ratioToPytorch.toFixed(2)}x`);
  }
  out.push(`peak RSS ${r.peakRssMiB} MiB`);
  return out.join('\n');
}
