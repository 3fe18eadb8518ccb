/**
 * lib/metrics/inception-score.ts and `sgan inception-score`: hand-computed cases, the streaming
 * accumulator against the in-memory formula, input validation, and agreement with the reference
 * formula run by numpy itself (when /usr/bin/python3 has numpy; skipped otherwise).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ScoreAccumulator, inceptionScore, partScore, splitBounds } from '../lib/metrics/inception-score';
import { writeNpy } from '../lib/npy';

const ROOT = path.join(__dirname, '..');
const tmpDirs: string[] = [];
after(() => tmpDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-is-'));
  tmpDirs.push(d);
  return d;
}

/** N rows, row r one-hot on class r % K. */
function oneHotCycling(n: number, k: number): Float64Array {
  const p = new Float64Array(n * k);
  for (let r = 0; r < n; r++) p[r * k + (r % k)] = 1;
  return p;
}

/** Random rows (softmax of Gaussian-ish logits) from a small deterministic LCG. */
function randomRows(n: number, k: number, seed: number, sharpness: number): Float64Array {
  let s = seed >>> 0;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const p = new Float64Array(n * k);
  for (let r = 0; r < n; r++) {
    let sum = 0;
    for (let c = 0; c < k; c++) sum += p[r * k + c] = Math.exp(sharpness * (rnd() - 0.5));
    for (let c = 0; c < k; c++) p[r * k + c] /= sum;
  }
  return p;
}

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'sgan.js'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function lastJson(stdout: string): Record<string, number> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as Record<string, number>;
}

test('uniform rows score exactly 1 with zero spread', () => {
  const k = 7;
  const s = inceptionScore(new Float64Array(50 * k).fill(1 / k), [50, k], 5);
  assert.ok(Math.abs(s.mean - 1) < 1e-12, `mean ${s.mean}`);
  assert.ok(s.std < 1e-12, `std ${s.std}`);
  assert.equal(s.scores.length, 5);
});

test('one-hot rows spread evenly over K classes score K (0 log 0 taken as 0)', () => {
  for (const k of [2, 10]) {
    const s = inceptionScore(oneHotCycling(10 * k * 3, k), [10 * k * 3, k], 10);
    assert.ok(Math.abs(s.mean - k) < 1e-9, `K=${k}: mean ${s.mean}`);
    assert.ok(s.std < 1e-9);
  }
  // All rows one-hot on the same class: a collapsed classifier output scores 1.
  const same = new Float64Array(40 * 4);
  for (let r = 0; r < 40; r++) same[r * 4 + 2] = 1;
  assert.ok(Math.abs(inceptionScore(same, [40, 4], 4).mean - 1) < 1e-12);
});

test('a two-row part matches the KL written out by hand', () => {
  // rows (0.9, 0.1) and (0.2, 0.8): marginal (0.55, 0.45).
  const p = new Float64Array([0.9, 0.1, 0.2, 0.8]);
  const kl = (a: number, b: number) => a * Math.log(a / 0.55) + b * Math.log(b / 0.45);
  const expected = Math.exp((kl(0.9, 0.1) + kl(0.2, 0.8)) / 2);
  assert.ok(Math.abs(partScore(p, 2, 0, 2) - expected) < 1e-14);
  const s = inceptionScore(p, [2, 2], 1);
  assert.ok(Math.abs(s.mean - expected) < 1e-14);
  assert.equal(s.std, 0);
});

test('parts are rows floor(i*N/splits) .. floor((i+1)*N/splits); std is the population std', () => {
  assert.deepEqual(splitBounds(25, 10), [0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25]);
  assert.deepEqual(splitBounds(10, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const p = randomRows(25, 3, 7, 4);
  const s = inceptionScore(p, [25, 3], 10);
  const b = splitBounds(25, 10);
  const scores = b.slice(0, -1).map((start, i) => partScore(p, 3, start, b[i + 1]));
  const mean = scores.reduce((a, v) => a + v, 0) / 10;
  const std = Math.sqrt(scores.reduce((a, v) => a + (v - mean) ** 2, 0) / 10);
  assert.deepEqual(s.scores, scores);
  assert.ok(Math.abs(s.std - std) < 1e-15 && s.std > 0);
});

test('the streaming accumulator equals the in-memory formula, whatever the batch sizes', () => {
  const n = 1003;
  const k = 13;
  const p = randomRows(n, k, 3, 8);
  // Some exact zeros too: both must take 0 log 0 = 0.
  for (let r = 0; r < n; r += 17) {
    const z = p[r * k];
    p[r * k] = 0;
    p[r * k + 1] += z;
  }
  const ref = inceptionScore(p, [n, k], 10);
  const acc = new ScoreAccumulator(n, k, 10);
  const sizes = [1, 99, 250, 3, 100, 550];
  let start = 0;
  for (const b of sizes) {
    acc.add(p.subarray(start * k, (start + b) * k));
    start += b;
  }
  assert.equal(start, n);
  const got = acc.result();
  got.scores.forEach((v, i) => assert.ok(Math.abs(v - ref.scores[i]) < 1e-9 * ref.scores[i], `part ${i}: ${v} vs ${ref.scores[i]}`));
  assert.ok(Math.abs(got.mean - ref.mean) < 1e-9 * ref.mean);
  assert.ok(Math.abs(got.std - ref.std) < 1e-8);
});

test('the accumulator refuses an incomplete or overfull stream', () => {
  const acc = new ScoreAccumulator(20, 2, 2);
  acc.add(new Float64Array(10 * 2).fill(0.5));
  assert.throws(() => acc.result(), /10 of 20 rows/);
  assert.throws(() => acc.add(new Float64Array(11 * 2).fill(0.5)), /21 rows added, more than the 20/);
});

test('invalid input fails with a message that names the problem', () => {
  const good = new Float64Array(20).fill(0.5);
  assert.throws(() => inceptionScore(good, [20], 1), /1-D, expected 2-D/);
  assert.throws(() => inceptionScore(good, [2, 5, 2], 1), /3-D, expected 2-D/);
  assert.throws(() => inceptionScore(good, [10, 2], 11), /splits \(11\) is larger than the number of rows \(10\)/);
  const sum = Float64Array.from(good);
  sum[7] = 0.7; // row 3 sums to 1.2
  assert.throws(() => inceptionScore(sum, [10, 2], 2), /row 3 sums to 1\.2/);
  const neg = Float64Array.from(good);
  neg[4] = -0.5;
  neg[5] = 1.5;
  assert.throws(() => inceptionScore(neg, [10, 2], 2), /row 2, class 0 is -0\.5.*negative/);
  const nan = Float64Array.from(good);
  nan[9] = NaN;
  assert.throws(() => inceptionScore(nan, [10, 2], 2), /row 4, class 1 is NaN/);
  const inf = Float64Array.from(good);
  inf[0] = Infinity;
  assert.throws(() => inceptionScore(inf, [10, 2], 2), /row 0, class 0 is Infinity/);
  // A batch's rows are numbered in the whole stream.
  const acc = new ScoreAccumulator(20, 2, 2);
  acc.add(good);
  assert.throws(() => acc.add(sum), /row 13 sums to 1\.2/);
});

test('CLI: prints {mean,std,n,splits} last; reads float32 and Fortran-order files; usage errors', () => {
  const dir = tmpDir();
  const n = 60;
  const k = 3;
  const p = randomRows(n, k, 11, 6);
  const ref = inceptionScore(p, [n, k], 6);
  writeNpy(path.join(dir, 'c.npy'), p, [n, k]);
  let r = cli(['inception-score', '--probs', path.join(dir, 'c.npy'), '--splits', '6']);
  assert.equal(r.status, 0, r.stderr);
  const out = lastJson(r.stdout);
  assert.deepEqual(Object.keys(out).sort(), ['mean', 'n', 'splits', 'std']);
  assert.equal(out.n, n);
  assert.equal(out.splits, 6);
  assert.ok(Math.abs(out.mean - ref.mean) < 1e-12 && Math.abs(out.std - ref.std) < 1e-12);

  // The same matrix stored column-major as float32, header edited to fortran_order True.
  const f = new Float32Array(n * k);
  for (let r2 = 0; r2 < n; r2++) for (let c = 0; c < k; c++) f[c * n + r2] = p[r2 * k + c];
  writeNpy(path.join(dir, 'f.npy'), f, [n, k]);
  const buf = fs.readFileSync(path.join(dir, 'f.npy'));
  const text = buf.toString('latin1').replace("'fortran_order': False", "'fortran_order': True ");
  fs.writeFileSync(path.join(dir, 'f.npy'), Buffer.from(text, 'latin1'));
  r = cli(['inception-score', '--probs', path.join(dir, 'f.npy'), '--splits', '6']);
  assert.equal(r.status, 0, r.stderr);
  assert.ok(Math.abs(lastJson(r.stdout).mean - ref.mean) < 1e-5 * ref.mean);

  r = cli(['inception-score', '--probs', path.join(dir, 'c.npy'), '--splits', '61']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /splits \(61\) is larger than the number of rows \(60\)/);
  r = cli(['inception-score', '--probs', path.join(dir, 'c.npy'), '--splits', '0']);
  assert.equal(r.status, 2);
});

const hasNumpy = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

// The reference formula, verbatim from improved-gan's inception_score.py, on Dirichlet samples.
const NUMPY_SCRIPT = `
import json, sys
import numpy as np
out = sys.argv[1]
rng = np.random.RandomState(1234)
cases = [('sharp', 1000, 10, 0.1, 10, 'f8'), ('flat', 1000, 10, 10.0, 10, 'f8'),
         ('uneven', 537, 7, 0.5, 10, 'f4'), ('wide', 400, 1000, 0.3, 4, 'f8'), ('two', 90, 2, 1.0, 3, 'f4')]
res = {}
for name, n, k, alpha, splits, dt in cases:
    preds = rng.dirichlet([alpha] * k, size=n).astype(dt)
    preds = np.maximum(preds, np.finfo(dt).tiny)  # no exact zeros: the reference gives NaN on them
    preds = preds / preds.sum(1, keepdims=True)
    np.save('%s/%s.npy' % (out, name), preds)
    p64 = preds.astype(np.float64)
    scores = []
    for i in range(splits):
        part = p64[(i * p64.shape[0] // splits):((i + 1) * p64.shape[0] // splits), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        kl = np.mean(np.sum(kl, 1))
        scores.append(np.exp(kl))
    res[name] = {'mean': float(np.mean(scores)), 'std': float(np.std(scores)), 'n': n, 'splits': splits}
print(json.dumps(res))
`;

test('CLI agrees with the reference code run by numpy (Dirichlet rows, sharp and flat)', { skip: hasNumpy ? false : '/usr/bin/python3 has no numpy' }, () => {
  const dir = tmpDir();
  const py = spawnSync('/usr/bin/python3', ['-c', NUMPY_SCRIPT, dir], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(py.status, 0, py.stderr);
  const refs = JSON.parse(py.stdout) as Record<string, { mean: number; std: number; n: number; splits: number }>;
  for (const [name, ref] of Object.entries(refs)) {
    const r = cli(['inception-score', '--probs', path.join(dir, `${name}.npy`), '--splits', String(ref.splits)]);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
    const got = lastJson(r.stdout);
    assert.equal(got.n, ref.n);
    assert.ok(Math.abs(got.mean - ref.mean) <= 1e-4 * ref.mean, `${name}: mean ${got.mean} vs numpy ${ref.mean}`);
    assert.ok(Math.abs(got.std - ref.std) <= 1e-4 * Math.max(ref.std, 1e-12) + 1e-12, `${name}: std ${got.std} vs numpy ${ref.std}`);
  }
});
