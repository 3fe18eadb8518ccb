/**
 * SVHN cropped digits (http://ufldl.stanford.edu/housenumbers/): train_32x32.mat, test_32x32.mat.
 * Each is a MATLAB level-5 MAT-file with two variables:
 *   X  uint8, dims 32x32x3xN, stored column-major (MATLAB order: row index varies fastest),
 *      so X(r,c,ch,n) sits at r + 32*c + 1024*ch + 3072*n; we convert to NHWC [N,32,32,3].
 *   y  N x 1 (uint8 or double), labels 1..10, where 10 stands for the digit 0; we map to 0..9.
 *
 * MAT v5 (MathWorks "MAT-File Format", 2019): a 128-byte header (text, subsystem offset, version
 * 0x0100, endian indicator 'IM' for little-endian files), then data elements. Each element has a
 * tag (type u32, byte count u32) or, for payloads of 1..4 bytes, a packed "small element" tag
 * (byte count in the upper 16 bits, type in the lower 16, payload in the next 4 bytes).
 * Sub-elements of an array are padded to 8 bytes. miCOMPRESSED (15) elements hold one zlib
 * stream that inflates to an ordinary element. A numeric array (miMATRIX, 14) holds: array flags
 * (class in the low byte), dimensions (miINT32), name (miINT8), real part, optional imaginary
 * part. The stored type of the real part may be narrower than the class (MATLAB writes a double
 * array of small integers as miUINT8), so values are read by their stored type.
 * v7.3 files are HDF5 and are refused with a hint; cell/struct/char/sparse variables are skipped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { unzlibSync } from 'fflate';
import type { ImageDataset, Split } from './dataset';

// Data types (mi*) and array classes (mx*) from the format specification.
const MI = { INT8: 1, UINT8: 2, INT16: 3, UINT16: 4, INT32: 5, UINT32: 6, SINGLE: 7, DOUBLE: 9, INT64: 12, UINT64: 13, MATRIX: 14, COMPRESSED: 15 };
const MI_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8 };
const MX_NUMERIC: Record<number, string> = {
  6: 'double', 7: 'single', 8: 'int8', 9: 'uint8', 10: 'int16', 11: 'uint16', 12: 'int32', 13: 'uint32', 14: 'int64', 15: 'uint64',
};
const FLAG_COMPLEX = 0x0800;
const HEADER_BYTES = 128;

export interface MatNumericArray {
  name: string;
  /** MATLAB class, e.g. 'uint8', 'double'. */
  className: string;
  /** MATLAB dimensions; data is column-major over them. */
  dims: number[];
  /** Real part, column-major. uint8 storage is returned as bytes, anything else as float64. */
  data: Uint8Array | Float64Array;
}

interface Reader {
  bytes: Uint8Array;
  view: DataView;
  le: boolean;
  file: string;
}

function fail(file: string, msg: string): never {
  throw new Error(`svhn: ${file}: ${msg}`);
}

function makeReader(bytes: Uint8Array, le: boolean, file: string): Reader {
  return { bytes, view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), le, file };
}

interface Element {
  type: number;
  /** Payload start and length within the reader's bytes. */
  start: number;
  length: number;
  /** Offset of the element after this one (sub-element padding applied when `padded`). */
  next: number;
}

/** Read the tag at `off`; `padded` = sub-elements, which are aligned to 8 bytes. */
function readTag(r: Reader, off: number, padded: boolean, what: string): Element {
  if (off + 8 > r.bytes.length) fail(r.file, `truncated: ${what} tag at byte ${off} runs past the end (${r.bytes.length} bytes)`);
  const first = r.view.getUint32(off, r.le);
  if (first >>> 16 !== 0) {
    // Small data element: payload lives in the tag's second word.
    return { type: first & 0xffff, start: off + 4, length: first >>> 16, next: off + 8 };
  }
  const length = r.view.getUint32(off + 4, r.le);
  const start = off + 8;
  if (start + length > r.bytes.length) {
    fail(r.file, `truncated: ${what} at byte ${off} declares ${length} bytes but only ${r.bytes.length - start} remain`);
  }
  const next = start + (padded ? Math.ceil(length / 8) * 8 : length);
  return { type: first, start, length, next };
}

/** A numeric sub-element as bytes (uint8 storage, zero-copy) or float64 (anything else). */
function readNumbers(r: Reader, el: Element, what: string): Uint8Array | Float64Array {
  const size = MI_SIZE[el.type];
  if (!size) fail(r.file, `${what}: unsupported data type ${el.type}`);
  if (el.length % size !== 0) fail(r.file, `${what}: ${el.length} bytes is not a multiple of the ${size}-byte element type ${el.type}`);
  if (el.type === MI.UINT8) return r.bytes.subarray(el.start, el.start + el.length);
  const n = el.length / size;
  const out = new Float64Array(n);
  const v = r.view;
  for (let i = 0, o = el.start; i < n; i++, o += size) {
    switch (el.type) {
      case MI.INT8: out[i] = v.getInt8(o); break;
      case MI.INT16: out[i] = v.getInt16(o, r.le); break;
      case MI.UINT16: out[i] = v.getUint16(o, r.le); break;
      case MI.INT32: out[i] = v.getInt32(o, r.le); break;
      case MI.UINT32: out[i] = v.getUint32(o, r.le); break;
      case MI.SINGLE: out[i] = v.getFloat32(o, r.le); break;
      case MI.DOUBLE: out[i] = v.getFloat64(o, r.le); break;
      case MI.INT64: out[i] = Number(v.getBigInt64(o, r.le)); break;
      case MI.UINT64: out[i] = Number(v.getBigUint64(o, r.le)); break;
    }
  }
  return out;
}

/** Parse an miMATRIX payload; returns null for classes we do not need (cell, struct, char, ...). */
function parseMatrix(r: Reader, el: Element, index: number): MatNumericArray | null {
  const what = `variable #${index}`;
  const flags = readTag(r, el.start, true, `${what} array flags`);
  const flagWord = r.view.getUint32(flags.start, r.le);
  const cls = flagWord & 0xff;
  const dimsEl = readTag(r, flags.next, true, `${what} dimensions`);
  const dims = Array.from(readNumbers(r, dimsEl, `${what} dimensions`));
  const nameEl = readTag(r, dimsEl.next, true, `${what} name`);
  const name = Buffer.from(r.bytes.buffer, r.bytes.byteOffset + nameEl.start, nameEl.length).toString('latin1');
  const className = MX_NUMERIC[cls];
  if (!className) return null;
  if (flagWord & FLAG_COMPLEX) fail(r.file, `variable '${name}' is complex, expected a real array`);
  const realEl = readTag(r, nameEl.next, true, `variable '${name}' data`);
  const data = readNumbers(r, realEl, `variable '${name}' data`);
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) fail(r.file, `variable '${name}' has ${data.length} values, expected ${count} for dims ${dims.join('x')}`);
  return { name, className, dims, data };
}

/** Inflate one miCOMPRESSED payload into a reader over the element it contains. */
function inflateElement(r: Reader, el: Element, index: number): Reader {
  let inflated: Uint8Array;
  try {
    inflated = unzlibSync(r.bytes.subarray(el.start, el.start + el.length));
  } catch (e) {
    return fail(r.file, `compressed variable #${index} does not inflate (${(e as Error).message}); the file is probably truncated or corrupt`);
  }
  return makeReader(inflated, r.le, r.file);
}

/** Check the 128-byte header; returns whether the file is little-endian. */
function parseHeader(bytes: Uint8Array, file: string): boolean {
  if (bytes.length < HEADER_BYTES) fail(file, `size ${bytes.length} bytes is shorter than the 128-byte MAT-file header`);
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, 116).toString('latin1');
  if (text.startsWith('MATLAB 7.3')) fail(file, 'MATLAB v7.3 (HDF5) files are not supported; re-save with -v7 (or scipy.io.savemat)');
  const indicator = String.fromCharCode(bytes[126], bytes[127]);
  if (indicator !== 'IM' && indicator !== 'MI') {
    fail(file, `not a MATLAB 5 MAT-file (endian indicator '${indicator}', expected 'IM' or 'MI'; header text '${text.slice(0, 40).trim()}')`);
  }
  const le = indicator === 'IM';
  const version = new DataView(bytes.buffer, bytes.byteOffset).getUint16(124, le);
  if (version !== 0x0100) fail(file, `MAT-file version 0x${version.toString(16)}, expected 0x100 (level 5)`);
  return le;
}

/** All numeric variables in a MAT v5 file held in memory, by name. */
export function parseMat5(bytes: Uint8Array, file: string): Record<string, MatNumericArray> {
  const le = parseHeader(bytes, file);
  const top = makeReader(bytes, le, file);
  const out: Record<string, MatNumericArray> = {};
  let off = HEADER_BYTES;
  for (let index = 0; off < bytes.length; index++) {
    // Top-level elements are not padded (compressed ones in particular end where their stream ends).
    const el = readTag(top, off, false, `variable #${index}`);
    off = el.next;
    let r = top;
    let matrix = el;
    if (el.type === MI.COMPRESSED) {
      r = inflateElement(top, el, index);
      matrix = readTag(r, 0, false, `variable #${index} (inflated)`);
    }
    if (matrix.type !== MI.MATRIX) continue; // nothing else can hold a variable
    const arr = parseMatrix(r, matrix, index);
    if (arr) out[arr.name] = arr;
  }
  return out;
}

export interface SvhnArrays {
  n: number;
  height: number;
  width: number;
  channels: number;
  /** NHWC bytes. */
  pixels: Uint8Array;
  /** 0..9 (the file's 10 mapped to 0). */
  labels: Uint8Array;
}

/** MATLAB column-major H x W x C x N bytes to NHWC. */
export function columnMajorToNhwc(x: Uint8Array, h: number, w: number, c: number, n: number): Uint8Array {
  const out = new Uint8Array(x.length);
  const plane = h * w;
  const image = plane * c;
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const src = i * image + ch * plane;
      for (let col = 0; col < w; col++) {
        for (let row = 0; row < h; row++) {
          out[((i * h + row) * w + col) * c + ch] = x[src + col * h + row];
        }
      }
    }
  }
  return out;
}

/** Pixels as bytes whatever the stored type, checking every value is an integer 0..255. */
function asBytes(arr: MatNumericArray, file: string): Uint8Array {
  if (arr.data instanceof Uint8Array) return arr.data;
  const out = new Uint8Array(arr.data.length);
  for (let i = 0; i < arr.data.length; i++) {
    const v = arr.data[i];
    if (!Number.isInteger(v) || v < 0 || v > 255) fail(file, `X value ${v} at index ${i} is not a byte 0..255`);
    out[i] = v;
  }
  return out;
}

/** SVHN labels 1..10 to 0..9 (10 = digit 0). */
function mapLabels(y: MatNumericArray, file: string): Uint8Array {
  const out = new Uint8Array(y.data.length);
  for (let i = 0; i < y.data.length; i++) {
    const v = y.data[i];
    if (!Number.isInteger(v) || v < 1 || v > 10) fail(file, `label ${v} out of range 1..10 (at index ${i})`);
    out[i] = v % 10;
  }
  return out;
}

/** Decode SVHN's X and y from a MAT file held in memory. */
export function decodeSvhnMat(bytes: Uint8Array, file: string): SvhnArrays {
  const vars = parseMat5(bytes, file);
  const X = vars['X'];
  const y = vars['y'];
  const found = Object.keys(vars).join(', ') || 'none';
  if (!X) fail(file, `no numeric variable 'X' (found: ${found})`);
  if (!y) fail(file, `no numeric variable 'y' (found: ${found})`);
  if (X.dims.length !== 4) fail(file, `X has dims ${X.dims.join('x')}, expected 4 dims HxWxCxN (32x32x3xN)`);
  const [h, w, c, n] = X.dims;
  const yCount = y.dims.reduce((a, b) => a * b, 1);
  if (y.dims.length !== 2 || Math.min(...y.dims) !== 1 || yCount !== n) {
    fail(file, `y has dims ${y.dims.join('x')}, expected ${n}x1 to match X's ${n} images`);
  }
  const labels = mapLabels(y, file);
  const pixels = columnMajorToNhwc(asBytes(X, file), h, w, c, n);
  return { n, height: h, width: w, channels: c, pixels, labels };
}

/** Read and decode an SVHN cropped-digit .mat file. */
export function readSvhnMat(file: string): SvhnArrays {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    return fail(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return decodeSvhnMat(bytes, file);
}

export const SVHN_FILES: Record<Split, string> = { train: 'train_32x32.mat', test: 'test_32x32.mat' };

export function loadSvhn(split: Split, dataDir: string): ImageDataset {
  const file = path.join(dataDir, SVHN_FILES[split]);
  if (!fs.existsSync(file)) throw new Error(`svhn: missing file ${file}`);
  const a = readSvhnMat(file);
  return {
    name: 'svhn',
    split,
    n: a.n,
    height: a.height,
    width: a.width,
    channels: a.channels,
    pixels: a.pixels,
    labels: a.labels,
    source: `SVHN MAT file ${file}`,
  };
}
