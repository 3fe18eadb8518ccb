/**
 * What the notebooks (notebooks/*.ipynb, tslab kernel) call, so that they stay thin and the logic is
 * tested here: settings from the environment, "load the results or run the experiment", sample and
 * variation grids, the results table, and plotly.js figures of training curves and metrics.
 *
 * Display goes through tslab's `display` (only present under the kernel; tslab is a dev dependency,
 * loaded on first use) unless `setDisplay` installs another sink (tests). Figures are plain
 * `{ data, layout }` objects built by pure functions (`lossCurvesFigure`, `metricBarFigure`) and drawn
 * by HTML with a <script> calling `Plotly.newPlot`, which renders in JupyterLab and in the classic
 * Notebook alike. plotly.js itself is inlined once per session by `enablePlotly()` (no internet).
 *
 * Notebooks import the compiled module ('../dist/lib/notebook'); `npm run build` creates it.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as dfd from 'danfojs-node';
import { initBackend } from './backend';
import { CellResult, ExperimentSpec, loadExperimentResults, runExperiment } from './experiment';
import { gridPng } from './png';
import { PRESETS, PresetName } from './presets';
import { GRID_KINDS, GridKind, sampleGrid, toImageStack } from './sample';
import { Column } from './table';
import { HistoryEntry, loadModel } from './train';

// ---------------------------------------------------------------------------------------------
// Display sink.

/** The part of tslab's `display` the notebooks use. */
export interface Display {
  png(b: Uint8Array): void;
  html(s: string): void;
  markdown(s: string): void;
  text(s: string): void;
}

let sink: Display | null = null;

/** Send displays somewhere else than tslab (tests); `null` restores tslab. */
export function setDisplay(d: Display | null): void {
  sink = d;
}

export function display(): Display {
  if (sink) return sink;
  const tslab = require('tslab') as { display: Display };
  return tslab.display;
}

// ---------------------------------------------------------------------------------------------
// Settings.

export interface NotebookSettings {
  preset: PresetName;
  resultsRoot: string;
  runsRoot: string;
  dataDir?: string;
  encoderFile?: string;
  meanImageFile?: string;
  seeds?: number[];
}

/** The repository root: the nearest folder above this file whose package.json is sgan-ts. */
export function repoRoot(from: string = __dirname): string {
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sgan-ts') return dir;
      } catch {
        // not ours; keep looking
      }
    }
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..');
  }
}

export function parsePreset(s: string): PresetName {
  if (!(PRESETS as readonly string[]).includes(s)) throw new Error(`SGAN_PRESET must be one of ${PRESETS.join('|')}, got "${s}"`);
  return s as PresetName;
}

/**
 * Settings from the environment, the notebooks' only knobs:
 *   SGAN_PRESET (default quick), SGAN_RESULTS (default <repo>/results), SGAN_RUNS (<repo>/runs),
 *   SGAN_DATA_DIR (CIFAR-10/SVHN folder), SGAN_ENCODER / SGAN_MEAN_IMAGE (a pre-trained judge
 *   encoder instead of pre-training one), SGAN_SEEDS ("1,2").
 * Relative paths are relative to the repository root (a kernel runs in notebooks/).
 */
export function notebookSettings(env: NodeJS.ProcessEnv = process.env, root: string = repoRoot()): NotebookSettings {
  const p = (v: string | undefined) => (v === undefined || v === '' ? undefined : path.resolve(root, v));
  let seeds: number[] | undefined;
  if (env.SGAN_SEEDS !== undefined && env.SGAN_SEEDS !== '') {
    seeds = env.SGAN_SEEDS.split(',').map((s) => Number(s.trim()));
    if (seeds.some((n) => !Number.isInteger(n))) throw new Error(`SGAN_SEEDS must be comma-separated integers, got "${env.SGAN_SEEDS}"`);
  }
  return {
    preset: parsePreset(env.SGAN_PRESET ?? 'quick'),
    resultsRoot: p(env.SGAN_RESULTS) ?? path.join(root, 'results'),
    runsRoot: p(env.SGAN_RUNS) ?? path.join(root, 'runs'),
    dataDir: p(env.SGAN_DATA_DIR),
    encoderFile: p(env.SGAN_ENCODER),
    meanImageFile: p(env.SGAN_MEAN_IMAGE),
    seeds,
  };
}

// ---------------------------------------------------------------------------------------------
// Load the results, or run the experiment.

/** table.json as lib/experiment.ts writes it. */
export interface TableJson {
  title: string;
  columns: Column[];
  rows: Array<Record<string, string | number | null>>;
}

export type ExperimentResults = ReturnType<typeof loadExperimentResults>;

export interface NotebookExperiment {
  spec: ExperimentSpec;
  preset: PresetName;
  /** The seeds of the grid (the spec's for the preset unless SGAN_SEEDS / settings say otherwise). */
  seeds: number[];
  /** Where the cells' run folders (checkpoints) are. */
  runsRoot: string;
  /** loaded: results existed; ran: trained and evaluated now; needs-data: skipped (see note). */
  status: 'loaded' | 'ran' | 'needs-data';
  note: string;
  results: ExperimentResults | null;
}

const DATASET_NEEDS: Record<string, string> = {
  cifar10: 'CIFAR-10, binary version (data_batch_1.bin ... data_batch_5.bin, test_batch.bin)',
  svhn: 'SVHN, cropped digits (train_32x32.mat, test_32x32.mat)',
};

/** The "needs dataset" note for a dataset other than MNIST (MNIST ships with the package). */
export function needsDataNote(spec: ExperimentSpec): string {
  const what = DATASET_NEEDS[spec.dataset] ?? spec.dataset;
  return (
    `needs dataset: ${what}. Skipping the ${spec.name} experiment. To run it, download the files ` +
    `(\`node bin/sgan.js data download ${spec.dataset} --data-dir data/${spec.dataset}\`) and start Jupyter ` +
    `with \`SGAN_DATA_DIR=data/${spec.dataset}\` (relative to the repository root) in its environment.`
  );
}

function hasTable(r: ExperimentResults): boolean {
  return r.table !== null && Array.isArray((r.table as TableJson).rows);
}

/**
 * The experiment's results at this preset: read from the results folder when its table exists,
 * else run the experiment (resumable: finished cells are skipped) and read them. CIFAR-10 and SVHN
 * without a data folder are skipped with a note instead of failing.
 */
export async function openExperiment(
  spec: ExperimentSpec,
  s: NotebookSettings,
  o: { backend?: string; log?: (line: string) => void; progress?: boolean } = {},
): Promise<NotebookExperiment> {
  const base = { spec, preset: s.preset, seeds: s.seeds ?? spec.seeds[s.preset], runsRoot: s.runsRoot };
  const existing = loadExperimentResults(spec, s.preset, s.resultsRoot);
  if (hasTable(existing)) {
    return { ...base, status: 'loaded', note: `loaded ${spec.name} results (preset ${s.preset}) from ${existing.dir}`, results: existing };
  }
  if (spec.dataset !== 'mnist') {
    if (s.dataDir === undefined) return { ...base, status: 'needs-data', note: needsDataNote(spec), results: null };
    if (!fs.existsSync(s.dataDir)) throw new Error(`SGAN_DATA_DIR=${s.dataDir}: no such folder (${spec.name} needs ${DATASET_NEEDS[spec.dataset] ?? spec.dataset})`);
  }
  const backend = o.backend ?? (await initBackend());
  const summary = await runExperiment(spec, {
    preset: s.preset, seeds: s.seeds, dataDir: s.dataDir, resultsRoot: s.resultsRoot, runsRoot: s.runsRoot,
    encoderFile: s.encoderFile, meanImageFile: s.meanImageFile, backend, progress: o.progress ?? false, log: o.log,
  });
  if (summary.table === null) throw new Error(`${summary.dir}: the table is incomplete, missing cells: ${summary.missing.join(', ')}`);
  const results = loadExperimentResults(spec, s.preset, s.resultsRoot);
  const ran = summary.done.length;
  return { ...base, status: 'ran', note: `ran ${spec.name} at preset ${s.preset} (${ran} cell${ran === 1 ? '' : 's'} trained and evaluated); results in ${results.dir}`, results };
}

/** One line on what happened (and, for needs-data, what to do). */
export function showStatus(exp: NotebookExperiment): void {
  display().markdown(exp.status === 'needs-data' ? `**${exp.note}**` : exp.note);
}

function skipped(exp: NotebookExperiment): boolean {
  if (exp.results !== null) return false;
  display().markdown(`*skipped: ${exp.status === 'needs-data' ? 'needs dataset (see above)' : 'no results'}*`);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Images.

export const GRID_CAPTIONS: Record<GridKind, string> = {
  classes: 'rows are classes 0-9, fresh noise at every level in each cell',
  level1: 'fixed label and z0 per row; z1 varies along the row (level 1: coarse pose, shape, width)',
  level0: 'fixed fc3 per row; z0 varies along the row (level 0: fine detail)',
};

export function gridFile(dir: string, variant: string, kind: GridKind): string {
  return path.join(dir, 'grids', `${variant}-${kind}.png`);
}

/** Show a PNG inline, from a file or bytes. */
export function showPng(fileOrBytes: string | Uint8Array): void {
  display().png(typeof fileOrBytes === 'string' ? fs.readFileSync(fileOrBytes) : fileOrBytes);
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** PNGs next to each other, each with a caption (an <img> with a data: URL each). */
export function imagesHtml(items: Array<{ title: string; png: Uint8Array }>): string {
  const figs = items.map(
    (it) =>
      `<figure style="margin:0 16px 8px 0;display:inline-block;vertical-align:top">` +
      `<img src="data:image/png;base64,${Buffer.from(it.png).toString('base64')}" alt="${escapeHtml(it.title)}"/>` +
      `<figcaption style="text-align:center">${escapeHtml(it.title)}</figcaption></figure>`,
  );
  return `<div class="sgan-images" style="display:flex;flex-wrap:wrap;align-items:flex-start">${figs.join('')}</div>`;
}

export function showImagesSideBySide(items: Array<{ title: string; png: Uint8Array }>): void {
  display().html(imagesHtml(items));
}

/** The grids of one variant written by the experiment (first seed), each with its caption. */
export function showSampleGrids(exp: NotebookExperiment, variant = exp.spec.variants[0].id, kinds: readonly GridKind[] = GRID_KINDS): void {
  if (skipped(exp)) return;
  const dir = exp.results!.dir;
  for (const kind of kinds) {
    const f = gridFile(dir, variant, kind);
    if (!fs.existsSync(f)) {
      const singleStack = Boolean(exp.spec.variants.find((v) => v.id === variant)?.ablation.baseline);
      display().markdown(`*${variant} ${kind}: no grid (${kind === 'level1' && singleStack ? 'a single-stack model has no level 1' : `missing ${f}`})*`);
      continue;
    }
    display().markdown(`**${variant}, ${kind}**: ${GRID_CAPTIONS[kind]}`);
    showPng(f);
  }
}

/** One grid kind for several variants side by side (e.g. level 0 with and without entropy loss). */
export function showGridComparison(exp: NotebookExperiment, kind: GridKind, variants: string[]): void {
  if (skipped(exp)) return;
  const items = variants.map((id) => {
    const v = exp.spec.variants.find((x) => x.id === id);
    if (!v) throw new Error(`${exp.spec.name}: no variant "${id}" (has ${exp.spec.variants.map((x) => x.id).join(', ')})`);
    return { title: v.label, png: fs.readFileSync(gridFile(exp.results!.dir, id, kind)) };
  });
  display().markdown(`**${kind}**: ${GRID_CAPTIONS[kind]}`);
  showImagesSideBySide(items);
}

/**
 * The checkpoint of one cell (default: the first seed of the first variant). The cell file records
 * it as the run saw it: a relative path is taken from the repository root (where `sgan experiment`
 * runs), else the cell's folder under the runs root is used.
 */
export function cellCheckpoint(exp: NotebookExperiment, cellId?: string): string {
  if (exp.results === null) throw new Error(`${exp.spec.name}: no results (${exp.note})`);
  const id = cellId ?? `${exp.spec.variants[0].id}-s${exp.seeds[0]}`;
  const file = path.join(exp.results.dir, 'cells', `${id}.json`);
  if (!fs.existsSync(file)) throw new Error(`${file}: no such cell`);
  const recorded = (JSON.parse(fs.readFileSync(file, 'utf8')) as CellResult).checkpoint;
  const candidates = [path.resolve(repoRoot(), recorded), path.join(exp.runsRoot, `${exp.spec.name}-${exp.preset}`, id)];
  const found = candidates.find((c) => fs.existsSync(c));
  if (!found) throw new Error(`cell ${id}: no checkpoint at ${candidates.join(' or ')}`);
  return found;
}

/**
 * Render a grid from a checkpoint (run folder or checkpoint file) in memory: "level0" fixes fc3
 * per row and varies z0, "level1" fixes the label and z0 and varies z1, "classes" varies all.
 * A different seed than the experiment's (1) gives fresh rows. Needs a backend (initBackend()).
 */
export async function variationGridPng(checkpoint: string, kind: GridKind, opts: { cols?: number; seed?: number; scale?: number } = {}): Promise<Buffer> {
  const cols = opts.cols ?? 10;
  const { model } = loadModel(checkpoint);
  try {
    const x = sampleGrid(model, kind, cols, opts.seed ?? 1);
    try {
      return gridPng(await toImageStack(x), { cols, scale: opts.scale ?? (x.shape[1] <= 32 ? 2 : 1), pad: 2 });
    } finally {
      x.dispose();
    }
  } finally {
    model.dispose();
  }
}

export async function showVariationGrid(checkpoint: string, kind: GridKind, opts: { cols?: number; seed?: number; scale?: number } = {}): Promise<void> {
  display().markdown(`**${kind}, seed ${opts.seed ?? 1}**: ${GRID_CAPTIONS[kind]}`);
  showPng(await variationGridPng(checkpoint, kind, opts));
}

// ---------------------------------------------------------------------------------------------
// The table.

/** "mean ± std" (just "mean" for one seed, "–" when absent), as in table.md. */
export function formatCell(row: Record<string, string | number | null>, c: Column): string {
  const m = row[`${c.key}_mean`];
  const s = row[`${c.key}_std`];
  if (typeof m !== 'number') return '–';
  return Number(row.seeds) > 1 && typeof s === 'number' ? `${m.toFixed(c.digits)} ± ${s.toFixed(c.digits)}` : m.toFixed(c.digits);
}

function asTable(t: unknown): TableJson {
  const tt = t as TableJson | null;
  if (!tt || !Array.isArray(tt.columns) || !Array.isArray(tt.rows)) throw new Error('not a table.json (expected { title, columns, rows })');
  return tt;
}

/** The table as a DataFrame of formatted cells: one row per table row, one column per metric. */
export function tableFrame(table: TableJson): dfd.DataFrame {
  const t = asTable(table);
  const rows = t.rows.map((r) => {
    const out: Record<string, string | number> = { row: String(r.row), seeds: Number(r.seeds) };
    for (const c of t.columns) out[c.label] = formatCell(r, c);
    return out;
  });
  return new dfd.DataFrame(rows, { columns: ['row', 'seeds', ...t.columns.map((c) => c.label)] });
}

export function tableHtml(table: TableJson): string {
  const df = tableFrame(table);
  const head = `<tr>${(df.columns as string[]).map((c) => `<th>${escapeHtml(c === 'row' ? '' : c)}</th>`).join('')}</tr>`;
  const body = (df.values as unknown[][]).map((r) => `<tr>${r.map((v, i) => (i === 0 ? `<th style="text-align:left">${escapeHtml(String(v))}</th>` : `<td>${escapeHtml(String(v))}</td>`)).join('')}</tr>`).join('\n');
  const caption = table.title ? `<caption>${escapeHtml(table.title)}</caption>` : '';
  return `<table class="sgan-table">${caption}\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody></table>`;
}

export function showTable(tableOrExp: TableJson | NotebookExperiment): void {
  if ('spec' in tableOrExp) {
    if (skipped(tableOrExp)) return;
    display().html(tableHtml(asTable(tableOrExp.results!.table)));
    return;
  }
  display().html(tableHtml(tableOrExp));
}

// ---------------------------------------------------------------------------------------------
// Figures (plotly.js).

export interface Trace {
  type: 'scatter' | 'bar';
  name?: string;
  x: Array<number | string>;
  y: Array<number | null>;
  mode?: 'lines' | 'markers' | 'lines+markers';
  legendgroup?: string;
  error_y?: { type: 'data'; array: number[]; visible: boolean };
}

export interface Figure {
  data: Trace[];
  layout: {
    title: { text: string };
    xaxis: { title: { text: string }; automargin?: boolean };
    yaxis: { title: { text: string }; type?: 'linear' | 'log' };
    height?: number;
    [k: string]: unknown;
  };
}

/**
 * Training curves from history.json: one line per (cell, loss), x = step. `losses` keeps only those
 * losses (e.g. ['D0', 'G0.ent']), `cells` only those cells.
 */
export function lossCurvesFigure(
  history: Record<string, HistoryEntry[]> | null,
  opts: { losses?: string[]; cells?: string[]; title?: string } = {},
): Figure {
  const h = history ?? {};
  const cells = (opts.cells ?? Object.keys(h)).filter((c) => Array.isArray(h[c]));
  const data: Trace[] = [];
  for (const cell of cells) {
    const entries = h[cell];
    const names: string[] = [];
    for (const e of entries) for (const k of Object.keys(e.losses)) if (!names.includes(k)) names.push(k);
    for (const loss of opts.losses ?? names) {
      if (!names.includes(loss)) continue;
      data.push({
        type: 'scatter',
        mode: entries.length > 1 ? 'lines' : 'markers',
        name: cells.length > 1 ? `${cell}: ${loss}` : loss,
        legendgroup: cell,
        x: entries.map((e) => e.step),
        y: entries.map((e) => (typeof e.losses[loss] === 'number' && Number.isFinite(e.losses[loss]) ? e.losses[loss] : null)),
      });
    }
  }
  const title = opts.title ?? `Training losses${opts.losses ? ` (${opts.losses.join(', ')})` : ''}`;
  return {
    data,
    layout: {
      title: { text: data.length > 0 ? title : `${title}: no training history` },
      xaxis: { title: { text: 'step' } },
      yaxis: { title: { text: 'loss' } },
      height: 420,
    },
  };
}

/** A bar per table row for one metric (a column key of table.json), ± std over seeds as error bars. */
export function metricBarFigure(table: TableJson, metric: string, opts: { includeReal?: boolean } = {}): Figure {
  const t = asTable(table);
  const col = t.columns.find((c) => c.key === metric);
  if (!col) throw new Error(`unknown metric "${metric}"; the table has ${t.columns.map((c) => c.key).join(', ')}`);
  const rows = t.rows.filter((r) => typeof r[`${metric}_mean`] === 'number' && (opts.includeReal !== false || !String(r.row).startsWith('Real data')));
  const std = rows.map((r) => (typeof r[`${metric}_std`] === 'number' ? (r[`${metric}_std`] as number) : 0));
  return {
    data: [
      {
        type: 'bar',
        name: col.label,
        x: rows.map((r) => String(r.row)),
        y: rows.map((r) => r[`${metric}_mean`] as number),
        error_y: { type: 'data', array: std, visible: rows.some((r) => Number(r.seeds) > 1) },
      },
    ],
    layout: {
      title: { text: rows.length > 0 ? col.label : `${col.label}: no values` },
      xaxis: { title: { text: '' }, automargin: true },
      yaxis: { title: { text: col.label } },
      height: 420,
    },
  };
}

/** The plotly.js bundle's source (node_modules/plotly.js-dist), minified with esbuild when it is there. */
let plotlyCache: string | null = null;
export function plotlySource(): string {
  if (plotlyCache !== null) return plotlyCache;
  const file = require.resolve('plotly.js-dist/plotly.js');
  const raw = fs.readFileSync(file, 'utf8');
  const version = (/plotly\.js v([\d.]+)/.exec(raw.slice(0, 200)) ?? ['', 'unknown'])[1];
  // 10.8 MB as shipped, 4.8 MB minified: worth it in every notebook that plots. Cached on disk.
  const cached = path.join(os.tmpdir(), `sgan-plotly-${version}-${raw.length}.min.js`);
  if (fs.existsSync(cached)) return (plotlyCache = fs.readFileSync(cached, 'utf8'));
  let src = raw;
  try {
    // esbuild comes with tsx (a dependency); without it the bundle is inlined as shipped.
    const esbuild = require('esbuild') as { transformSync(s: string, o: { minify: boolean }): { code: string } };
    src = esbuild.transformSync(raw, { minify: true }).code;
    const tmp = `${cached}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, src);
    fs.renameSync(tmp, cached);
  } catch {
    src = raw;
  }
  return (plotlyCache = src);
}

/** Keep a script's text from ending its <script> element early. */
function scriptSafe(js: string): string {
  return js.replace(/<\/(script)/gi, '<\\/$1');
}

/**
 * HTML whose script defines window.Plotly from an inline copy of plotly.js, unless the page has it
 * already. `define`/`module`/`exports` are shadowed so the UMD bundle does not register itself with
 * RequireJS (the classic Notebook has it) but sets window.Plotly, in JupyterLab and Notebook alike.
 */
export function plotlyLoaderHtml(src: string = plotlySource()): string {
  return (
    `<script type="text/javascript">\n` +
    `if (typeof window.Plotly === 'undefined') {\n` +
    `(function () { var define, module, exports;\n${scriptSafe(src)}\n}).call(window);\n` +
    `}\n</script>\n<div class="sgan-plotly-loaded" style="display:none">plotly.js loaded</div>`
  );
}

let plotlyEnabled = false;

/**
 * Load plotly.js into the notebook page. Figures call it themselves the first time in a kernel
 * session; call it again after reloading the page (the page-side guard skips a second copy).
 */
export function enablePlotly(): void {
  display().html(plotlyLoaderHtml());
  plotlyEnabled = true;
}

/** JSON for inside a <script>: no "<" that could close it. */
function jsonForScript(v: unknown): string {
  return JSON.stringify(v).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/** A <div> and a <script> that draws the figure into it once window.Plotly is there (up to 30 s). */
export function figureHtml(fig: Figure, id = `sgan-plot-${randomBytes(6).toString('hex')}`): string {
  const height = fig.layout.height ?? 420;
  return (
    `<div id="${id}" class="sgan-plot" style="width:100%;min-height:${height}px"></div>\n` +
    `<script type="text/javascript">\n(function () {\n` +
    `  var fig = ${jsonForScript(fig)};\n` +
    `  var tries = 0;\n` +
    `  function draw() {\n` +
    `    var el = document.getElementById(${JSON.stringify(id)});\n` +
    `    if (el && window.Plotly) { window.Plotly.newPlot(el, fig.data, fig.layout, { responsive: true }); return; }\n` +
    `    if (++tries < 600) { setTimeout(draw, 50); return; }\n` +
    `    if (el) el.textContent = 'plotly.js is not loaded in this page: run enablePlotly() (dist/lib/notebook) first';\n` +
    `  }\n  draw();\n})();\n</script>`
  );
}

export function showFigure(fig: Figure): void {
  if (!plotlyEnabled) enablePlotly();
  display().html(figureHtml(fig));
}

/** Training curves of an experiment (all cells; `losses` to pick some). */
export function showTrainingCurves(exp: NotebookExperiment, opts: { losses?: string[]; cells?: string[]; title?: string } = {}): void {
  if (skipped(exp)) return;
  showFigure(lossCurvesFigure(exp.results!.history as Record<string, HistoryEntry[]> | null, opts));
}

/** A bar chart of one table column over the table's rows. */
export function showMetricBars(exp: NotebookExperiment, metric: string, opts: { includeReal?: boolean } = {}): void {
  if (skipped(exp)) return;
  showFigure(metricBarFigure(asTable(exp.results!.table), metric, opts));
}
