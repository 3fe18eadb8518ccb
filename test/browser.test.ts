// A real browser: Debian's jupyter-notebook serves a copy of notebooks/mnist.ipynb on 127.0.0.1,
// headless Chromium (playwright-core) opens it, runs all cells at the smoke preset, and a plotly
// figure must render (its svg.main-svg appears). The screenshot is kept in test-artifacts/.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { chromium, Browser, Page } from 'playwright-core';

const ROOT = path.resolve(__dirname, '..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HOST = '127.0.0.1';
/** Bounds: server start, running every cell (smoke training included), a figure after that. */
const SERVER_START_MS = 90_000;
const RUN_ALL_MS = 420_000;
const FIGURE_MS = 60_000;

const quietEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => ({ ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: '1', ...extra });

function notebookVersion(): string | null {
  const r = spawnSync('jupyter', ['notebook', '--version'], { encoding: 'utf8', env: quietEnv({}) });
  if (r.error || r.status !== 0) return null;
  const m = /(\d+\.\d+\.\d+)\s*$/m.exec(r.stdout);
  return m ? m[1] : null;
}

const VERSION = notebookVersion();
const skipReason = !fs.existsSync(CHROMIUM)
  ? `no Chromium at ${CHROMIUM} (Debian: apt-get install -y chromium; or set CHROMIUM_PATH)`
  : VERSION === null
    ? 'jupyter notebook is not installed (Debian: apt-get install -y --no-install-recommends jupyter-notebook; or pip install notebook)'
    : null;
if (skipReason) process.stderr.write(`browser.test.ts: skipping: ${skipReason}\n`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, HOST, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Processes whose command line mentions `marker` (our temp folder: the kernels we caused). */
function processesMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(marker)) pids.push(Number(d));
    } catch {
      // gone
    }
  }
  return pids;
}

/** What the page-side checks touch (this project's tsconfig has no DOM lib). */
interface El {
  textContent: string | null;
  querySelector(s: string): El | null;
  querySelectorAll(s: string): ArrayLike<El> & Iterable<El>;
}
interface PageGlobals {
  document: El;
  Jupyter?: {
    notebook?: {
      _fully_loaded?: boolean;
      kernel?: { is_connected(): boolean };
      execute_all_cells(): void;
      get_cells(): Array<{ cell_type: string; input_prompt_number?: number | string | null }>;
    };
  };
  jupyterapp?: { commands: { hasCommand(c: string): boolean; execute(c: string): Promise<unknown> } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Shut the kernels down through the API, stop the server, and kill whatever of ours is left. */
async function stopServer(server: ChildProcess, base: string, token: string, marker: string): Promise<void> {
  const auth = { headers: { Authorization: `token ${token}` }, signal: AbortSignal.timeout(10_000) };
  try {
    const kernels = (await (await fetch(`${base}/api/kernels`, auth)).json()) as Array<{ id: string }>;
    for (const k of kernels) await fetch(`${base}/api/kernels/${k.id}`, { ...auth, method: 'DELETE' });
  } catch {
    // the server may be gone already
  }
  if (server.exitCode === null && server.signalCode === null) {
    try {
      process.kill(-server.pid!, 'SIGTERM');
    } catch {
      // gone
    }
    if (!(await exited(server, 15_000))) {
      try {
        process.kill(-server.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      await exited(server, 5_000);
    }
  }
  for (const pid of processesMentioning(marker)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

async function waitForServer(base: string, token: string, server: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + SERVER_START_MS;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`jupyter notebook exited with ${server.exitCode}:\n${log()}`);
    try {
      const r = await fetch(`${base}/api/status`, { headers: { Authorization: `token ${token}` }, signal: AbortSignal.timeout(5_000) });
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await sleep(500);
  }
  throw new Error(`jupyter notebook did not answer within ${SERVER_START_MS / 1000} s:\n${log()}`);
}

/** Run all cells: classic Notebook 6's JS API, or Notebook 7's (JupyterLab) command. Returns which. */
async function runAllCells(page: Page): Promise<string> {
  await page.waitForFunction(
    () => {
      const w = globalThis as unknown as PageGlobals;
      const nb6 = w.Jupyter?.notebook;
      if (nb6?.kernel?.is_connected() && nb6._fully_loaded) return true;
      return Boolean(w.jupyterapp?.commands.hasCommand('notebook:run-all-cells') && w.document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"], .jp-Notebook .jp-Cell'));
    },
    undefined,
    { timeout: 90_000, polling: 500 },
  );
  return page.evaluate(async () => {
    const w = globalThis as unknown as PageGlobals;
    if (w.Jupyter?.notebook) {
      w.Jupyter.notebook.execute_all_cells();
      return 'Notebook 6: Jupyter.notebook.execute_all_cells()';
    }
    await w.jupyterapp!.commands.execute('notebook:run-all-cells');
    return "Notebook 7: jupyterapp.commands.execute('notebook:run-all-cells')";
  });
}

const ERROR_TEXT = /(^|\n)\s*(\w*Error\b|at evalmachine\.|\d+:\d+ - )/;
const ERROR_OUTPUTS = '.output_error, .output_stderr, .jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]';

/** Resolves when every code cell has run (a number in each prompt), or as soon as one failed. */
async function waitForAllCells(page: Page): Promise<void> {
  await page.waitForFunction(
    ([errorText, errorOutputs]) => {
      const w = globalThis as unknown as PageGlobals;
      const re = new RegExp(errorText);
      if ([...w.document.querySelectorAll(errorOutputs)].some((e) => re.test(e.textContent ?? ''))) return true; // reported below
      if (w.Jupyter?.notebook) {
        return w.Jupyter.notebook.get_cells().every((c) => c.cell_type !== 'code' || typeof c.input_prompt_number === 'number');
      }
      const prompts = [...w.document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map((p) => p.textContent ?? '');
      return prompts.length > 0 && prompts.every((p) => /\[\d+\]/.test(p));
    },
    [ERROR_TEXT.source, ERROR_OUTPUTS] as const,
    { timeout: RUN_ALL_MS, polling: 1000 },
  );
}

/** The notebooks import dist/: build it from the sources under test. */
function buildDist(): void {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `npm run build failed; the notebooks import dist/:\n${r.stdout}${r.stderr}`);
}

test('mnist.ipynb in headless Chromium: all cells run and a plotly figure renders', { skip: skipReason ?? false, timeout: SERVER_START_MS + RUN_ALL_MS + FIGURE_MS + 240_000 }, async () => {
  buildDist();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-browser-'));
  const token = randomBytes(16).toString('hex');
  // The notebook folder: a copy (the server autosaves outputs into it), with dist/ and
  // node_modules/ linked beside it so "../dist/lib/..." resolves as in the repository.
  const site = path.join(work, 'site');
  fs.mkdirSync(path.join(site, 'notebooks'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'notebooks/mnist.ipynb'), path.join(site, 'notebooks/mnist.ipynb'));
  fs.symlinkSync(path.join(ROOT, 'dist'), path.join(site, 'dist'));
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(site, 'node_modules'));
  // This checkout's tslab as the tslab kernel, first on JUPYTER_PATH.
  const kernelDir = path.join(work, 'jupyter', 'kernels', 'tslab');
  fs.mkdirSync(kernelDir, { recursive: true });
  fs.writeFileSync(path.join(kernelDir, 'kernel.json'), JSON.stringify({ argv: [path.join(ROOT, 'node_modules/.bin/tslab'), 'kernel', '--config-path', '{connection_file}'], display_name: 'TypeScript', language: 'typescript' }));

  const port = await freePort();
  const base = `http://${HOST}:${port}`;
  const major = Number(VERSION!.split('.')[0]);
  const app = major >= 7 ? 'ServerApp' : 'NotebookApp';
  const args = ['notebook', '--no-browser', `--ip=${HOST}`, `--port=${port}`, '--port-retries=0', `--${app}.token=${token}`, '--allow-root', major >= 7 ? `--ServerApp.root_dir=${site}` : `--NotebookApp.notebook_dir=${site}`];
  const env = quietEnv({
    SGAN_PRESET: 'smoke',
    SGAN_RESULTS: path.join(work, 'results'),
    SGAN_RUNS: path.join(work, 'runs'),
    JUPYTER_PATH: [path.join(work, 'jupyter'), process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
    JUPYTER_RUNTIME_DIR: path.join(work, 'runtime'),
    JUPYTER_CONFIG_DIR: path.join(work, 'config'),
  });
  for (const k of ['SGAN_DATA_DIR', 'SGAN_SEEDS']) delete env[k];
  let serverLog = '';
  const server = spawn('jupyter', args, { cwd: site, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout!.on('data', (d) => (serverLog += d));
  server.stderr!.on('data', (d) => (serverLog += d));
  let browser: Browser | null = null;
  const pageErrors: string[] = [];
  const t0 = Date.now();
  try {
    await waitForServer(base, token, server, () => serverLog);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true, timeout: 60_000 });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${base}/notebooks/notebooks/mnist.ipynb?token=${token}`, { timeout: 60_000 });
    const how = await runAllCells(page);
    await waitForAllCells(page);
    const ranS = (Date.now() - t0) / 1000;
    const failed = await page.evaluate(([errorText, errorOutputs]) => {
      const re = new RegExp(errorText);
      return [...(globalThis as unknown as PageGlobals).document.querySelectorAll(errorOutputs)].map((e) => e.textContent ?? '').filter((t) => re.test(t));
    }, [ERROR_TEXT.source, ERROR_OUTPUTS] as const);
    assert.deepEqual(failed, [], 'cells failed in the browser');
    await page.waitForSelector('.sgan-plot svg.main-svg', { timeout: FIGURE_MS });
    // Every figure of the notebook drew (two loss figures and one bar chart), with traces in them.
    await page.waitForFunction(() => (globalThis as unknown as PageGlobals).document.querySelectorAll('.sgan-plot svg.main-svg').length >= 3 * 2, undefined, { timeout: FIGURE_MS });
    const state = await page.evaluate(() => {
      const document = (globalThis as unknown as PageGlobals).document;
      return {
        plots: [...document.querySelectorAll('.sgan-plot')].map((p) => ({ svg: p.querySelectorAll('svg.main-svg').length, traces: p.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length, title: p.querySelector('.gtitle')?.textContent ?? '' })),
        images: [...document.querySelectorAll('.output_png img, .jp-RenderedImage img')].length,
        tables: [...document.querySelectorAll('table.sgan-table')].length,
      };
    });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    // The classic Notebook scrolls inside its own panel: bring the first figure into the shot.
    await page.locator('.sgan-plot').first().scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTIFACTS, 'browser-mnist-notebook.png') });
    await page.locator('.sgan-plot').first().screenshot({ path: path.join(ARTIFACTS, 'browser-mnist-plot.png') });
    process.stderr.write(`browser test: ${how}; Notebook ${VERSION}; cells ran in ${ranS.toFixed(0)} s; plots ${JSON.stringify(state.plots)}; screenshots in ${ARTIFACTS}\n`);
    assert.equal(state.plots.length, 3, 'three figures');
    for (const p of state.plots) {
      assert.ok(p.svg >= 1, `a figure without svg.main-svg: ${JSON.stringify(p)}`);
      assert.ok(p.traces >= 1, `a figure without traces: ${JSON.stringify(p)}`);
    }
    assert.deepEqual(state.plots.map((p) => p.title), ['Level 0 (image) losses', 'Level 1 (fc3) losses', 'class consistency']);
    assert.equal(state.images, 5, 'three experiment grids and two fresh variation grids');
    assert.equal(state.tables, 1);
    assert.deepEqual(pageErrors.filter((e) => /plotly|define|Mismatched/i.test(e)), [], `page errors: ${pageErrors.join('\n')}`);
  } finally {
    if (browser) await browser.close().catch(() => undefined);
    await stopServer(server, base, token, work);
    fs.rmSync(work, { recursive: true, force: true });
  }
});
