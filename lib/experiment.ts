/**
 * Running a paper experiment: a grid of cells (variant x seed), each a training run plus its
 * evaluation, then a table over seeds. Resumable at two levels: a finished cell (its metrics file
 * exists) is skipped, and an unfinished cell's training resumes from its last checkpoint.
 * `shard` splits the cells across machines (cell k goes to shard k mod count); `mergeExperiment`
 * builds the table once every shard's cell files are in one results folder.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic, writeJsonAtomic } from './atomic';
import { evaluateCheckpoint } from './evaluate';
import { Ablation, ExperimentName, PresetName, StageSpec, TrainConfig, applyAblation, presetConfig } from './presets';
import { Provenance, provenance } from './provenance';
import { RunOptions, prepareEncoder, runTraining } from './run';
import { GRID_KINDS, writeSampleGrid } from './sample';
import { Column, TableRow, aggregateRow, meanStd, toCsv, toJsonRows, toMarkdown } from './table';
import { HistoryEntry, loadModel } from './train';

export interface Variant {
  id: string;
  label: string;
  ablation: Ablation;
}

export interface ExperimentSpec {
  name: string;
  title: string;
  dataset: ExperimentName;
  variants: Variant[];
  seeds: Record<PresetName, number[]>;
  /** Samples generated for the evaluation of each cell. */
  evalSamples: Record<PresetName, number>;
  /**
   * A shorter training schedule than the preset's for this experiment's cells (a grid of many cells
   * must fit the preset's budget too); its `scale` note replaces the preset's in every result.
   */
  schedule?: Partial<Record<PresetName, ScheduleOverride>>;
  /**
   * Further judges of every cell besides the grid's own encoder, used when their files exist (e.g. the
   * paper authors' pre-trained encoder in ../shared): each adds `<id>_class_consistency` and
   * `<id>_classifier_score_mean` to the cell's metrics and a column to the table.
   */
  judges?: ExternalJudge[];
}

export interface ScheduleOverride {
  stages: StageSpec[];
  /** Cap on batches per epoch (null: the whole training set); the preset's when absent. */
  batchesPerEpoch?: number | null;
  encoderEpochs?: number;
  scale: string;
}

export interface ExternalJudge {
  id: string;
  /** Column label, e.g. "class consistency (authors' E)". */
  label: string;
  /** Encoder .npz in the authors' layout, and its mean image where the dataset needs one. */
  file: string;
  meanImage?: string;
}

export interface Shard {
  index: number;
  count: number;
}

export interface ExperimentOptions {
  preset: PresetName;
  seeds?: number[];
  dataDir?: string;
  shard?: Shard;
  resultsRoot?: string;
  runsRoot?: string;
  /** Judge/conditioning encoder for every cell; else one is pre-trained per experiment and preset. */
  encoderFile?: string;
  meanImageFile?: string;
  backend: string;
  progress?: boolean;
  log?: (line: string) => void;
}

export interface Cell {
  id: string;
  variant: Variant;
  seed: number;
}

export interface CellResult {
  cell: { id: string; variant: string; label: string; seed: number };
  metrics: Record<string, unknown>;
  history: HistoryEntry[];
  checkpoint: string;
  trainSeconds: number;
  provenance: Provenance;
}

export const TABLE_COLUMNS: Column[] = [
  { key: 'classifier_score_mean', label: 'classifier score', digits: 2 },
  { key: 'inception_score_mean', label: 'Inception score', digits: 2 },
  { key: 'fid', label: 'FID (encoder fc3)', digits: 2 },
  { key: 'class_consistency', label: 'class consistency', digits: 3 },
  { key: 'level0_diversity', label: 'level-0 diversity', digits: 4 },
  { key: 'level1_diversity', label: 'level-1 diversity', digits: 4 },
  { key: 'duplicate_fraction', label: 'near-duplicates', digits: 3 },
];

/** The table's columns: TABLE_COLUMNS, then one per external judge that judged some cell. */
export function tableColumns(spec: ExperimentSpec, results: CellResult[]): Column[] {
  const judged = (spec.judges ?? []).filter((j) => results.some((r) => r.metrics[`${j.id}_class_consistency`] !== undefined));
  return [...TABLE_COLUMNS, ...judged.map((j) => ({ key: `${j.id}_class_consistency`, label: j.label, digits: 3 }))];
}

export function resultsDir(spec: ExperimentSpec, preset: PresetName, root = 'results'): string {
  return path.join(root, `${spec.name}-${preset}`);
}

export function experimentCells(spec: ExperimentSpec, seeds: number[]): Cell[] {
  return spec.variants.flatMap((variant) => seeds.map((seed) => ({ id: `${variant.id}-s${seed}`, variant, seed })));
}

export function shardCells(cells: Cell[], shard?: Shard): Cell[] {
  if (!shard) return cells;
  if (!(shard.count >= 1 && shard.index >= 0 && shard.index < shard.count)) {
    throw new Error(`--shard ${shard.index}/${shard.count}: expected i/n with 0 <= i < n`);
  }
  return cells.filter((_, k) => k % shard.count === shard.index);
}

/** "i/n" as a Shard. */
export function parseShard(s: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  if (!m) throw new Error(`--shard: expected i/n (e.g. 0/4), got "${s}"`);
  const shard = { index: Number(m[1]), count: Number(m[2]) };
  shardCells([], shard);
  return shard;
}

const cellFile = (dir: string, cell: Cell) => path.join(dir, 'cells', `${cell.id}.json`);

/** The training config of one cell: the preset's, with the experiment's schedule, then the variant's ablation. */
export function cellConfig(spec: ExperimentSpec, preset: PresetName, seed: number, ablation: Ablation = {}): TrainConfig {
  const cfg = presetConfig(spec.dataset, preset, seed);
  const schedule = spec.schedule?.[preset];
  if (schedule) {
    cfg.stages = schedule.stages.map((st) => ({ ...st }));
    if (schedule.batchesPerEpoch !== undefined) cfg.batchesPerEpoch = schedule.batchesPerEpoch;
    if (schedule.encoderEpochs !== undefined) cfg.encoderEpochs = schedule.encoderEpochs;
    cfg.scale = schedule.scale;
  }
  return applyAblation(cfg, ablation);
}

/** The external judges whose files are present here. */
export function availableJudges(spec: ExperimentSpec): ExternalJudge[] {
  return (spec.judges ?? []).filter((j) => fs.existsSync(j.file) && (j.meanImage === undefined || fs.existsSync(j.meanImage)));
}

async function runCell(spec: ExperimentSpec, cell: Cell, o: ExperimentOptions, encoder: { file: string }): Promise<CellResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const cfg = cellConfig(spec, o.preset, cell.seed, cell.variant.ablation);
  const runDir = path.join(o.runsRoot ?? 'runs', `${spec.name}-${o.preset}`, cell.id);
  const t0 = Date.now();
  log(`[${spec.name}/${o.preset}] cell ${cell.id}: training -> ${runDir}`);
  const trained = await runTraining({
    cfg, dataDir: o.dataDir, outDir: runDir, resume: true, encoderFile: encoder.file, meanImageFile: o.meanImageFile, backend: o.backend, progress: o.progress,
  });
  trained.trainer.model.dispose();
  log(`[${spec.name}/${o.preset}] cell ${cell.id}: evaluating ${spec.evalSamples[o.preset]} samples`);
  const metrics: Record<string, unknown> = { ...(await evaluateCheckpoint({ checkpoint: runDir, n: spec.evalSamples[o.preset], seed: cell.seed, dataDir: o.dataDir, progress: o.progress })) };
  // An outside judge that is the grid's own encoder (e.g. --encoder with the authors' file) would only repeat it.
  for (const j of availableJudges(spec).filter((j) => path.resolve(j.file) !== path.resolve(encoder.file))) {
    log(`[${spec.name}/${o.preset}] cell ${cell.id}: judging with ${j.file}`);
    const m = await evaluateCheckpoint({ checkpoint: runDir, n: spec.evalSamples[o.preset], seed: cell.seed, dataDir: o.dataDir, progress: o.progress, encoder: j.file, meanImage: j.meanImage });
    metrics[`${j.id}_judge`] = m.judge;
    metrics[`${j.id}_class_consistency`] = m.class_consistency;
    metrics[`${j.id}_classifier_score_mean`] = m.classifier_score_mean;
    metrics[`real_${j.id}_class_consistency`] = m.real_class_consistency;
  }
  const out = resultsDir(spec, o.preset, o.resultsRoot);
  if (cell.seed === (o.seeds ?? spec.seeds[o.preset])[0]) {
    const { model } = loadModel(runDir);
    for (const kind of GRID_KINDS) {
      if (kind === 'level1' && model.levels < 2) continue;
      await writeSampleGrid(model, kind, path.join(out, 'grids', `${cell.variant.id}-${kind}.png`), { seed: cell.seed });
    }
    model.dispose();
  }
  return {
    cell: { id: cell.id, variant: cell.variant.id, label: cell.variant.label, seed: cell.seed },
    metrics,
    history: trained.meta.history,
    checkpoint: trained.checkpoint,
    trainSeconds: trained.meta.trainSeconds,
    provenance: provenance({ seed: cell.seed, backend: o.backend, preset: o.preset, scale: cfg.scale, wallSeconds: (Date.now() - t0) / 1000 }),
  };
}

export interface ExperimentSummary {
  dir: string;
  done: string[];
  skipped: string[];
  missing: string[];
  table: TableRow[] | null;
}

/** Run (or continue) this shard's cells; build the table when every cell of the grid is done. */
export async function runExperiment(spec: ExperimentSpec, o: ExperimentOptions): Promise<ExperimentSummary> {
  const seeds = o.seeds ?? spec.seeds[o.preset];
  const dir = resultsDir(spec, o.preset, o.resultsRoot);
  fs.mkdirSync(path.join(dir, 'cells'), { recursive: true });
  const mine = shardCells(experimentCells(spec, seeds), o.shard);
  // One encoder for the whole grid, so every cell is conditioned and judged by the same E.
  const encDir = path.join(o.runsRoot ?? 'runs', `${spec.name}-${o.preset}`);
  const encoderFile = o.encoderFile ?? (await sharedEncoder(spec, o, encDir));
  const done: string[] = [];
  const skipped: string[] = [];
  for (const cell of mine) {
    const file = cellFile(dir, cell);
    if (fs.existsSync(file)) {
      skipped.push(cell.id);
      continue;
    }
    const result = await runCell(spec, cell, o, { file: encoderFile });
    writeJsonAtomic(file, result);
    done.push(cell.id);
  }
  const merged = mergeExperiment(spec, { preset: o.preset, seeds, resultsRoot: o.resultsRoot, backend: o.backend, allowMissing: true });
  return { dir, done, skipped, missing: merged.missing, table: merged.table };
}

async function sharedEncoder(spec: ExperimentSpec, o: ExperimentOptions, encDir: string): Promise<string> {
  const cfg = cellConfig(spec, o.preset, 1);
  const opts: RunOptions = { cfg, dataDir: o.dataDir, outDir: encDir, resume: true, backend: o.backend, progress: o.progress, log: o.log };
  const { encoder } = await prepareEncoder(opts);
  encoder.dispose();
  return path.join(encDir, 'encoder.npz');
}

/**
 * Build the table from the cell files in the results folder (after copying in every shard's
 * cells/). Writes table.csv/.md/.json, metrics.json, report.md and provenance.json.
 */
export function mergeExperiment(
  spec: ExperimentSpec,
  o: { preset: PresetName; seeds?: number[]; resultsRoot?: string; backend: string; allowMissing?: boolean },
): { missing: string[]; table: TableRow[] | null } {
  const seeds = o.seeds ?? spec.seeds[o.preset];
  const dir = resultsDir(spec, o.preset, o.resultsRoot);
  const cells = experimentCells(spec, seeds);
  const missing = cells.filter((c) => !fs.existsSync(cellFile(dir, c))).map((c) => c.id);
  if (missing.length > 0) {
    if (o.allowMissing) return { missing, table: null };
    throw new Error(`${dir}: cannot build the table, missing cells: ${missing.join(', ')}`);
  }
  const results = cells.map((c) => JSON.parse(fs.readFileSync(cellFile(dir, c), 'utf8')) as CellResult);
  const columns = tableColumns(spec, results);
  const rows: TableRow[] = spec.variants.map((v) =>
    aggregateRow(v.label, results.filter((r) => r.cell.variant === v.id).map((r) => r.metrics), columns),
  );
  // The real data's own scores, as the paper reports real-data Inception scores.
  const real: Record<string, unknown> = {
    classifier_score_mean: results[0].metrics.real_classifier_score_mean ?? null,
    inception_score_mean: results[0].metrics.real_inception_score_mean ?? null,
    class_consistency: results[0].metrics.real_class_consistency ?? null,
  };
  for (const j of spec.judges ?? []) real[`${j.id}_class_consistency`] = results[0].metrics[`real_${j.id}_class_consistency`] ?? null;
  rows.push(aggregateRow('Real data (test split)', [real], columns));
  // The table's backend is the cells' (a merge may run anywhere).
  const backends = [...new Set(results.map((r) => r.provenance.backend))].join(', ');
  const prov = provenance({ seed: seeds, backend: backends, preset: o.preset, scale: cellConfig(spec, o.preset, seeds[0]).scale });
  const cellsProv = results.map((r) => ({ cell: r.cell.id, ...r.provenance }));
  writeFileAtomic(path.join(dir, 'table.csv'), toCsv(rows));
  writeJsonAtomic(path.join(dir, 'table.json'), { title: spec.title, columns, rows: toJsonRows(rows), provenance: prov, cells: cellsProv });
  writeFileAtomic(path.join(dir, 'table.md'), toMarkdown(rows, columns));
  // metrics.json: the first variant's metrics (the experiment's headline model, mean over seeds),
  // plus every cell's own metrics.
  const headline = results.filter((r) => r.cell.variant === spec.variants[0].id).map((r) => r.metrics);
  const flat: Record<string, unknown> = {};
  for (const key of Object.keys(headline[0] ?? {})) {
    const ms = meanStd(headline.map((m) => m[key] as number));
    flat[key] = typeof headline[0][key] === 'number' && ms ? ms.mean : headline[0][key];
  }
  writeJsonAtomic(path.join(dir, 'metrics.json'), { variant: spec.variants[0].id, seeds, ...flat, per_cell: Object.fromEntries(results.map((r) => [r.cell.id, r.metrics])) });
  writeJsonAtomic(path.join(dir, 'history.json'), Object.fromEntries(results.map((r) => [r.cell.id, r.history])));
  writeJsonAtomic(path.join(dir, 'provenance.json'), { experiment: spec.name, ...prov, cells: cellsProv });
  writeFileAtomic(path.join(dir, 'report.md'), report(spec, o.preset, rows, columns, results, prov, dir));
  return { missing: [], table: rows };
}

function report(spec: ExperimentSpec, preset: PresetName, rows: TableRow[], columns: Column[], results: CellResult[], prov: Provenance, dir: string): string {
  const grids = spec.variants
    .map((v) => {
      const imgs = GRID_KINDS.map((k) => `grids/${v.id}-${k}.png`).filter((f) => fs.existsSync(path.join(dir, f)));
      return `### ${v.label}\n\n${imgs.map((f) => `![${f}](${f})`).join('\n')}\n`;
    })
    .join('\n');
  const cells = results.map((r) => `- ${r.cell.id}: ${r.provenance.command} (seed ${r.cell.seed}, ${r.trainSeconds.toFixed(0)} s training, backend ${r.provenance.backend}, commit ${r.provenance.commit.slice(0, 10)}${r.provenance.dirty ? ' + uncommitted changes' : ''})`).join('\n');
  return `# ${spec.title} (preset ${preset})

Scale: ${prov.scale}
Machine: ${prov.machine}; backend ${prov.backend}; commit ${prov.commit}${prov.dirty ? ' (with uncommitted changes)' : ''}.
Seeds: ${JSON.stringify(prov.seed)}. Table cells are mean ± std over seeds. The classifier score is the
Inception-score formula with this experiment's encoder as the classifier, not an Inception score.

${toMarkdown(rows, columns)}
## Sample grids (first seed)

Rows are classes 0..9. classes: fresh noise per cell; level1: fixed z0 per row, z1 varies (coarse
shape); level0: fixed fc3 per row, z0 varies (fine detail).

${grids}
## Cells

${cells}
`;
}

/** What the notebooks read: the table and per-cell metrics and training curves, if they exist. */
export function loadExperimentResults(spec: ExperimentSpec, preset: PresetName, root = 'results') {
  const dir = resultsDir(spec, preset, root);
  const read = (f: string) => (fs.existsSync(path.join(dir, f)) ? JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) : null);
  return { dir, table: read('table.json'), metrics: read('metrics.json'), history: read('history.json'), provenance: read('provenance.json') };
}
