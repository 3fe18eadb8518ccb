import { Command } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic, writeJsonAtomic } from '../../lib/atomic';
import { loadDataset } from '../../lib/datasets/dataset';
import { ENTROPY_PROBE_VARIANTS, ProbeResult, Q0_CHANCE, probeBottomStack, probeTable } from '../../lib/entropy-probe';
import { EXPERIMENTS, ExperimentName, PRESETS, PresetName, presetConfig } from '../../lib/presets';
import { createProgress } from '../../lib/progress';
import { provenance } from '../../lib/provenance';
import { prepareEncoder } from '../../lib/run';
import { choiceListOption, choiceOption, intOption, printJsonLine, startBackend } from '../common';

const VARIANT_IDS = ENTROPY_PROBE_VARIANTS.map((v) => v.id);

interface ProbeOpts {
  experiment: ExperimentName;
  preset: PresetName;
  seed: number;
  steps: number;
  warmup: number;
  variants: string[];
  dataDir?: string;
  encoder?: string;
  meanImage?: string;
  out: string;
}

export function registerProbeEntropy(program: Command): void {
  program
    .command('probe-entropy')
    .description("train the bottom stack (G0 | real fc3) alone under several loss weightings: does Q0 recover z0, does G0 use it?")
    .requiredOption('--experiment <name>', EXPERIMENTS.join('|'), choiceOption('experiment', EXPERIMENTS))
    .option('--preset <name>', `batch size, Adam and encoder of this preset (${PRESETS.join('|')})`, choiceOption('preset', PRESETS), 'quick')
    .option('--seed <n>', 'random seed', intOption('--seed', 0), 1)
    .option('--steps <n>', 'training steps per weighting', intOption('--steps', 2), 300)
    .option('--warmup <n>', "entropy-only steps at the start of the 'warmup' weighting", intOption('--warmup', 1), 200)
    .option('--variants <list>', `comma-separated, from ${VARIANT_IDS.join(',')}`, choiceListOption('--variants', VARIANT_IDS), VARIANT_IDS)
    .option('--data-dir <dir>', 'dataset folder (MNIST defaults to the 10,000 embedded digits)')
    .option('--encoder <file.npz>', "encoder to condition on (default: the experiment run's, runs/<experiment>-<preset>/encoder.npz, pre-trained there if absent)")
    .option('--mean-image <file.npy>', 'mean image for --encoder (CIFAR-10/SVHN)')
    .requiredOption('--out <dir>', 'folder for entropy-probe.json/.md and per-weighting results (kept: a rerun skips finished ones)')
    .action(async (o: ProbeOpts) => {
      const backend = await startBackend();
      const started = Date.now();
      const base = presetConfig(o.experiment, o.preset, o.seed);
      const data = loadDataset(o.experiment, { split: 'train', dataDir: o.dataDir });
      const { encoder, source } = await prepareEncoder({
        cfg: base, dataDir: o.dataDir, outDir: path.join('runs', `${o.experiment}-${o.preset}`), resume: false,
        encoderFile: o.encoder, meanImageFile: o.meanImage, backend,
      });
      const variants = ENTROPY_PROBE_VARIANTS.filter((v) => o.variants.includes(v.id));
      const cellFile = (id: string) => path.join(o.out, 'variants', `${id}.json`);
      const todo = variants.filter((v) => !fs.existsSync(cellFile(v.id)));
      const bar = createProgress(`probe-entropy ${o.experiment}/${o.preset}`, todo.length * o.steps);
      let done = 0;
      for (const v of todo) {
        const r = await probeBottomStack(data, encoder, v, base, { steps: o.steps, warmupSteps: o.warmup, onStep: (k) => bar.update(done + k, { variant: v.id }) });
        done += o.steps;
        // One file per weighting, written whole: a killed probe resumes at the first missing one.
        writeJsonAtomic(cellFile(v.id), { result: r, ...provenance({ seed: o.seed, backend, preset: o.preset, scale: base.scale }) });
      }
      bar.stop();
      const rows: ProbeResult[] = variants.map((v) => JSON.parse(fs.readFileSync(cellFile(v.id), 'utf8')).result);
      const prov = provenance({ seed: o.seed, backend, preset: o.preset, scale: `${o.steps} steps of the bottom stack per weighting, batch ${base.batchSize}, Adam lr ${base.adam.lr} (${base.scale})`, wallSeconds: (Date.now() - started) / 1000 });
      writeJsonAtomic(path.join(o.out, 'entropy-probe.json'), { encoder: source, results: rows, provenance: prov });
      const md = [
        `# Entropy probe: ${o.experiment}, preset ${o.preset}`,
        '',
        `G0 conditioned on the real fc3 of training images (encoder ${path.relative(process.cwd(), source) || source}), trained alone for ${o.steps} steps per row from the same initial weights and batches.`,
        `Q0 error at chance: ${Q0_CHANCE.toFixed(4)} (z0 ~ U[0,1] predicted as 0.5). Level-0 diversity: pixel std across 20 draws of z0 for one real fc3 per class.`,
        '',
        probeTable(rows),
        `Command: \`${prov.command}\` · seed ${o.seed} · backend ${backend} · commit ${prov.commit}${prov.dirty ? ' (dirty)' : ''} · ${prov.machine} · ${Math.round(prov.wallSeconds ?? 0)} s`,
        '',
      ].join('\n');
      writeFileAtomic(path.join(o.out, 'entropy-probe.md'), md);
      encoder.dispose();
      printJsonLine({ out: o.out, backend, results: rows.map((r) => ({ id: r.id, q0_loss_end: r.q0_loss_end, level0_diversity: r.level0_diversity })) });
    });
}
