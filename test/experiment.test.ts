// Experiment runner: tables from cells, resume after a kill, and sharding that merges to the same table.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initBackend } from '../lib/backend';
import { Encoder, MNIST_ENCODER } from '../lib/encoder';
import { ExperimentSpec, availableJudges, cellConfig, experimentCells, mergeExperiment, parseShard, runExperiment, shardCells } from '../lib/experiment';
import { presetConfig } from '../lib/presets';
import { saveEncoderNpz } from '../lib/train-encoder';

const ROOT = path.resolve(__dirname, '..');

const spec: ExperimentSpec = {
  name: 'tiny',
  title: 'two variants, two seeds',
  dataset: 'mnist',
  variants: [
    { id: 'sgan', label: 'SGAN (joint)', ablation: {} },
    { id: 'dcgan', label: 'DCGAN (Ladv + Lcond + Lent)', ablation: { baseline: 'dcgan' } },
  ],
  seeds: { smoke: [1, 2], quick: [1, 2], paper: [1, 2] },
  evalSamples: { smoke: 100, quick: 100, paper: 100 },
};

test('shards partition the cells; --shard is parsed strictly', () => {
  const cells = experimentCells(spec, [1, 2, 3]);
  const parts = [0, 1, 2].map((i) => shardCells(cells, { index: i, count: 3 }).map((c) => c.id));
  assert.deepEqual(parts.flat().sort(), cells.map((c) => c.id).sort());
  assert.equal(new Set(parts.flat()).size, cells.length);
  assert.deepEqual(parseShard('1/4'), { index: 1, count: 4 });
  assert.throws(() => parseShard('4/4'), /0 <= i < n/);
  assert.throws(() => parseShard('a/b'), /expected i\/n/);
});

test("an experiment's schedule replaces the preset's stages and scale, and the ablation still applies", () => {
  const scheduled: ExperimentSpec = {
    ...spec,
    schedule: { quick: { stages: [{ kind: 'independent', epochs: 1 }, { kind: 'joint', epochs: 1 }], encoderEpochs: 2, scale: 'short grid' } },
  };
  const q = cellConfig(scheduled, 'quick', 3);
  assert.deepEqual(q.stages, [{ kind: 'independent', epochs: 1 }, { kind: 'joint', epochs: 1 }]);
  assert.equal(q.encoderEpochs, 2);
  assert.equal(q.scale, 'short grid');
  assert.equal(q.seed, 3);
  assert.deepEqual(cellConfig(scheduled, 'quick', 3, { noJoint: true }).stages, [{ kind: 'independent', epochs: 2 }]);
  assert.deepEqual(cellConfig(scheduled, 'smoke', 1), presetConfig('mnist', 'smoke', 1), 'no schedule for smoke: the preset as is');
  assert.equal(scheduled.schedule!.quick!.stages[1].kind, 'joint', 'the spec itself is not modified');
  assert.equal(q.batchesPerEpoch, presetConfig('mnist', 'quick', 3).batchesPerEpoch, 'no cap in the schedule: the preset\'s');
  const whole = cellConfig({ ...spec, schedule: { quick: { ...scheduled.schedule!.quick!, batchesPerEpoch: null } } }, 'quick', 3);
  assert.equal(whole.batchesPerEpoch, null, 'a schedule can lift the preset\'s cap on batches per epoch');
});

test('external judges are used only when their files exist', () => {
  const judged: ExperimentSpec = {
    ...spec,
    judges: [
      { id: 'here', label: 'x', file: __filename },
      { id: 'gone', label: 'y', file: path.join(os.tmpdir(), 'no-such-encoder.npz') },
      { id: 'nomean', label: 'z', file: __filename, meanImage: path.join(os.tmpdir(), 'no-such-mean.npy') },
    ],
  };
  assert.deepEqual(availableJudges(judged).map((j) => j.id), ['here']);
});

test('experiment grid', async (t) => {
  await initBackend('wasm');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-exp-'));
  const encoderFile = path.join(dir, 'encoder.npz');
  await saveEncoderNpz(new Encoder(MNIST_ENCODER, 2), encoderFile);
  const common = { preset: 'smoke' as const, backend: 'wasm', progress: false, encoderFile, log: () => {} };

  await t.test('an unsharded run and two merged shards give the same table', async () => {
    const whole = await runExperiment(spec, { ...common, resultsRoot: path.join(dir, 'A'), runsRoot: path.join(dir, 'runsA') });
    assert.equal(whole.done.length, 4);
    assert.ok(whole.table, 'table built');
    // Two "machines", each with its own results and runs folders.
    for (const i of [0, 1]) {
      const s = await runExperiment(spec, { ...common, shard: { index: i, count: 2 }, resultsRoot: path.join(dir, `B${i}`), runsRoot: path.join(dir, `runsB${i}`) });
      assert.equal(s.done.length, 2);
      assert.equal(s.table, null, 'a lone shard cannot build the table');
    }
    const merged = path.join(dir, 'C', 'tiny-smoke', 'cells');
    fs.mkdirSync(merged, { recursive: true });
    for (const i of [0, 1]) {
      const cells = path.join(dir, `B${i}`, 'tiny-smoke', 'cells');
      for (const f of fs.readdirSync(cells)) fs.copyFileSync(path.join(cells, f), path.join(merged, f));
    }
    assert.throws(() => mergeExperiment(spec, { preset: 'smoke', resultsRoot: path.join(dir, 'B0'), backend: 'wasm' }), /missing cells: /);
    mergeExperiment(spec, { preset: 'smoke', resultsRoot: path.join(dir, 'C'), backend: 'wasm' });
    for (const f of ['table.csv', 'table.md']) {
      const a = fs.readFileSync(path.join(dir, 'A', 'tiny-smoke', f), 'utf8');
      const c = fs.readFileSync(path.join(dir, 'C', 'tiny-smoke', f), 'utf8');
      assert.equal(c, a, `${f} differs`);
    }
    const table = JSON.parse(fs.readFileSync(path.join(dir, 'A', 'tiny-smoke', 'table.json'), 'utf8'));
    assert.equal(table.rows.length, 3, 'two variants and the real-data row');
    assert.ok(!table.columns.some((c: { key: string }) => c.key.startsWith('again_')), 'no external judge, no column');
    assert.ok(typeof table.rows[0].class_consistency_mean === 'number');
    assert.ok(fs.existsSync(path.join(dir, 'A', 'tiny-smoke', 'grids', 'sgan-level0.png')));
    assert.ok(!fs.existsSync(path.join(dir, 'A', 'tiny-smoke', 'grids', 'dcgan-level1.png')), 'a single GAN has no level 1');
    const prov = JSON.parse(fs.readFileSync(path.join(dir, 'A', 'tiny-smoke', 'provenance.json'), 'utf8'));
    for (const k of ['command', 'seed', 'backend', 'preset', 'commit', 'scale']) assert.ok(k in prov, `provenance lacks ${k}`);
  });

  await t.test('an external judge adds its column; the grid\'s own encoder as judge agrees with the built-in one', async () => {
    // A copy: the grid's own encoder file itself is skipped as an outside judge (it would only repeat it).
    const judgeFile = path.join(dir, 'judge-copy.npz');
    fs.copyFileSync(encoderFile, judgeFile);
    const judged: ExperimentSpec = { ...spec, variants: spec.variants.slice(0, 1), judges: [{ id: 'again', label: 'class consistency (same E again)', file: judgeFile }] };
    const s = await runExperiment(judged, { ...common, seeds: [1], resultsRoot: path.join(dir, 'J'), runsRoot: path.join(dir, 'runsJ') });
    assert.deepEqual(s.done, ['sgan-s1']);
    const cell = JSON.parse(fs.readFileSync(path.join(dir, 'J', 'tiny-smoke', 'cells', 'sgan-s1.json'), 'utf8'));
    assert.equal(cell.metrics.again_class_consistency, cell.metrics.class_consistency);
    assert.equal(cell.metrics.again_classifier_score_mean, cell.metrics.classifier_score_mean);
    assert.equal(cell.metrics.real_again_class_consistency, cell.metrics.real_class_consistency);
    const table = JSON.parse(fs.readFileSync(path.join(dir, 'J', 'tiny-smoke', 'table.json'), 'utf8'));
    assert.deepEqual(table.columns.at(-1), { key: 'again_class_consistency', label: 'class consistency (same E again)', digits: 3 });
    assert.match(fs.readFileSync(path.join(dir, 'J', 'tiny-smoke', 'table.md'), 'utf8'), /class consistency \(same E again\)/);
  });

  await t.test('a rerun skips finished cells', async () => {
    const again = await runExperiment(spec, { ...common, resultsRoot: path.join(dir, 'A'), runsRoot: path.join(dir, 'runsA') });
    assert.deepEqual(again.done, []);
    assert.equal(again.skipped.length, 4);
  });

  await t.test('`sgan experiment` killed mid-run resumes and finishes', async () => {
    const args = [path.join(ROOT, 'bin/sgan.js'), 'experiment', 'mnist', '--preset', 'smoke', '--encoder', encoderFile,
      '--results', path.join(dir, 'K'), '--runs', path.join(dir, 'runsK')];
    const run = (killOn?: RegExp) =>
      new Promise<{ code: number | null; signal: string | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, args, { cwd: ROOT, env: { ...process.env, SGAN_BACKEND: 'wasm' } });
        let out = '';
        const onData = (d: Buffer) => {
          out += d;
          if (killOn && killOn.test(out)) child.kill('SIGKILL');
        };
        child.stdout.on('data', onData);
        child.stderr.on('data', onData);
        child.on('close', (code, signal) => resolve({ code, signal, out }));
      });
    const killed = await run(/evaluating/);
    assert.equal(killed.signal, 'SIGKILL', killed.out);
    assert.ok(!fs.existsSync(path.join(dir, 'K', 'mnist-smoke', 'table.json')));
    const resumed = await run();
    assert.equal(resumed.code, 0, resumed.out);
    const last = JSON.parse(resumed.out.trim().split('\n').pop()!);
    assert.deepEqual(last.done, ['sgan-s1']);
    assert.ok(fs.existsSync(path.join(dir, 'K', 'mnist-smoke', 'table.json')));
    assert.ok(fs.existsSync(path.join(dir, 'K', 'mnist-smoke', 'grids', 'sgan-classes.png')));
  });
});
