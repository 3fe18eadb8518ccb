/**
 * lib/npy.ts and lib/atomic.ts: every format variant is built by the test itself; the authors'
 * released weights in ../shared are checked too when that folder exists.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { zipSync } from 'fflate';
import { encodeNpy, readNpy, readNpyFile, readNpz, readNpzBuffer, toCOrder, writeNpy } from '../lib/npy';
import { writeFileAtomic, writeJsonAtomic } from '../lib/atomic';

const SHARED = path.join(__dirname, '..', '..', 'shared', 'data', 'sgan-pretrained');

const tmpDirs: string[] = [];
after(() => tmpDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-npy-'));
  tmpDirs.push(d);
  return d;
}

/** A .npy with an arbitrary header dict and payload, in format version `major`. */
function rawNpy(dict: string, payload: Uint8Array, major = 1): Uint8Array {
  const lenBytes = major === 1 ? 2 : 4;
  const pre = 8 + lenBytes;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const header = Buffer.from(dict.padEnd(total - pre - 1, ' ') + '\n', major === 3 ? 'utf8' : 'latin1');
  const out = new Uint8Array(pre + header.length + payload.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, header.length, true);
  else view.setUint32(8, header.length, true);
  out.set(header, pre);
  out.set(payload, pre + header.length);
  return out;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function filesIn(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

test('encodeNpy/readNpy round trip float32 and float64, several ranks', () => {
  const cases: Array<[Float32Array | Float64Array, number[]]> = [
    [new Float32Array([1.5]), []],
    [new Float32Array([1, -2, 3.25, 4]), [4]],
    [Float32Array.from({ length: 24 }, (_, i) => i / 7), [2, 3, 4]],
    [Float64Array.from({ length: 6 }, (_, i) => Math.PI * i), [3, 2]],
    [new Float32Array(0), [0, 5]],
  ];
  for (const [data, shape] of cases) {
    const buf = encodeNpy(data, shape);
    assert.equal((buf.length - data.byteLength) % 64, 0, 'data starts 64-byte aligned like NumPy');
    const arr = readNpy(buf, 'x.npy');
    assert.deepEqual(arr.shape, shape);
    assert.equal(arr.dtype, data instanceof Float32Array ? '<f4' : '<f8');
    assert.equal(arr.fortranOrder, false);
    assert.equal(arr.data.constructor, data.constructor);
    assert.deepEqual(Array.from(arr.data), Array.from(data));
  }
});

test('encodeNpy refuses a shape that does not match the data', () => {
  assert.throws(() => encodeNpy(new Float32Array(5), [2, 3]), /shape \(2, 3\) holds 6 values, but the data has 5/);
});

test('writeNpy writes atomically and readNpyFile reads it back', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'w.npy');
  writeNpy(file, new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
  writeNpy(file, new Float32Array([6, 5, 4, 3, 2, 1]), [3, 2]); // overwrite in place
  assert.deepEqual(filesIn(dir), ['w.npy'], 'no temp file left behind');
  const arr = readNpyFile(file);
  assert.deepEqual(arr.shape, [3, 2]);
  assert.deepEqual(Array.from(arr.data), [6, 5, 4, 3, 2, 1]);
});

test('format versions 2.0 and 3.0 are read', () => {
  const payload = bytesOf(new Float32Array([7, 8]));
  for (const major of [2, 3]) {
    const arr = readNpy(rawNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", payload, major), `v${major}.npy`);
    assert.deepEqual(Array.from(arr.data), [7, 8]);
  }
});

test('integer, bool, half and big-endian dtypes', () => {
  const hdr = (d: string, shape: string): string => `{'descr': '${d}', 'fortran_order': False, 'shape': ${shape}, }`;
  const i4 = readNpy(rawNpy(hdr('<i4', '(3,)'), bytesOf(new Int32Array([-1, 0, 2 ** 31 - 1]))));
  assert.ok(i4.data instanceof Int32Array);
  assert.deepEqual(Array.from(i4.data), [-1, 0, 2 ** 31 - 1]);
  const u1 = readNpy(rawNpy(hdr('|u1', '(2,)'), new Uint8Array([0, 255])));
  assert.ok(u1.data instanceof Uint8Array);
  const b1 = readNpy(rawNpy(hdr('|b1', '(3,)'), new Uint8Array([1, 0, 1])));
  assert.deepEqual(Array.from(b1.data), [1, 0, 1]);
  const u2 = readNpy(rawNpy(hdr('<u2', '(1,)'), bytesOf(new Uint16Array([65535]))));
  assert.ok(u2.data instanceof Uint16Array);
  // float16: 1.0 = 0x3c00, -2.0 = 0xc000, 0.5 = 0x3800
  const f2 = readNpy(rawNpy(hdr('<f2', '(3,)'), bytesOf(new Uint16Array([0x3c00, 0xc000, 0x3800]))));
  assert.ok(f2.data instanceof Float32Array);
  assert.deepEqual(Array.from(f2.data), [1, -2, 0.5]);
  // big-endian float32 1.0 = 3f 80 00 00
  const be = readNpy(rawNpy(hdr('>f4', '(1,)'), new Uint8Array([0x3f, 0x80, 0, 0])));
  assert.deepEqual(Array.from(be.data), [1]);
  // Python 2 era headers wrote shapes as longs: (2L,)
  const py2 = readNpy(rawNpy(hdr('<f4', '(2L,)'), bytesOf(new Float32Array([1, 2]))));
  assert.deepEqual(py2.shape, [2]);
});

test('int64 becomes float64 when exact, and errors beyond 2^53', () => {
  const hdr = "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }";
  const ok = readNpy(rawNpy(hdr, bytesOf(new BigInt64Array([-5n, 2n ** 53n - 1n]))), 'ok.npy');
  assert.ok(ok.data instanceof Float64Array);
  assert.equal(ok.dtype, '<i8');
  assert.deepEqual(Array.from(ok.data), [-5, 2 ** 53 - 1]);
  assert.throws(() => readNpy(rawNpy(hdr, bytesOf(new BigInt64Array([0n, 2n ** 60n]))), 'big.npy'), /npy: big\.npy: <i8 value 1152921504606846976 at flat index 1 is not exactly representable/);
});

test('toCOrder reorders Fortran arrays like NumPy', () => {
  // NumPy: np.asfortranarray(np.arange(6).reshape(2,3)) stores 0,3,1,4,2,5.
  const hdr = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
  const f = readNpy(rawNpy(hdr, bytesOf(new Float32Array([0, 3, 1, 4, 2, 5]))));
  assert.equal(f.fortranOrder, true);
  const c = toCOrder(f);
  assert.equal(c.fortranOrder, false);
  assert.deepEqual(Array.from(c.data), [0, 1, 2, 3, 4, 5]);
  // 3-D: element (i,j,k) of shape (2,3,4) in Fortran order sits at i + 2j + 6k.
  const shape = [2, 3, 4];
  const fdata = new Float32Array(24);
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) fdata[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
  const c3 = toCOrder({ dtype: '<f4', shape, fortranOrder: true, data: fdata });
  const expected: number[] = [];
  for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) expected.push(100 * i + 10 * j + k);
  assert.deepEqual(Array.from(c3.data), expected);
  const already = readNpy(encodeNpy(new Float32Array([1, 2]), [2]));
  assert.equal(toCOrder(already), already);
});

test('object arrays (pickles) are refused without being parsed', () => {
  // What np.save(allow_pickle=True) writes for an object array: '|O' header then a pickle.
  const pickle = new Uint8Array([0x80, 0x02, 0x63, 0x6f, 0x73, 0x0a, 0x73, 0x79, 0x73, 0x74, 0x65, 0x6d, 0x2e]);
  const buf = rawNpy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", pickle);
  assert.throws(() => readNpy(buf, 'evil.npy'), /npy: evil\.npy: dtype '\|O' is an object array \(stored as a pickle\); refusing/);
});

test('bad inputs name the file and the problem', () => {
  const good = encodeNpy(new Float32Array([1, 2, 3, 4]), [4]);
  assert.throws(() => readNpy(good.subarray(0, good.length - 3), 'cut.npy'), /npy: cut\.npy: data is 13 bytes, expected 16 for shape \(4,\) of <f4 \(truncated\)/);
  assert.throws(() => readNpy(good.subarray(0, 20), 'hdr.npy'), /npy: hdr\.npy: truncated: header says \d+ bytes/);
  assert.throws(() => readNpy(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), 'junk.npy'), /npy: junk\.npy: not a \.npy file/);
  assert.throws(
    () => readNpy(rawNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)), 's.npy'),
    /npy: s\.npy: structured dtypes are not supported/,
  );
  assert.throws(() => readNpy(rawNpy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)), 'c.npy'), /npy: c\.npy: unsupported dtype '<c8'/);
  const v9 = new Uint8Array(good);
  v9[6] = 9;
  assert.throws(() => readNpy(v9, 'v9.npy'), /npy: v9\.npy: format version 9\.0, expected 1\.0, 2\.0 or 3\.0/);
  assert.throws(() => readNpyFile('/nonexistent/dir/x.npy'), /npy: \/nonexistent\/dir\/x\.npy: cannot read \(ENOENT\)/);
});

test('npz with stored and deflated members, keys without .npy', () => {
  const a = encodeNpy(Float32Array.from({ length: 50 }, (_, i) => i), [5, 10]);
  const b = encodeNpy(new Float64Array([0.25, -1]), [2]);
  for (const level of [0, 6] as const) {
    const zip = zipSync({ 'arr_0.npy': [a, { level }], 'arr_1.npy': [b, { level }] });
    const z = readNpzBuffer(zip, `l${level}.npz`);
    assert.deepEqual(Object.keys(z).sort(), ['arr_0', 'arr_1']);
    assert.deepEqual(z.arr_0.shape, [5, 10]);
    assert.equal(z.arr_0.data[49], 49);
    assert.deepEqual(Array.from(z.arr_1.data), [0.25, -1]);
  }
  const dir = tmpDir();
  const file = path.join(dir, 'm.npz');
  fs.writeFileSync(file, zipSync({ 'w.npy': a }));
  assert.deepEqual(readNpz(file).w.shape, [5, 10]);
  fs.writeFileSync(path.join(dir, 'bad.npz'), 'not a zip at all');
  assert.throws(() => readNpz(path.join(dir, 'bad.npz')), new RegExp(`npz: ${path.join(dir, 'bad.npz').replace(/[/.]/g, '\\$&')}: not a readable zip archive`));
  assert.throws(() => readNpzBuffer(zipSync({ 'notes.txt': new Uint8Array([65]) }), 'o.npz'), /npz: o\.npz: member 'notes\.txt' is not a \.npy file/);
  // A bad member is reported as archive:member.
  assert.throws(() => readNpzBuffer(zipSync({ 'arr_0.npy': a.subarray(0, 150) }), 't.npz'), /npy: t\.npz:arr_0\.npy: data is 22 bytes, expected 200/);
});

test('writeFileAtomic / writeJsonAtomic', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'sub', 'r.json');
  writeJsonAtomic(file, { a: 1, b: [1, 2] });
  assert.equal(fs.readFileSync(file, 'utf8'), '{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}\n');
  writeFileAtomic(file, 'second');
  assert.equal(fs.readFileSync(file, 'utf8'), 'second');
  assert.deepEqual(filesIn(path.dirname(file)), ['r.json']);
  // Destination is a folder: the rename fails, the error names it, and no temp file remains.
  const asDir = path.join(dir, 'taken');
  fs.mkdirSync(asDir);
  assert.throws(() => writeFileAtomic(asDir, 'x'), new RegExp(`writeFileAtomic: ${asDir.replace(/[/.]/g, '\\$&')}:`));
  assert.deepEqual(filesIn(dir), ['sub', 'taken']);
  assert.throws(() => writeJsonAtomic(path.join(dir, 'u.json'), undefined), /not JSON-serialisable/);
});

test('real released weights: mnist_encoder.npz', (t) => {
  const file = path.join(SHARED, 'mnist_encoder.npz');
  if (!fs.existsSync(file)) return t.skip(`${file} absent`);
  const z = readNpz(file);
  const shapes = Object.fromEntries(Object.entries(z).map(([k, v]) => [k, v.shape]));
  assert.deepEqual(shapes, {
    arr_0: [32, 1, 5, 5], arr_1: [32], arr_2: [32, 32, 5, 5], arr_3: [32], arr_4: [512, 256], arr_5: [256], arr_6: [256, 10], arr_7: [10],
  });
  for (const v of Object.values(z)) {
    assert.equal(v.dtype, '<f4');
    assert.ok(v.data instanceof Float32Array);
    assert.ok(v.data.every((x) => Number.isFinite(x)));
  }
  // Spot values, read with NumPy when the test was written.
  assert.ok(Math.abs(z.arr_0.data[0] - 0.34986063838005066) < 1e-7);
  assert.ok(Math.abs(z.arr_6.data[0] - 0.2646363377571106) < 1e-7);
});

test('real released weights: cifar10_encoder.npz and cifar10_meanimg.npy', (t) => {
  const enc = path.join(SHARED, 'cifar10_encoder.npz');
  const mean = path.join(SHARED, 'cifar10_meanimg.npy');
  if (!fs.existsSync(enc) || !fs.existsSync(mean)) return t.skip(`${SHARED} absent`);
  const z = readNpz(enc);
  assert.deepEqual(z.arr_0.shape, [64, 3, 5, 5]);
  assert.deepEqual(z.arr_2.shape, [128, 64, 5, 5]);
  assert.deepEqual(z.arr_4.shape, [3200, 256]);
  assert.deepEqual(z.arr_6.shape, [256, 10]);
  const m = readNpyFile(mean);
  assert.equal(m.dtype, '<f4');
  assert.deepEqual(m.shape, [3, 32, 32]);
  const avg = Array.from(m.data).reduce((s, v) => s + v, 0) / m.data.length;
  assert.ok(Math.abs(avg - 0.4733633) < 1e-5, `mean of the mean image ${avg}`);
});
