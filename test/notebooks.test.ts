// The notebooks: lib/notebook.ts's pure parts (settings, figure specs, table, plotly loader), the
// committed .ipynb files (no outputs), and every notebook executed top to bottom at the smoke preset
// through the real Jupyter client (jupyter nbconvert --execute) with the tslab kernel.
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vm from 'node:vm';
import { cifar10 } from '../experiments/cifar10';
import { mnist } from '../experiments/mnist';
import { svhn } from '../experiments/svhn';
import { initBackend } from '../lib/backend';
import { TABLE_COLUMNS } from '../lib/experiment';
import * as nb from '../lib/notebook';
import { gridPng, readPng } from '../lib/png';
import { HistoryEntry } from '../lib/train';

const ROOT = path.resolve(__dirname, '..');
const NOTEBOOKS = ['mnist', 'cifar10', 'svhn', 'ablation'];
const tmp = (p: string) => fs.mkdtempSync(path.join(os.tmpdir(), `sgan-${p}-`));

/** A display sink that records what the notebook helpers show. */
function recorder() {
  const shown: Array<{ kind: 'png' | 'html' | 'markdown' | 'text'; value: string | Uint8Array }> = [];
  const d: nb.Display = {
    png: (b) => shown.push({ kind: 'png', value: b }),
    html: (s) => shown.push({ kind: 'html', value: s }),
    markdown: (s) => shown.push({ kind: 'markdown', value: s }),
    text: (s) => shown.push({ kind: 'text', value: s }),
  };
  return { d, shown };
}

const tableJson = (): nb.TableJson => ({
  title: 'Ablation <test>',
  columns: TABLE_COLUMNS,
  rows: [
    { row: 'SGAN (joint)', seeds: 3, class_consistency_mean: 0.9, class_consistency_std: 0.05, fid_mean: 12.5, fid_std: 1.25 },
    { row: 'SGAN without entropy loss', seeds: 3, class_consistency_mean: 0.8, class_consistency_std: 0.1, fid_mean: null, fid_std: null },
    { row: 'Real data (test split)', seeds: 1, class_consistency_mean: 0.99, class_consistency_std: 0, fid_mean: null, fid_std: null },
  ],
});

const entry = (step: number, losses: Record<string, number>): HistoryEntry => ({ step, losses, seconds: 1 });

describe('lib/notebook: settings', () => {
  test('defaults: quick preset, results/ and runs/ under the repository root', () => {
    const s = nb.notebookSettings({}, '/repo');
    assert.deepEqual(s, { preset: 'quick', resultsRoot: '/repo/results', runsRoot: '/repo/runs', dataDir: undefined, encoderFile: undefined, meanImageFile: undefined, seeds: undefined });
    assert.equal(nb.repoRoot(), ROOT);
  });
  test('environment: preset, relative paths against the repository root, seeds', () => {
    const s = nb.notebookSettings({ SGAN_PRESET: 'smoke', SGAN_RESULTS: 'out/r', SGAN_RUNS: '/abs/runs', SGAN_DATA_DIR: 'data/cifar10', SGAN_SEEDS: '1, 2' }, '/repo');
    assert.equal(s.preset, 'smoke');
    assert.equal(s.resultsRoot, '/repo/out/r');
    assert.equal(s.runsRoot, '/abs/runs');
    assert.equal(s.dataDir, '/repo/data/cifar10');
    assert.deepEqual(s.seeds, [1, 2]);
  });
  test('a bad preset or seed list is an error naming the variable', () => {
    assert.throws(() => nb.notebookSettings({ SGAN_PRESET: 'fast' }, '/repo'), /SGAN_PRESET must be one of smoke\|quick\|paper, got "fast"/);
    assert.throws(() => nb.notebookSettings({ SGAN_SEEDS: '1,x' }, '/repo'), /SGAN_SEEDS/);
  });
});

describe('lib/notebook: figure specs', () => {
  const history = {
    'sgan-s1': [entry(1, { D0: 1.5, 'G0.ent': 0.1 }), entry(2, { D0: 1.25, 'G0.ent': NaN }), entry(3, { D0: 1.0, 'G0.ent': 0.3 })],
    'sgan-noent-s1': [entry(1, { D0: 2 }), entry(2, { D0: 3 })],
  };
  test('loss curves: one line per (cell, loss), x = step, non-finite losses as gaps', () => {
    const f = nb.lossCurvesFigure(history);
    assert.deepEqual(f.data.map((t) => t.name), ['sgan-s1: D0', 'sgan-s1: G0.ent', 'sgan-noent-s1: D0']);
    assert.deepEqual(f.data[0].x, [1, 2, 3]);
    assert.deepEqual(f.data[0].y, [1.5, 1.25, 1.0]);
    assert.deepEqual(f.data[1].y, [0.1, null, 0.3]);
    assert.equal(f.data[2].legendgroup, 'sgan-noent-s1');
    assert.equal(f.layout.xaxis.title.text, 'step');
    assert.ok(f.data.every((t) => t.type === 'scatter' && t.mode === 'lines'));
  });
  test('loss curves: filters by loss and cell; one cell names lines by loss only', () => {
    const f = nb.lossCurvesFigure(history, { losses: ['G0.ent'] });
    assert.deepEqual(f.data.map((t) => t.name), ['sgan-s1: G0.ent']); // the no-entropy cell has no G0.ent
    assert.match(f.layout.title.text, /G0\.ent/);
    const g = nb.lossCurvesFigure(history, { cells: ['sgan-noent-s1'] });
    assert.deepEqual(g.data.map((t) => t.name), ['D0']);
    const empty = nb.lossCurvesFigure(null);
    assert.equal(empty.data.length, 0);
    assert.match(empty.layout.title.text, /no training history/);
  });
  test('metric bars: rows with a value, ± std as error bars, real data optional', () => {
    const f = nb.metricBarFigure(tableJson(), 'class_consistency');
    assert.equal(f.data.length, 1);
    assert.deepEqual(f.data[0].x, ['SGAN (joint)', 'SGAN without entropy loss', 'Real data (test split)']);
    assert.deepEqual(f.data[0].y, [0.9, 0.8, 0.99]);
    assert.deepEqual(f.data[0].error_y, { type: 'data', array: [0.05, 0.1, 0], visible: true });
    assert.equal(f.layout.yaxis.title.text, 'class consistency');
    assert.deepEqual(nb.metricBarFigure(tableJson(), 'class_consistency', { includeReal: false }).data[0].x, ['SGAN (joint)', 'SGAN without entropy loss']);
    assert.deepEqual(nb.metricBarFigure(tableJson(), 'fid').data[0].x, ['SGAN (joint)']);
    assert.throws(() => nb.metricBarFigure(tableJson(), 'accuracy'), /unknown metric "accuracy"; the table has classifier_score_mean/);
  });
  test('figure HTML: a div and a script that calls Plotly.newPlot on it; data cannot close the script', () => {
    const f = nb.lossCurvesFigure({ '</script><b>x': [entry(1, { D0: 1 })] });
    const html = nb.figureHtml(f, 'plot-1');
    assert.match(html, /<div id="plot-1"/);
    assert.match(html, /window\.Plotly\.newPlot\(el, fig\.data, fig\.layout/);
    assert.equal(html.match(/<\/script>/g)?.length, 1);
    // The figure survives the trip: run the script against a fake page and a fake Plotly.
    const calls: unknown[][] = [];
    const el = { id: 'plot-1', textContent: '' };
    const script = html.slice(html.indexOf('<script type="text/javascript">') + 31, html.lastIndexOf('</script>'));
    vm.runInNewContext(script, { window: { Plotly: { newPlot: (...a: unknown[]) => calls.push(a) } }, document: { getElementById: (id: string) => (id === 'plot-1' ? el : null) }, setTimeout });
    assert.equal(calls.length, 1);
    assert.equal(calls[0][0], el);
    assert.deepEqual(JSON.parse(JSON.stringify(calls[0][1])), f.data);
  });
});

describe('lib/notebook: plotly.js loader', () => {
  // The UMD header plotly.js-dist ships (webpack): it prefers RequireJS's define when it is there.
  const umd = `(function(root, factory){ if(typeof exports==='object'&&typeof module==='object') module.exports=factory(); else if(typeof define==='function'&&define.amd) define([],factory); else if(typeof exports==='object') exports.Plotly=factory(); else root.Plotly=factory(); })(self, function(){ return { version: 'fake', s: '</script>' }; });`;
  const run = (html: string, ctx: Record<string, unknown>) => {
    const script = html.slice(html.indexOf('<script type="text/javascript">') + 31, html.indexOf('</script>'));
    vm.runInNewContext(script, ctx);
  };
  test('sets window.Plotly even where RequireJS is loaded (classic Notebook), once', () => {
    const html = nb.plotlyLoaderHtml(umd);
    assert.equal(html.match(/<\/script>/g)?.length, 1, 'the bundle text cannot close the <script>');
    const defined: unknown[] = [];
    const define = Object.assign((...a: unknown[]) => defined.push(a), { amd: {} });
    const win: Record<string, unknown> = {};
    const ctx = { window: win, self: win, define };
    run(html, ctx);
    assert.equal((win.Plotly as { version: string }).version, 'fake');
    assert.equal(defined.length, 0, 'plotly must not register as an anonymous AMD module');
    const first = win.Plotly;
    run(html, ctx);
    assert.equal(win.Plotly, first, 'a second load keeps the first Plotly');
  });
  test('the inlined bundle is plotly.js from node_modules', () => {
    const src = nb.plotlySource();
    assert.ok(src.length > 2_000_000, `plotly.js source is ${src.length} characters`);
    assert.match(src.slice(0, 2000), /define\.amd/);
    assert.match(src, /newPlot/);
  });
  test('figures load plotly.js first, once per session; enablePlotly() loads it again', () => {
    const { d, shown } = recorder();
    nb.setDisplay(d);
    try {
      nb.showFigure(nb.lossCurvesFigure({ a: [entry(1, { D0: 1 })] }));
      nb.showFigure(nb.lossCurvesFigure({ a: [entry(1, { D0: 2 })] }));
      nb.enablePlotly(); // explicitly (after a page reload): loads again
      const html = shown.map((s) => String(s.value));
      assert.equal(html.length, 4);
      assert.match(html[0], /typeof window\.Plotly === 'undefined'/);
      assert.match(html[1], /newPlot/);
      assert.match(html[2], /newPlot/);
      assert.match(html[3], /typeof window\.Plotly === 'undefined'/);
    } finally {
      nb.setDisplay(null);
    }
  });
});

describe('lib/notebook: tables and results', () => {
  test('table HTML: mean ± std per column, "–" when absent, escaped', () => {
    const df = nb.tableFrame(tableJson());
    assert.deepEqual(df.shape, [3, 2 + TABLE_COLUMNS.length]);
    const html = nb.tableHtml(tableJson());
    assert.match(html, /<caption>Ablation &lt;test&gt;<\/caption>/);
    assert.match(html, /<th style="text-align:left">SGAN \(joint\)<\/th><td>3<\/td><td>–<\/td><td>–<\/td><td>12\.50 ± 1\.25<\/td><td>0\.900 ± 0\.050<\/td>/);
    assert.match(html, /Real data \(test split\)<\/th><td>1<\/td><td>–<\/td><td>–<\/td><td>–<\/td><td>0\.990<\/td>/);
    assert.equal(html.match(/<tr>/g)?.length, 4);
  });

  test('openExperiment: CIFAR-10/SVHN without a data folder are skipped with a note, not run', async () => {
    const root = tmp('nb-open');
    try {
      for (const spec of [cifar10, svhn]) {
        const exp = await nb.openExperiment(spec, { preset: 'smoke', resultsRoot: root, runsRoot: root }, { backend: 'cpu' });
        assert.equal(exp.status, 'needs-data');
        assert.equal(exp.results, null);
        assert.match(exp.note, new RegExp(`^needs dataset: .*SGAN_DATA_DIR=data/${spec.dataset}`));
        const { d, shown } = recorder();
        nb.setDisplay(d);
        try {
          nb.showStatus(exp);
          nb.showSampleGrids(exp);
          nb.showTrainingCurves(exp);
          nb.showTable(exp);
        } finally {
          nb.setDisplay(null);
        }
        assert.match(String(shown[0].value), /needs dataset/);
        assert.deepEqual(shown.slice(1).map((s) => s.value), Array(3).fill('*skipped: needs dataset (see above)*'));
      }
      assert.deepEqual(fs.readdirSync(root), [], 'nothing was run');
      await assert.rejects(nb.openExperiment(cifar10, { preset: 'smoke', resultsRoot: root, runsRoot: root, dataDir: path.join(root, 'nope') }, { backend: 'cpu' }), /SGAN_DATA_DIR=.*nope: no such folder/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  test('openExperiment loads existing results; grids are shown with captions, a missing one is named', async () => {
    const root = tmp('nb-load');
    try {
      const dir = path.join(root, 'mnist-quick');
      fs.mkdirSync(path.join(dir, 'grids'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'table.json'), JSON.stringify(tableJson()));
      fs.writeFileSync(path.join(dir, 'history.json'), JSON.stringify({ 'sgan-s1': [entry(1, { D0: 1 }), entry(2, { D0: 0.5 })] }));
      const png = gridPng({ data: new Float32Array(4 * 2 * 2).fill(0.5), n: 4, h: 2, w: 2, c: 1 }, { cols: 2 });
      fs.writeFileSync(path.join(dir, 'grids', 'sgan-classes.png'), png);
      fs.writeFileSync(path.join(dir, 'grids', 'sgan-level0.png'), png);
      const exp = await nb.openExperiment(mnist, { preset: 'quick', resultsRoot: root, runsRoot: root }, { backend: 'cpu' });
      assert.equal(exp.status, 'loaded');
      assert.equal(exp.results?.dir, dir);
      const { d, shown } = recorder();
      nb.setDisplay(d);
      try {
        nb.showSampleGrids(exp);
        nb.showTable(exp);
        nb.showTrainingCurves(exp);
      } finally {
        nb.setDisplay(null);
      }
      // plotly.js may have been loaded by an earlier test (once per process): the figure comes last.
      assert.deepEqual(shown.slice(0, 6).map((s) => s.kind), ['markdown', 'png', 'markdown', 'markdown', 'png', 'html']);
      assert.match(String(shown[shown.length - 1].value), /"x":\[1,2\],"y":\[1,0\.5\][\s\S]*Plotly\.newPlot/);
      assert.deepEqual(Buffer.from(shown[1].value as Uint8Array), png);
      assert.match(String(shown[2].value), /level1: no grid \(missing .*sgan-level1\.png\)/);
      assert.match(String(shown[3].value), /fixed fc3 per row; z0 varies/);
      assert.match(String(shown[5].value), /<table class="sgan-table">/);
      // The cell's checkpoint: as recorded when it exists, else the cell's folder under the runs root.
      fs.mkdirSync(path.join(dir, 'cells'));
      fs.writeFileSync(path.join(dir, 'cells', 'sgan-s1.json'), JSON.stringify({ checkpoint: 'runs/mnist-quick/sgan-s1/checkpoint.bin' }));
      assert.throws(() => nb.cellCheckpoint(exp), /cell sgan-s1: no checkpoint at .*runs\/mnist-quick\/sgan-s1\/checkpoint\.bin or /);
      fs.mkdirSync(path.join(root, 'mnist-quick', 'sgan-s1'));
      assert.equal(nb.cellCheckpoint(exp), path.join(root, 'mnist-quick', 'sgan-s1'));
      const abs = path.join(root, 'elsewhere.bin');
      fs.writeFileSync(abs, '');
      fs.writeFileSync(path.join(dir, 'cells', 'sgan-s1.json'), JSON.stringify({ checkpoint: abs }));
      assert.equal(nb.cellCheckpoint(exp), abs);
      assert.throws(() => nb.cellCheckpoint(exp, 'sgan-s9'), /sgan-s9\.json: no such cell/);
      const side = nb.imagesHtml([{ title: 'with <ent>', png }, { title: 'without', png }]);
      assert.equal(side.match(/<img src="data:image\/png;base64,/g)?.length, 2);
      assert.match(side, /with &lt;ent&gt;/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The committed notebooks.

function ipynbFiles(): string[] {
  const inDir = fs.readdirSync(path.join(ROOT, 'notebooks')).filter((f) => f.endsWith('.ipynb')).map((f) => path.join('notebooks', f));
  const git = spawnSync('git', ['ls-files', '*.ipynb'], { cwd: ROOT, encoding: 'utf8' });
  const tracked = git.status === 0 ? git.stdout.split('\n').filter((f) => f !== '') : [];
  return [...new Set([...inDir, ...tracked])].sort();
}

interface Ipynb {
  cells: Array<{ cell_type: string; source: string | string[]; outputs?: Array<Record<string, unknown>>; execution_count?: number | null }>;
  metadata: { kernelspec?: { name: string; language: string } };
  nbformat: number;
}

const readNb = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')) as Ipynb;
const src = (c: Ipynb['cells'][number]) => (Array.isArray(c.source) ? c.source.join('') : c.source);

describe('notebooks/*.ipynb as committed', () => {
  test('one notebook per experiment, tslab kernel, importing compiled code only', () => {
    const files = ipynbFiles();
    for (const name of NOTEBOOKS) assert.ok(files.includes(`notebooks/${name}.ipynb`), `notebooks/${name}.ipynb is missing`);
    for (const f of files.filter((x) => x.startsWith('notebooks/'))) {
      const n = readNb(path.join(ROOT, f));
      assert.equal(n.nbformat, 4);
      assert.deepEqual({ name: n.metadata.kernelspec?.name, language: n.metadata.kernelspec?.language }, { name: 'tslab', language: 'typescript' }, f);
      const code = n.cells.filter((c) => c.cell_type === 'code').map(src).join('\n');
      const imports = [...code.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      assert.ok(imports.length > 0, f);
      for (const i of imports) assert.match(i, /^\.\.\/dist\//, `${f} imports "${i}": notebooks import ../dist/ (tslab cannot compile ../lib)`);
      assert.match(code, /process\.env\.SGAN_PRESET \?\? 'quick'/, f);
      assert.match(code, /await initBackend\(\)/, f);
    }
  });
  test('no committed notebook carries outputs or execution counts', () => {
    for (const f of ipynbFiles()) {
      const n = readNb(path.join(ROOT, f));
      n.cells.forEach((c, i) => {
        if (c.cell_type !== 'code') return;
        assert.deepEqual(c.outputs, [], `${f} cell ${i} has outputs: clear them before committing (jupyter nbconvert --clear-output --inplace ${f})`);
        assert.equal(c.execution_count, null, `${f} cell ${i} has an execution count`);
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Executing them.

const INSTALL_HINT =
  'install Jupyter (Debian: apt-get install -y --no-install-recommends jupyter-nbconvert python3-nbclient jupyter-client ' +
  'jupyter-notebook python3-ipykernel; or pip install jupyterlab nbconvert), then run npm ci (tslab and dist/)';

/** Why the notebooks cannot be executed here, or null when they can. */
function jupyterMissing(): string | null {
  const r = spawnSync('jupyter', ['nbconvert', '--version'], { encoding: 'utf8', env: quietEnv() });
  if (r.error || r.status !== 0) return `jupyter nbconvert is not installed (${r.error?.message ?? r.stderr.trim().split('\n').pop()}); ${INSTALL_HINT}`;
  if (!fs.existsSync(path.join(ROOT, 'node_modules/.bin/tslab'))) return `node_modules/.bin/tslab is missing; ${INSTALL_HINT}`;
  return null;
}

function quietEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: '1', ...extra };
}

/**
 * A Jupyter data dir whose tslab kernelspec starts this checkout's tslab (first on JUPYTER_PATH), so
 * the test runs these sources whatever tslab `jupyter kernelspec list` has registered.
 */
function tslabKernelDir(): string {
  const dir = tmp('jupyter-path');
  const spec = path.join(dir, 'kernels', 'tslab');
  fs.mkdirSync(spec, { recursive: true });
  const argv = [path.join(ROOT, 'node_modules/.bin/tslab'), 'kernel', '--config-path', '{connection_file}'];
  fs.writeFileSync(path.join(spec, 'kernel.json'), JSON.stringify({ argv, display_name: 'TypeScript', language: 'typescript' }));
  return dir;
}

function buildDist(): void {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `npm run build failed; the notebooks import dist/:\n${r.stdout}${r.stderr}`);
}

interface Executed {
  code: number | null;
  log: string;
  nb: Ipynb | null;
  seconds: number;
}

/** jupyter nbconvert --execute one notebook into outDir; resolves when it exits (killed after limitS). */
function execute(notebook: string, outDir: string, env: NodeJS.ProcessEnv, limitS: number): Promise<Executed> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const args = ['nbconvert', '--to', 'notebook', '--execute', `--ExecutePreprocessor.timeout=${limitS}`, '--ExecutePreprocessor.kernel_name=tslab', '--output-dir', outDir, notebook];
    const child = spawn('jupyter', args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let log = '';
    child.stdout.on('data', (d) => (log += d));
    child.stderr.on('data', (d) => (log += d));
    const timer = setTimeout(() => {
      log += `\n[test] killed after ${limitS + 60} s`;
      try {
        process.kill(-child.pid!, 'SIGKILL'); // nbconvert and the kernel it started
      } catch {
        // already gone
      }
    }, (limitS + 60) * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const out = path.join(outDir, path.basename(notebook));
      resolve({ code, log, nb: fs.existsSync(out) ? readNb(out) : null, seconds: (Date.now() - t0) / 1000 });
    });
  });
}

type Output = Record<string, unknown> & { output_type: string };
const outputs = (n: Ipynb): Output[] => n.cells.flatMap((c) => (c.outputs ?? []) as Output[]);
const dataOf = (o: Output, mime: string): string | null => {
  const v = (o.data as Record<string, string | string[]> | undefined)?.[mime];
  return v === undefined ? null : Array.isArray(v) ? v.join('') : v;
};
const textOf = (o: Output) => (Array.isArray(o.text) ? (o.text as string[]).join('') : String(o.text ?? ''));

/**
 * Errors in an executed notebook: error outputs, and what tslab writes to stderr instead (stack
 * traces; "1:7 - Type ..." compile errors). tslab leaves execution_count null under nbclient, so
 * whether every cell ran is judged by the exit code and each test's checks of the last outputs.
 */
function notebookErrors(n: Ipynb): string[] {
  const errs: string[] = [];
  n.cells.forEach((c, i) => {
    if (c.cell_type !== 'code') return;
    for (const o of (c.outputs ?? []) as Output[]) {
      if (o.output_type === 'error') errs.push(`cell ${i}: ${String(o.ename)}: ${String(o.evalue)}`);
      if (o.output_type === 'stream' && o.name === 'stderr' && /(^|\n)\s*(\w*Error\b|at evalmachine\.|\d+:\d+ - )/.test(textOf(o))) errs.push(`cell ${i} stderr: ${textOf(o).slice(0, 1500)}`);
    }
  });
  return errs;
}

/** Fail unless nbconvert exited 0 and the executed notebook has no error in any cell. */
function assertRan(name: string, r: Executed): Ipynb {
  assert.ok(r.nb !== null, `${name}: no executed notebook written (exit ${r.code}):\n${r.log.slice(-4000)}`);
  const errs = notebookErrors(r.nb);
  assert.deepEqual(errs, [], `${name}: errors in the executed notebook:\n${errs.join('\n')}\n${r.log.slice(-2000)}`);
  assert.equal(r.code, 0, `${name}: jupyter nbconvert exited ${r.code}:\n${r.log.slice(-4000)}`);
  return r.nb;
}

const skipReason = jupyterMissing();
if (skipReason) process.stderr.write(`notebooks.test.ts: skipping notebook execution: ${skipReason}\n`);

describe('notebooks executed with jupyter nbconvert (SGAN_PRESET=smoke)', { skip: skipReason ?? false }, () => {
  let work = '';
  let env: NodeJS.ProcessEnv = {};
  const executed = new Map<string, Ipynb>();
  const times: string[] = [];

  before(() => {
    buildDist();
    work = tmp('notebooks');
    const jupyterPath = tslabKernelDir();
    env = quietEnv({
      SGAN_PRESET: 'smoke',
      SGAN_RESULTS: path.join(work, 'results'),
      SGAN_RUNS: path.join(work, 'runs'),
      JUPYTER_PATH: [jupyterPath, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
      JUPYTER_RUNTIME_DIR: path.join(work, 'runtime'),
    });
    // CIFAR-10 and SVHN take the "needs dataset" path: their smoke runs pre-train an encoder for minutes.
    for (const k of ['SGAN_DATA_DIR', 'SGAN_SEEDS', 'SGAN_ENCODER', 'SGAN_MEAN_IMAGE']) delete env[k];
  });
  after(() => {
    if (times.length) process.stderr.write(`notebook run times: ${times.join(', ')}\n`);
    if (work) fs.rmSync(work, { recursive: true, force: true });
    fs.rmSync(String(env.JUPYTER_PATH).split(path.delimiter)[0], { recursive: true, force: true });
  });

  const run = async (name: string, outDir: string) => {
    const r = await execute(path.join('notebooks', `${name}.ipynb`), path.join(work, outDir), env, 600);
    times.push(`${name}${outDir === 'out' ? '' : ` (${outDir})`} ${r.seconds.toFixed(0)} s`);
    return assertRan(name, r);
  };

  test('a failing cell fails the run: nbconvert exits non-zero, and the error is found in the notebook', async () => {
    const dir = path.join(work, 'failing');
    fs.mkdirSync(dir, { recursive: true });
    const write = (name: string, sources: string[]) => {
      const cells = sources.map((source) => ({ cell_type: 'code', metadata: {}, source, outputs: [], execution_count: null }));
      fs.writeFileSync(path.join(dir, name), JSON.stringify({ cells, metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } }, nbformat: 4, nbformat_minor: 4 }));
      return path.join(dir, name);
    };
    const throws = write('throws.ipynb', ["const x = 1;\nconsole.log('before', x);", "throw new Error('boom from the test');"]);
    const r = await execute(throws, path.join(dir, 'out'), env, 120);
    assert.notEqual(r.code, 0, 'nbconvert must exit non-zero on a failing cell');
    assert.throws(() => assertRan('throws', r), /boom from the test|exited/);
    // With --allow-errors nbconvert exits 0: the scan alone must catch runtime and compile errors.
    const typeError = write('type-error.ipynb', ["const y: number = 'not a number';"]);
    for (const [file, expected] of [[throws, /cell 1 stderr:[\s\S]*\nError: boom from the test/], [typeError, /cell 0 stderr: 1:7 - Type 'string' is not assignable/]] as const) {
      const out = path.join(dir, 'allowed');
      const allowed = spawnSync('jupyter', ['nbconvert', '--to', 'notebook', '--execute', '--allow-errors', '--ExecutePreprocessor.kernel_name=tslab', '--output-dir', out, file], { env, encoding: 'utf8', timeout: 180_000 });
      assert.equal(allowed.status, 0, allowed.stderr);
      assert.match(notebookErrors(readNb(path.join(out, path.basename(file)))).join('\n'), expected);
    }
  });

  test('mnist.ipynb runs the experiment and shows grids, variation, curves and the table', async () => {
    const n = await run('mnist', 'out');
    executed.set('mnist', n);
    const outs = outputs(n);
    const md = outs.map((o) => dataOf(o, 'text/markdown') ?? '').join('\n');
    assert.match(md, /ran mnist at preset smoke \(1 cell trained and evaluated\)/);
    for (const kind of ['sgan, classes', 'sgan, level1', 'sgan, level0', 'level1, seed 7', 'level0, seed 7']) assert.ok(md.includes(kind), `no "${kind}" grid`);
    const pngs = outs.map((o) => dataOf(o, 'image/png')).filter((p): p is string => p !== null);
    assert.equal(pngs.length, 5);
    for (const p of pngs) assert.deepEqual([readPng(Buffer.from(p, 'base64')).width, readPng(Buffer.from(p, 'base64')).height], [582, 582]);
    const html = outs.map((o) => dataOf(o, 'text/html')).filter((h): h is string => h !== null);
    assert.equal(html.filter((h) => h.includes("typeof window.Plotly === 'undefined'")).length, 1, 'plotly.js inlined once');
    const figures = html.filter((h) => h.includes('class="sgan-plot"'));
    assert.equal(figures.length, 3, 'two loss figures and one bar chart');
    assert.match(figures[0], /"name":"G0\.ent"/);
    assert.match(figures[1], /"name":"G1\.cond"/);
    assert.ok(html.some((h) => /<table class="sgan-table">[\s\S]*SGAN \(joint\)[\s\S]*Real data \(test split\)/.test(h)), 'the table');
  });

  test('mnist.ipynb again: loads the results instead of training; the variation grid is reproducible', async () => {
    assert.ok(executed.has('mnist'), 'needs the first mnist run');
    const n = await run('mnist', 'again');
    const md = outputs(n).map((o) => dataOf(o, 'text/markdown') ?? '').join('\n');
    assert.match(md, /loaded mnist results \(preset smoke\)/);
    assert.ok(!outputs(n).some((o) => o.output_type === 'stream' && /training ->/.test(textOf(o))), 'nothing was trained again');
    // The notebook's "fix fc3, vary z0" grid is what variationGridPng renders from the checkpoint here.
    await initBackend();
    const first = executed.get('mnist')!;
    const shown = outputs(first).map((o) => dataOf(o, 'image/png')).filter((p): p is string => p !== null);
    const checkpoint = path.join(String(env.SGAN_RUNS), 'mnist-smoke', 'sgan-s1');
    const png = await nb.variationGridPng(checkpoint, 'level0', { seed: 7 });
    assert.equal(png.toString('base64'), shown[4]);
    assert.notEqual(png.toString('base64'), shown[2], 'seed 7 differs from the experiment grid (seed 1)');
  });

  for (const name of ['cifar10', 'svhn']) {
    test(`${name}.ipynb without SGAN_DATA_DIR: says it needs the dataset and skips every section`, async () => {
      const n = await run(name, 'out');
      const md = outputs(n).map((o) => dataOf(o, 'text/markdown') ?? '').join('\n');
      assert.match(md, new RegExp(`needs dataset: .*Skipping the ${name} experiment`));
      assert.ok((md.match(/\*skipped: needs dataset \(see above\)\*/g)?.length ?? 0) >= 4, md);
      assert.equal(outputs(n).filter((o) => dataOf(o, 'image/png') !== null).length, 0);
      assert.ok(!fs.existsSync(path.join(String(env.SGAN_RUNS), `${name}-smoke`)), 'nothing was trained');
    });
  }

  test('ablation.ipynb runs 7 variants (one seed at smoke): level 0 with and without entropy loss side by side', async () => {
    const n = await run('ablation', 'out');
    const outs = outputs(n);
    const md = outs.map((o) => dataOf(o, 'text/markdown') ?? '').join('\n');
    assert.match(md, /ran ablation at preset smoke \(7 cells trained and evaluated\)/);
    const html = outs.map((o) => dataOf(o, 'text/html')).filter((h): h is string => h !== null);
    const sideBySide = html.filter((h) => h.includes('class="sgan-images"'));
    assert.equal(sideBySide.length, 3, 'level0, level1 and classes comparisons');
    assert.deepEqual([...sideBySide[0].matchAll(/<figcaption[^>]*>([^<]+)</g)].map((m) => m[1]), ['SGAN (joint)', 'SGAN without entropy loss']);
    assert.equal(sideBySide[0].match(/data:image\/png;base64,/g)?.length, 2);
    assert.equal(sideBySide[2].match(/data:image\/png;base64,/g)?.length, 7);
    const figures = html.filter((h) => h.includes('class="sgan-plot"'));
    assert.equal(figures.length, 4 + 3, 'four loss figures, three metric bar charts');
    assert.match(figures[0], /"name":"dcgan-adv-s1: D0"/);
    const table = html.find((h) => h.includes('<table class="sgan-table">'));
    assert.ok(table);
    assert.equal(table.match(/<tr>/g)?.length, 1 + 7 + 1, 'header, 7 variants, real data');
    const tableJson = JSON.parse(fs.readFileSync(path.join(String(env.SGAN_RESULTS), 'ablation-smoke', 'table.json'), 'utf8')) as nb.TableJson;
    assert.ok(tableJson.rows.every((r) => r.seeds === 1));
  });
});
