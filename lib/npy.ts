/**
 * NumPy .npy / .npz reading and .npy writing, for the paper authors' released weights
 * (mnist_encoder.npz, cifar10_encoder.npz, cifar10_meanimg.npy) and our own exports.
 *
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 *   "\x93NUMPY" | major | minor | header length (u16 for v1.0, u32 for v2.0/v3.0, little-endian)
 *   | header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (3, 32, 32), }
 *   | raw data.
 *
 * Safety: object arrays ('|O') are stored as pickles; unpickling can run arbitrary code, so they
 * are refused outright. We only ever parse the header text with regular expressions, never eval.
 *
 * int64/uint64 ('<i8', '<u8'): tfjs has no 64-bit integer dtype, so they are converted to a
 * Float64Array; every value must be exactly representable (|v| <= 2^53 - 1) or reading fails.
 * The returned `dtype` still says what the file held ('<i8'). float16 ('<f2') becomes a
 * Float32Array for the same reason. bool ('|b1') becomes a Uint8Array of 0/1.
 */
import * as fs from 'fs';
import * as os from 'os';
import { unzipSync } from 'fflate';
import { writeFileAtomic } from './atomic';

export type NpyData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | Uint8Array
  | Uint16Array
  | Uint32Array;

export interface NpyArray {
  /** The descr string from the file, e.g. '<f4' (see the module comment for converted kinds). */
  dtype: string;
  shape: number[];
  /** True when `data` is in column-major order; see toCOrder. */
  fortranOrder: boolean;
  data: NpyData;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
const HOST_LITTLE_ENDIAN = os.endianness() === 'LE';
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

interface ParsedHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

function fail(name: string, msg: string): never {
  throw new Error(`npy: ${name}: ${msg}`);
}

function hasMagic(buf: Uint8Array): boolean {
  return buf.length >= 6 && MAGIC.every((b, i) => buf[i] === b);
}

/** Parse the dict literal. Only the three keys NumPy writes are read; nothing is evaluated. */
function parseHeader(text: string, name: string): ParsedHeader {
  if (/'descr'\s*:\s*\[/.test(text)) fail(name, `structured dtypes are not supported (header ${text.trim()})`);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(text);
  if (!descr || !fortran || !shape) fail(name, `malformed header, expected descr/fortran_order/shape, found ${text.trim()}`);
  const dims = shape[1]
    .split(',')
    .map((s) => s.trim().replace(/L$/, '')) // Python 2 wrote longs as "3L"
    .filter((s) => s.length > 0)
    .map((s) => {
      if (!/^\d+$/.test(s)) fail(name, `bad shape entry '${s}' in header ${text.trim()}`);
      return Number(s);
    });
  return { descr: descr[1], fortranOrder: fortran[1] === 'True', shape: dims };
}

interface DtypeInfo {
  kind: 'f' | 'i' | 'u' | 'b';
  size: number;
  /** Whether the stored bytes must be reversed per element to read them on this host. */
  swap: boolean;
}

/** Decode a descr like '<f4'; refuses objects (pickles), strings, complex, datetimes, etc. */
function parseDescr(descr: string, name: string): DtypeInfo {
  const m = /^([<>|=]?)([a-zA-Z])(\d*)$/.exec(descr);
  if (!m) fail(name, `unsupported dtype '${descr}'`);
  const [, order, kind, sizeText] = m;
  if (kind === 'O') {
    fail(name, `dtype '${descr}' is an object array (stored as a pickle); refusing to load it, save a numeric array instead`);
  }
  const size = Number(sizeText || '0');
  const supported: Record<string, number[]> = { f: [2, 4, 8], i: [1, 2, 4, 8], u: [1, 2, 4, 8], b: [1] };
  if (!(kind in supported) || !supported[kind].includes(size)) {
    fail(name, `unsupported dtype '${descr}', expected one of f2/f4/f8, i1..i8, u1..u8, b1`);
  }
  const fileLittle = order === '<' || ((order === '=' || order === '|' || order === '') && HOST_LITTLE_ENDIAN);
  return { kind: kind as DtypeInfo['kind'], size, swap: size > 1 && fileLittle !== HOST_LITTLE_ENDIAN };
}

/** Copy into a fresh (aligned) buffer, reversing byte order per element when needed. */
function nativeBytes(src: Uint8Array, size: number, swap: boolean): ArrayBuffer {
  const out = new Uint8Array(src.length);
  if (!swap) {
    out.set(src);
    return out.buffer;
  }
  for (let i = 0; i < src.length; i += size) {
    for (let k = 0; k < size; k++) out[i + k] = src[i + size - 1 - k];
  }
  return out.buffer;
}

/** IEEE 754 half precision to number. */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function int64ToFloat64(buf: ArrayBuffer, signed: boolean, name: string, descr: string): Float64Array {
  const big = signed ? new BigInt64Array(buf) : new BigUint64Array(buf);
  const out = new Float64Array(big.length);
  for (let i = 0; i < big.length; i++) {
    const v = Number(big[i]);
    if (Math.abs(v) > MAX_SAFE) fail(name, `${descr} value ${big[i]} at flat index ${i} is not exactly representable as a float64 (|v| > 2^53-1)`);
    out[i] = v;
  }
  return out;
}

function toTypedArray(bytes: Uint8Array, info: DtypeInfo, name: string, descr: string): NpyData {
  const buf = nativeBytes(bytes, info.size, info.swap);
  switch (`${info.kind}${info.size}`) {
    case 'f2': {
      const h = new Uint16Array(buf);
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = halfToNumber(h[i]);
      return out;
    }
    case 'f4': return new Float32Array(buf);
    case 'f8': return new Float64Array(buf);
    case 'i1': return new Int8Array(buf);
    case 'i2': return new Int16Array(buf);
    case 'i4': return new Int32Array(buf);
    case 'i8': return int64ToFloat64(buf, true, name, descr);
    case 'u1': return new Uint8Array(buf);
    case 'b1': return new Uint8Array(buf);
    case 'u2': return new Uint16Array(buf);
    case 'u4': return new Uint32Array(buf);
    case 'u8': return int64ToFloat64(buf, false, name, descr);
    default: return fail(name, `unsupported dtype '${descr}'`);
  }
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function formatShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/** Parse one .npy file held in memory. `name` is only used in error messages. */
export function readNpy(buf: Uint8Array, name = '<buffer>'): NpyArray {
  if (!hasMagic(buf)) fail(name, 'not a .npy file (missing \\x93NUMPY magic)');
  if (buf.length < 10) fail(name, `truncated: ${buf.length} bytes, shorter than the 10-byte preamble`);
  const major = buf[6];
  const minor = buf[7];
  if (major < 1 || major > 3) fail(name, `format version ${major}.${minor}, expected 1.0, 2.0 or 3.0`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (buf.length < 8 + lenBytes) fail(name, `truncated: ${buf.length} bytes, header length field missing`);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > buf.length) fail(name, `truncated: header says ${headerLen} bytes but the file has ${buf.length} bytes in all`);
  // v3.0 exists only to allow UTF-8 in the header (structured field names); v1/v2 are latin1.
  const header = Buffer.from(buf.buffer, buf.byteOffset + 8 + lenBytes, headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const parsed = parseHeader(header, name);
  const info = parseDescr(parsed.descr, name);
  const expected = shapeSize(parsed.shape) * info.size;
  const found = buf.length - dataStart;
  if (found !== expected) {
    fail(name, `data is ${found} bytes, expected ${expected} for shape ${formatShape(parsed.shape)} of ${parsed.descr}${found < expected ? ' (truncated)' : ''}`);
  }
  const data = toTypedArray(buf.subarray(dataStart), info, name, parsed.descr);
  return { dtype: parsed.descr, shape: parsed.shape, fortranOrder: parsed.fortranOrder, data };
}

/** Read a .npy file from disk. */
export function readNpyFile(file: string): NpyArray {
  return readNpy(readOrFail(file), file);
}

function readOrFail(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`npy: ${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * Parse an .npz (a zip of .npy members, stored or deflated) held in memory.
 * Keys are the member names without the '.npy' suffix (np.savez's arr_0, arr_1, ...).
 */
export function readNpzBuffer(buf: Uint8Array, name = '<buffer>'): Record<string, NpyArray> {
  let members: Record<string, Uint8Array>;
  try {
    members = unzipSync(buf);
  } catch (e) {
    throw new Error(`npz: ${name}: not a readable zip archive (${(e as Error).message})`);
  }
  const out: Record<string, NpyArray> = {};
  for (const [member, bytes] of Object.entries(members)) {
    if (member.endsWith('/')) continue; // folder entries carry no data
    if (!member.endsWith('.npy')) throw new Error(`npz: ${name}: member '${member}' is not a .npy file`);
    out[member.slice(0, -4)] = readNpy(bytes, `${name}:${member}`);
  }
  return out;
}

/** Read an .npz file from disk. */
export function readNpz(file: string): Record<string, NpyArray> {
  return readNpzBuffer(readOrFail(file), file);
}

/** Allocate an array of the same concrete type as `like`. */
function allocLike<T extends NpyData>(like: T, n: number): T {
  const Ctor = like.constructor as new (n: number) => T;
  return new Ctor(n);
}

/**
 * Return a C-order (row-major) copy of a Fortran-order array, or the array itself if it already
 * is C-order. Fortran arrays arise from np.save of a transposed view (np.asfortranarray).
 */
export function toCOrder(arr: NpyArray): NpyArray {
  if (!arr.fortranOrder) return arr;
  const shape = arr.shape;
  const ndim = shape.length;
  const n = shapeSize(shape);
  // With <= 1 dimension the two orders coincide.
  if (ndim <= 1) return { ...arr, fortranOrder: false };
  const fStride = new Array<number>(ndim);
  fStride[0] = 1;
  for (let k = 1; k < ndim; k++) fStride[k] = fStride[k - 1] * shape[k - 1];
  const out = allocLike(arr.data, n);
  const idx = new Array<number>(ndim).fill(0);
  let src = 0;
  // Walk the output in C order with an odometer over the index, keeping the Fortran offset in step.
  for (let dst = 0; dst < n; dst++) {
    out[dst] = arr.data[src];
    for (let k = ndim - 1; k >= 0; k--) {
      idx[k]++;
      src += fStride[k];
      if (idx[k] < shape[k]) break;
      src -= fStride[k] * shape[k];
      idx[k] = 0;
    }
  }
  return { dtype: arr.dtype, shape: [...shape], fortranOrder: false, data: out };
}

/** Serialise a float array as a version-1.0 .npy (C order, little-endian). Pure; see writeNpy. */
export function encodeNpy(data: Float32Array | Float64Array, shape: readonly number[]): Uint8Array {
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`npy: bad shape ${formatShape(shape)}`);
  if (shapeSize(shape) !== data.length) {
    throw new Error(`npy: shape ${formatShape(shape)} holds ${shapeSize(shape)} values, but the data has ${data.length}`);
  }
  const descr = data instanceof Float32Array ? '<f4' : '<f8';
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${formatShape(shape)}, }`;
  // NumPy pads the header with spaces and a final newline so the data starts 64-byte aligned.
  const preamble = 10;
  const total = Math.ceil((preamble + dict.length + 1) / 64) * 64;
  const headerLen = total - preamble;
  if (headerLen > 0xffff) throw new Error(`npy: header of ${headerLen} bytes does not fit format 1.0`);
  const header = dict.padEnd(headerLen - 1, ' ') + '\n';
  const out = new Uint8Array(total + data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, headerLen, true);
  out.set(Buffer.from(header, 'latin1'), preamble);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LITTLE_ENDIAN) {
    out.set(bytes, total);
  } else {
    out.set(new Uint8Array(nativeBytes(bytes, data.BYTES_PER_ELEMENT, true)), total);
  }
  return out;
}

/** Write a float array as .npy, atomically (temp file then rename). */
export function writeNpy(file: string, data: Float32Array | Float64Array, shape: readonly number[]): void {
  writeFileAtomic(file, encodeNpy(data, shape));
}
