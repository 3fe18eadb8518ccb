// Training loop: bit-exact resume after SIGKILL, no tensor leak, seeded reproducibility, NaN guard.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../lib/backend';
import { loadCheckpoint } from '../lib/checkpoint';
import { ImageDataset, loadDataset } from '../lib/datasets/dataset';
import { Encoder, MNIST_ENCODER } from '../lib/encoder';
import { presetConfig, TrainConfig } from '../lib/presets';
import { RunMeta, TrainingDiverged, train } from '../lib/train';
import { saveEncoderNpz } from '../lib/train-encoder';

const ROOT = path.resolve(__dirname, '..');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-train-'));

/** Run the CLI; resolves with its exit code and output. With killOn, SIGKILL it when stdout matches. */
function runCli(args: string[], killOn?: RegExp): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/sgan.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, SGAN_LOG_CHECKPOINTS: '1', SGAN_BACKEND: 'wasm' },
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (killOn && killOn.test(out)) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

function tensorsEqual(a: string, b: string): void {
  const A = loadCheckpoint<RunMeta>(a);
  const B = loadCheckpoint<RunMeta>(b);
  assert.deepEqual([...A.tensors.keys()].sort(), [...B.tensors.keys()].sort());
  for (const [name, t] of A.tensors) {
    const u = B.tensors.get(name)!;
    assert.ok(Buffer.from(t.data.buffer).equals(Buffer.from(u.data.buffer)), `tensor ${name} differs`);
  }
  assert.equal(A.meta.step, B.meta.step);
}

let data: ImageDataset;
function smoke(overrides: Partial<TrainConfig> = {}): TrainConfig {
  return { ...presetConfig('mnist', 'smoke', 7), ...overrides };
}

test('training', async (t) => {
  await initBackend('wasm');
  data = loadDataset('mnist', { split: 'train' });
  const dir = tmp();
  const encoderFile = path.join(dir, 'encoder.npz');
  const enc = new Encoder(MNIST_ENCODER, 3);
  await saveEncoderNpz(enc, encoderFile);

  await t.test('a run killed with SIGKILL and resumed ends with the same weights as an unbroken run', async () => {
    const common = ['train', '--experiment', 'mnist', '--preset', 'smoke', '--seed', '5', '--encoder', encoderFile];
    const full = await runCli([...common, '--out', path.join(dir, 'full')]);
    assert.equal(full.code, 0, full.out);
    const killed = await runCli([...common, '--out', path.join(dir, 'killed')], /checkpoint step=2\//);
    assert.equal(killed.signal, 'SIGKILL', `the run should have been killed mid-way:\n${killed.out}`);
    const partial = loadCheckpoint<RunMeta>(path.join(dir, 'killed'));
    assert.ok(partial.meta.step < partial.meta.totalSteps, `killed run already finished (step ${partial.meta.step})`);
    const resumed = await runCli([...common, '--out', path.join(dir, 'killed'), '--resume']);
    assert.equal(resumed.code, 0, resumed.out);
    tensorsEqual(path.join(dir, 'full'), path.join(dir, 'killed'));
  });

  await t.test('without --resume an existing run is not overwritten', async () => {
    const again = await runCli(['train', '--experiment', 'mnist', '--preset', 'smoke', '--seed', '5', '--encoder', encoderFile, '--out', path.join(dir, 'full')]);
    assert.equal(again.code, 1);
    assert.match(again.out, /exists: pass --resume/);
  });

  await t.test('no tensor leak: numTensors after step 10 equals numTensors after step 100', async () => {
    const counts = new Map<number, number>();
    const cfg = smoke({ batchSize: 4, batchesPerEpoch: 50, logEvery: 10, checkpointEvery: 1000 });
    const r = await train({
      cfg, data, encoder: enc, encoderSource: 'test', outDir: path.join(dir, 'leak'), resume: false, backend: 'wasm', progress: false,
      onLog: (e) => counts.set(e.step, tf.memory().numTensors),
    });
    assert.equal(r.meta.step, 100);
    assert.ok(counts.has(10) && counts.has(100));
    assert.equal(counts.get(100), counts.get(10), `tensors: ${JSON.stringify([...counts])}`);
  });

  await t.test('same seed, same backend: bit-identical; another seed: different', async () => {
    const run = async (seed: number, name: string) => {
      const out = path.join(dir, name);
      await train({ cfg: smoke({ seed }), data, encoder: enc, encoderSource: 'test', outDir: out, resume: false, backend: 'wasm', progress: false });
      return out;
    };
    const a = await run(11, 'seedA');
    const b = await run(11, 'seedB');
    const c = await run(12, 'seedC');
    tensorsEqual(a, b);
    const A = loadCheckpoint(a).tensors.get('G0.fc.W')!.data;
    const C = loadCheckpoint(c).tensors.get('G0.fc.W')!.data;
    assert.ok(A.some((v, i) => v !== C[i]), 'different seeds gave identical weights');
  });

  await t.test('a NaN loss stops training, names the loss and step, keeps the last good checkpoint', async () => {
    const out = path.join(dir, 'nan');
    await assert.rejects(
      train({
        cfg: smoke(), data, encoder: enc, encoderSource: 'test', outDir: out, resume: false, backend: 'wasm', progress: false,
        // Poison D0 after step 3: step 4's losses are NaN; the step-2 checkpoint must survive.
        onStep: (tr, done) => {
          if (done === 3) tf.tidy(() => (tr.model.D[0] as unknown as { adv: { W: tf.Variable } }).adv.W.assign(tf.fill(tr.model.D[0].trainable().get('adv.W')!.shape, NaN)));
        },
      }),
      (e: Error) => e instanceof TrainingDiverged && /loss D0 is NaN at step 4/.test(e.message),
    );
    assert.equal(loadCheckpoint<RunMeta>(out).meta.step, 2);
  });
});
