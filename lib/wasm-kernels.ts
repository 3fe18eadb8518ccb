/**
 * Training kernels for @tensorflow/tfjs-backend-wasm.
 *
 * Stock tfjs-backend-wasm 4.22.0 runs the forward Conv2D through XNNPACK (fast), but for training
 *  - `Conv2DBackpropFilter` is missing (every gradient w.r.t. a conv filter throws),
 *  - `Conv2DBackpropInput` (every conv2dTranspose, every conv2d input gradient) is a scalar loop,
 *    5-12x slower than the forward conv,
 *  - `MaxPoolGrad` is wrong: it starts the running maximum at 0 (not -Infinity), so windows whose
 *    values are all negative get no gradient (invisible after a ReLU, wrong after leakyRelu or a
 *    linear layer), and slow (34 ms for [100,24,24,32]).
 * Every other kernel that conv2d / conv2dTranspose / maxPool / tf.moments batch norm / rsqrt /
 * relu / leakyRelu / sigmoid / softplus / logSumExp / dropout / dense layers / tf.train.adam use
 * forward and backward is registered for wasm and agrees with the cpu backend.
 *
 * This file registers replacements built from kernels the wasm backend runs fast (Conv2D,
 * DepthwiseConv2dNative and BatchMatMul via XNNPACK; Transpose, Reshape, PadV2, AddN, Concat, Sum,
 * Fill, Slice), called through the backend's own kernel functions. Every intermediate TensorInfo
 * is released with backend.disposeData (see KernelScope). Only dataFormat 'NHWC' is supported (as
 * for the wasm Conv2D itself).
 *
 * Conv2DBackpropInput (the transposed conv), per spatial axis with stride s, filter k, forward
 * top pad P:  dx[ih] = sum over (oh, kh) with oh*s + kh - P = ih of dy[oh] * W[kh].
 *  - Zero insertion (dilate dy by s, then one stride-1 conv with the flipped filter) would spend
 *    all but 1/s^2 of its multiply-adds on inserted zeros. Instead, the sub-pixel ("phase")
 *    decomposition: dx rows ih = m*s + rho only meet the taps kh = j*s + r, r = (rho + P) mod s,
 *    so each of the s_h*s_w output phases is a stride-1 conv of dy with a small sub-filter (every
 *    s-th tap of the flipped, in/out-swapped filter): no multiply-add on a zero. The phases are
 *    interleaved with cheap Transposes and cropped to the requested size (separatePhases).
 *  - With few dx channels (< 8) all phases run as one conv with phases x C_in output channels
 *    (combinedPhases): XNNPACK computes output channels 8 at a time.
 *  - Stride 1 is the single-phase case: one Conv2D, or a sum of convs over blocks of taps when dx
 *    is much larger than dy (tapBlocks: 'valid' 8x8 -> 12x12 wastes half of a single conv's work on
 *    the padding), or for one dx channel a depthwise conv (+ channel sum), possibly after a 1x1
 *    GEMM (singleChannelPhase). When dx is larger than dy and has >= 128 or < 8 channels: one GEMM
 *    over all taps and a scatter-add of its columns (gemmCol2im).
 *
 * Conv2DBackpropFilter:
 *   dW[kh, kw, ci, co] = sum over (n, oh, ow) of x[n, oh*s + kh - P, ow*s + kw - L, ci] * dy[n, oh, ow, co]
 * is itself a convolution whose contracted "channel" axis is the batch: input x transposed to
 * [C_in, H, W, N] (C_in plays the batch), filter dy transposed to [OH, OW, N, C_out], dilation s
 * (the forward stride), stride 1; the result [C_in, kh, kw, C_out] is transposed back. XNNPACK
 * handles the dilation natively, so this costs the forward conv's multiply-adds (plus packing dy
 * as a filter). Rows of x the forward conv never read are cropped first; 'same'/explicit padding
 * becomes the conv's padding. Measured against im2col + BatchMatMul, which needs the k*k*C_in-wide
 * patch matrix, this is faster except with a single input channel, where im2col is a cheap one-hot
 * conv and packing the large dy dominates: that case uses patches^T . dy (singleChannelFilterGrad).
 *
 * MaxPoolGrad: a direct pass on the wasm heap with the cpu backend's semantics (see maxPoolGrad).
 *
 * Besides the training kernels, three stock kernels are replaced for speed (same results up to
 * float32 rounding; every case they do not speed up is passed to the stock kernel):
 *  - Identity, and Cast to the same dtype: the stock kernels copy the tensor. tfjs-core clones
 *    (Identity) every tensor a kernel saves for its gradient, ~500 activations per SGAN training
 *    step, and the gradient of every product casts its inputs to float32. Tensors are immutable, so
 *    ours share the data (a reference count), as the cpu and webgl backends do.
 *  - BatchMatMul: the stock kernel uses XNNPACK only without transposes; with transposeA or
 *    transposeB (every dense layer's gradients: dy.W^T, x^T.dy) it runs a scalar triple loop, ~10x
 *    slower. Ours transposes the operand (a fast Transpose) and runs the XNNPACK path.
 *  - Sum / Mean over leading axes (batch-norm statistics, bias gradients, the gradients of
 *    broadcasts: [N,H,W,C] -> [C]): the stock kernels first transpose the reduced axes innermost, a
 *    strided copy of the whole tensor. Ours sum the rows in one contiguous pass on the heap.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = tf.TensorInfo;
type DataId = TensorInfo['dataId'];
type Pads = [number, number, number, number]; // top, bottom, left, right
type KernelArgs = Parameters<tf.KernelFunc>[0];

/** The part of BackendWasm these kernels rely on. */
interface WasmBackend {
  disposeData(dataId: DataId): boolean;
  incRef(dataId: DataId): void;
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array;
}

const BACKEND = 'wasm';

// ---------------------------------------------------------------------------------------------
// Calling the wasm backend's own kernels, with reference counting

function wasmKernel(name: string): tf.KernelFunc {
  const config = tf.getKernel(name, BACKEND);
  if (config === undefined) throw new Error(`wasm-kernels: kernel '${name}' is not registered for 'wasm'`);
  return config.kernelFunc;
}

/** The stock wasm kernels that ours replaced, kept for the cases ours pass on to them. */
const stockKernels = new Map<string, tf.KernelConfig>();

function stockKernel(name: string): tf.KernelFunc {
  const config = stockKernels.get(name);
  if (config === undefined) throw new Error(`wasm-kernels: no stock wasm kernel '${name}' was recorded`);
  return config.kernelFunc;
}

/**
 * Runs backend kernels and remembers every TensorInfo they return, so that all intermediates can
 * be released (backend.disposeData) once the composite kernel has its result.
 */
class KernelScope {
  private readonly created: TensorInfo[] = [];
  constructor(readonly backend: WasmBackend) {}

  run(name: string, inputs: tf.NamedTensorInfoMap | TensorInfo[], attrs: object = {}, kernel = wasmKernel(name)): TensorInfo {
    const out = kernel({
      inputs: inputs as tf.NamedTensorInfoMap,
      backend: this.backend,
      attrs: attrs as tf.NamedAttrMap,
    });
    if (Array.isArray(out)) throw new Error(`wasm-kernels: kernel '${name}' returned several outputs`);
    this.created.push(out);
    return out;
  }

  /** Release everything created in this scope except `keep`. */
  disposeAllExcept(keep: TensorInfo | undefined): void {
    for (const info of this.created) {
      if (info !== keep) this.backend.disposeData(info.dataId);
    }
    this.created.length = 0;
  }

  // Thin typed wrappers over the kernels used below.
  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }
  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }
  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    return this.run('Slice', { x }, { begin, size });
  }
  concat(xs: TensorInfo[], axis: number): TensorInfo {
    return this.run('Concat', xs, { axis });
  }
  /**
   * Rows `rows` of the matrix x (null: a row of zeros). Done as contiguous copies on the wasm heap
   * (like the backend's own Concat and Slice kernels): the stock GatherV2 copies element by
   * element and Slice first copies all of x, both far slower for gathering filter taps.
   */
  gatherRows(x: TensorInfo, rows: ReadonlyArray<number | null>): TensorInfo {
    const rowLength = x.shape[1];
    const out = this.backend.makeOutput([rows.length, rowLength], 'float32');
    this.created.push(out);
    const src = this.backend.typedArrayFromHeap(x);
    const dst = this.backend.typedArrayFromHeap(out);
    rows.forEach((row, i) => {
      if (row === null) dst.fill(0, i * rowLength, (i + 1) * rowLength);
      else dst.set(src.subarray(row * rowLength, (row + 1) * rowLength), i * rowLength);
    });
    return out;
  }
  /** Rows [begin, begin + count) of x viewed as a [rows, rowLength] matrix: one contiguous copy. */
  rowRange(x: TensorInfo, rowLength: number, begin: number, count: number): TensorInfo {
    const out = this.backend.makeOutput([count, rowLength], 'float32');
    this.created.push(out);
    const src = this.backend.typedArrayFromHeap(x);
    this.backend.typedArrayFromHeap(out).set(src.subarray(begin * rowLength, (begin + count) * rowLength));
    return out;
  }
  pad(x: TensorInfo, paddings: [number, number][]): TensorInfo {
    return this.run('PadV2', { x }, { paddings, constantValue: 0 });
  }
  addN(xs: TensorInfo[]): TensorInfo {
    return this.run('AddN', xs);
  }
  /** A small constant: zeros, then `init` sets its (row-major) values. */
  constant(shape: number[], init: (values: Float32Array) => void): TensorInfo {
    const out = this.backend.makeOutput(shape, 'float32');
    this.created.push(out);
    const values = this.backend.typedArrayFromHeap(out);
    values.fill(0);
    init(values);
    return out;
  }
  batchMatMul(a: TensorInfo, b: TensorInfo): TensorInfo {
    return this.run('BatchMatMul', { a, b }, { transposeA: false, transposeB: false });
  }
  zeros(shape: number[]): TensorInfo {
    return this.run('Fill', {}, { shape, value: 0, dtype: 'float32' });
  }
  sum(x: TensorInfo, axis: number[]): TensorInfo {
    return this.run('Sum', { x }, { axis, keepDims: false });
  }
  /** NHWC conv with explicit (non-negative) pads. */
  conv2d(
    x: TensorInfo, filter: TensorInfo, pads: Pads, dilations: [number, number] = [1, 1], strides: [number, number] = [1, 1],
  ): TensorInfo {
    return this.run('Conv2D', { x, filter }, {
      strides, pad: explicitPad(pads), dataFormat: 'NHWC', dilations, dimRoundingMode: undefined,
    });
  }
  /** Stride-1 NHWC depthwise conv (channel multiplier 1) with explicit pads. */
  depthwiseConv2d(x: TensorInfo, filter: TensorInfo, pads: Pads): TensorInfo {
    return this.run('DepthwiseConv2dNative', { x, filter }, {
      strides: [1, 1], pad: explicitPad(pads), dataFormat: 'NHWC', dilations: [1, 1], dimRoundingMode: undefined,
    });
  }
}

function explicitPad([top, bottom, left, right]: Pads): tf.backend_util.ExplicitPadding {
  return [[0, 0], [top, bottom], [left, right], [0, 0]];
}

/** Run `body` in a fresh scope; all intermediates except the returned result are released. */
function withScope(backend: WasmBackend, body: (s: KernelScope) => TensorInfo): TensorInfo {
  const scope = new KernelScope(backend);
  let result: TensorInfo | undefined;
  try {
    result = body(scope);
    return result;
  } finally {
    scope.disposeAllExcept(result);
  }
}

/**
 * Make an explicit padding non-negative: a negative pad means "drop that many rows of x".
 * Returns the crop (begin, size) along the axis and the remaining pads.
 */
function splitNegativePads(size: number, before: number, after: number) {
  const cropBegin = Math.max(0, -before);
  const cropEnd = Math.max(0, -after);
  return { begin: cropBegin, size: size - cropBegin - cropEnd, before: Math.max(0, before), after: Math.max(0, after) };
}

/** Crop rows/cols of an NHWC tensor so that the given (possibly negative) pads become valid. */
function cropForPads(s: KernelScope, x: TensorInfo, pads: Pads): { x: TensorInfo; pads: Pads } {
  const [n, h, w, c] = x.shape;
  const rows = splitNegativePads(h, pads[0], pads[1]);
  const cols = splitNegativePads(w, pads[2], pads[3]);
  const cropped = rows.size !== h || cols.size !== w
    ? s.slice(x, [0, rows.begin, cols.begin, 0], [n, rows.size, cols.size, c])
    : x;
  return { x: cropped, pads: [rows.before, rows.after, cols.before, cols.after] };
}

function requireNHWC(dataFormat: string, kernel: string): void {
  if (dataFormat !== 'NHWC') {
    throw new Error(`wasm ${kernel}: only dataFormat 'NHWC' is supported, got '${dataFormat}'`);
  }
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropInput: phase decomposition of the transposed convolution

/**
 * One output phase along one spatial axis: the dx rows ih = m*stride + rho, m = 0..M-1.
 * With t = ih + P = m*s + (rho + P), r = (rho + P) mod s and c = floor((rho + P) / s), the taps
 * that reach these rows are kh = j*s + r (j = 0..taps-1), from dy row m + c - j. As a stride-1
 * correlation over dy, output row m reads dy rows m - lag .. m - lag + taps - 1 (lag = taps-1-c)
 * with the sub-filter sub[u] = W[(taps-1-u)*s + r] (every s-th tap, flipped).
 */
interface AxisPhase {
  taps: number; // sub-filter length (0: this phase receives no contributions)
  residue: number; // r: the sub-filter's taps are W[j*s + r]
  lag: number;
}

interface AxisPlan {
  stride: number;
  dySize: number; // OH
  rowsPerPhase: number; // M = ceil(dxSize / stride); every phase is computed with M rows
  phases: AxisPhase[];
}

function planAxis(stride: number, k: number, padBefore: number, dxSize: number, dySize: number): AxisPlan {
  const phases: AxisPhase[] = [];
  for (let rho = 0; rho < stride; rho++) {
    const residue = (rho + padBefore) % stride;
    const c = Math.floor((rho + padBefore) / stride);
    const taps = Math.max(0, Math.ceil((k - residue) / stride));
    phases.push({ taps, residue, lag: taps - 1 - c });
  }
  return { stride, dySize, rowsPerPhase: Math.ceil(dxSize / stride), phases };
}

/** Filter index (along this axis) of element u of a phase's sub-filter. */
function phaseTap(axis: AxisPlan, phase: AxisPhase, u: number): number {
  return (phase.taps - 1 - u) * axis.stride + phase.residue;
}

/** dy padding (negative: crop) for a conv window reading `lag` rows before m, `taps` rows long. */
function windowPads(axis: AxisPlan, lag: number, taps: number): [number, number] {
  return [lag, axis.rowsPerPhase - 1 - lag + taps - 1 - (axis.dySize - 1)];
}

/**
 * All phases of one axis as a single window: a common lag and length, each phase's sub-filter
 * placed at `offset[rho]` within it (the rest of the window are zero taps).
 */
function commonWindow(axis: AxisPlan): { lag: number; taps: number; offset: number[] } {
  const active = axis.phases.filter(p => p.taps > 0);
  const lag = Math.max(...active.map(p => p.lag));
  const offset = axis.phases.map(p => lag - p.lag);
  const taps = Math.max(...axis.phases.map((p, i) => (p.taps > 0 ? offset[i] + p.taps : 0)));
  return { lag, taps, offset };
}

interface BackpropInputGeometry {
  dxShape: [number, number, number, number]; // [N, H, W, C_in]
  filterShape: [number, number, number, number]; // [kh, kw, C_in, C_out]
  rows: AxisPlan;
  cols: AxisPlan;
}

/**
 * Below this many dx channels a strided transposed conv computes all phases in one Conv2D
 * (output channels = phases x C_in): XNNPACK computes output channels in tiles of 8, so separate
 * per-phase convs with few output channels waste most of each tile. Measured crossover: with 4
 * channels combined is ~1.5x faster, with 8 separate phases are ~1.25x faster.
 */
const COMBINED_PHASES_MAX_CHANNELS = 8;

function conv2DBackpropInput(args: KernelArgs): TensorInfo {
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
  requireNHWC(attrs.dataFormat, 'Conv2DBackpropInput');
  const filterShape = filter.shape as [number, number, number, number];
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape, filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  const expected = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (dy.shape.length !== 4 || dy.shape.some((d, i) => d !== expected[i])) {
    throw new Error(`wasm Conv2DBackpropInput: dy shape [${dy.shape}] does not match the forward conv ` +
      `output [${expected}] of input [${attrs.inputShape}] (check the conv2dTranspose outputShape)`);
  }
  const g: BackpropInputGeometry = {
    dxShape: attrs.inputShape,
    filterShape,
    rows: planAxis(info.strideHeight, info.filterHeight, info.padInfo.top, info.inHeight, info.outHeight),
    cols: planAxis(info.strideWidth, info.filterWidth, info.padInfo.left, info.inWidth, info.outWidth),
  };
  return withScope(args.backend as WasmBackend, s => {
    const taps = new FilterTaps(s, filter);
    const [n, dxH, dxW, dxC] = g.dxShape;
    let dx: TensorInfo;
    if (g.rows.stride === 1 && g.cols.stride === 1) dx = singlePhase(s, dy, taps, g);
    else if (dxC < COMBINED_PHASES_MAX_CHANNELS) dx = combinedPhases(s, dy, taps, g);
    else dx = separatePhases(s, dy, taps, g);
    const [, h, w] = dx.shape;
    return h === dxH && w === dxW ? dx : s.slice(dx, [0, 0, 0, 0], [n, dxH, dxW, dxC]);
  });
}

/**
 * The filter as one row per tap, in/out channels swapped ([kh*kw, C_out*C_in]), from which
 * (flipped, strided, zero-padded) sub-filters are gathered row by row.
 */
class FilterTaps {
  /** [kh*kw, C_out*C_in] */
  readonly matrix: TensorInfo;
  private readonly kw: number;

  constructor(private readonly s: KernelScope, filter: TensorInfo) {
    const [kh, kw, inC, outC] = filter.shape;
    this.kw = kw;
    this.matrix = s.reshape(s.transpose(filter, [0, 1, 3, 2]), [kh * kw, outC * inC]);
  }

  /** Rows for the given (h, w) taps (null: a zero tap), reshaped to `shape`. */
  gather(taps: ReadonlyArray<readonly [number, number] | null>, shape: number[]): TensorInfo {
    const rows = taps.map(t => (t === null ? null : t[0] * this.kw + t[1]));
    return this.s.reshape(this.s.gatherRows(this.matrix, rows), shape);
  }
}

/** A run of consecutive sub-filter taps [start, start + size) and the rows [lo, hi] of dx it reaches. */
interface TapBlock {
  start: number;
  size: number;
  lo: number;
  hi: number;
}

const wholePhase = (axis: AxisPlan, p: AxisPhase): TapBlock =>
  ({ start: 0, size: p.taps, lo: 0, hi: axis.rowsPerPhase - 1 });

/** Sub-filter [taps_h, taps_w, C_out, C_in] of one (row phase, col phase), or of a block of its taps. */
function phaseFilter(
  taps: FilterTaps, g: BackpropInputGeometry, rp: AxisPhase, cp: AxisPhase,
  hb: TapBlock = wholePhase(g.rows, rp), wb: TapBlock = wholePhase(g.cols, cp),
): TensorInfo {
  const [, , inC, outC] = g.filterShape;
  const list: [number, number][] = [];
  for (let u = hb.start; u < hb.start + hb.size; u++) {
    for (let v = wb.start; v < wb.start + wb.size; v++) list.push([phaseTap(g.rows, rp, u), phaseTap(g.cols, cp, v)]);
  }
  return taps.gather(list, [hb.size, wb.size, outC, inC]);
}

/** Stride 1: one conv of dy with the whole flipped filter, or a sum of convs with blocks of it. */
function singlePhase(s: KernelScope, dy: TensorInfo, taps: FilterTaps, g: BackpropInputGeometry): TensorInfo {
  const [rp] = g.rows.phases;
  const [cp] = g.cols.phases;
  const [, dxH, dxW, channels] = g.dxShape;
  if (channels === 1) return singleChannelPhase(s, dy, taps, g);
  const grows = dxH > dy.shape[1] || dxW > dy.shape[2];
  if (grows && (channels >= GEMM_COL2IM_MIN_CHANNELS || channels < COMBINED_PHASES_MAX_CHANNELS)) {
    return gemmCol2im(s, dy, taps, g);
  }
  const rowBlocks = tapBlocks(g.rows, rp);
  const colBlocks = tapBlocks(g.cols, cp);
  const parts: TensorInfo[] = [];
  for (const hb of rowBlocks) for (const wb of colBlocks) parts.push(blockConv(s, dy, taps, g, hb, wb));
  return parts.length === 1 ? parts[0] : s.addN(parts);
}

/**
 * Stride 1 with a single dx channel. XNNPACK's Conv2D computes output channels 8 at a time, so a
 * 1-channel conv wastes 7/8 of its work. Instead, sum per-channel (depthwise) convs:
 *  - few dy channels: a depthwise conv of dy with the flipped filter, then sum the channels;
 *  - many more dy channels than taps: first contract the channels with a 1x1 Conv2D (a GEMM) into
 *    one channel per tap, cols[n, i, j, t] = sum_c dy[n, i, j, c] * W[t, c], then "col2im": a
 *    depthwise conv whose filter for channel t is the one-hot flipped tap t, and sum the channels.
 *    ([100,24,24,64] -> [100,28,28,1], k=5: 17 ms instead of 28 ms; with 32 channels no gain.)
 */
const COLS_MIN_CHANNELS_PER_TAP = 2;

function singleChannelPhase(s: KernelScope, dy: TensorInfo, taps: FilterTaps, g: BackpropInputGeometry): TensorInfo {
  const [rp] = g.rows.phases;
  const [cp] = g.cols.phases;
  const [kh, kw, , outC] = g.filterShape;
  const { x, pads } = cropForPads(s, dy, [...windowPads(g.rows, rp.lag, rp.taps), ...windowPads(g.cols, cp.lag, cp.taps)]);
  let perChannel: TensorInfo;
  if (outC <= COLS_MIN_CHANNELS_PER_TAP * kh * kw) {
    perChannel = s.depthwiseConv2d(x, phaseFilter(taps, g, rp, cp), pads);
  } else {
    const tapsByChannel = s.reshape(s.transpose(taps.matrix, [1, 0]), [1, 1, outC, kh * kw]);
    const cols = s.conv2d(x, tapsByChannel, [0, 0, 0, 0]);
    // Depthwise filter [kh, kw, kh*kw, 1] moving channel t = a*kw + b to the flipped tap (kh-1-a, kw-1-b).
    const col2im = s.constant([kh, kw, kh * kw, 1], values => {
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) values[((kh - 1 - a) * kw + (kw - 1 - b)) * kh * kw + a * kw + b] = 1;
      }
    });
    perChannel = s.depthwiseConv2d(cols, col2im, pads);
  }
  return s.reshape(s.sum(perChannel, [3]), [...perChannel.shape.slice(0, 3), 1]);
}

/**
 * A transposed conv whose output is much larger than dy ('valid' with small dy, e.g. 8x8 -> 12x12
 * with a 5x5 filter) spends most of a single conv's multiply-adds on the zero padding around dy:
 * every output row applies all k taps, although near the edges only a few reach dy. Splitting the
 * taps into blocks of 2, each block conv only computes the rows its taps reach, then the block
 * outputs are zero-padded into place and summed (8x8 -> 12x12, k=5: 44 instead of 60 row-taps per
 * axis, 0.54x the multiply-adds in 2-D). Used when it saves at least a quarter of the work.
 */
const TAP_BLOCK = 2;
const TAP_BLOCKS_MAX_WORK = 0.75;

function tapBlocks(axis: AxisPlan, phase: AxisPhase): TapBlock[] {
  const whole = wholePhase(axis, phase);
  const blocks: TapBlock[] = [];
  for (let start = 0; start < phase.taps; start += TAP_BLOCK) {
    const size = Math.min(TAP_BLOCK, phase.taps - start);
    // Row m reads dy rows m - lag + start .. m - lag + start + size - 1.
    const lo = Math.max(0, phase.lag - start - size + 1);
    const hi = Math.min(axis.rowsPerPhase - 1, phase.lag - start + axis.dySize - 1);
    if (hi >= lo) blocks.push({ start, size, lo, hi });
  }
  const work = (bs: TapBlock[]) => bs.reduce((sum, b) => sum + b.size * (b.hi - b.lo + 1), 0);
  return work(blocks) <= TAP_BLOCKS_MAX_WORK * work([whole]) ? blocks : [whole];
}

/** One block of taps: a conv over dy computing dx rows [lo, hi] x cols [lo, hi], zero-padded to dx. */
function blockConv(
  s: KernelScope, dy: TensorInfo, taps: FilterTaps, g: BackpropInputGeometry, hb: TapBlock, wb: TapBlock,
): TensorInfo {
  const [rp] = g.rows.phases;
  const [cp] = g.cols.phases;
  const pads = (axis: AxisPlan, p: AxisPhase, b: TapBlock): [number, number] =>
    [p.lag - b.start - b.lo, b.hi - p.lag + b.start + b.size - 1 - (axis.dySize - 1)];
  const cropped = cropForPads(s, dy, [...pads(g.rows, rp, hb), ...pads(g.cols, cp, wb)]);
  const out = s.conv2d(cropped.x, phaseFilter(taps, g, rp, cp, hb, wb), cropped.pads);
  const [, dxH, dxW] = g.dxShape;
  if (hb.lo === 0 && hb.hi === dxH - 1 && wb.lo === 0 && wb.hi === dxW - 1) return out;
  return s.pad(out, [[0, 0], [hb.lo, dxH - 1 - hb.hi], [wb.lo, dxW - 1 - wb.hi], [0, 0]]);
}

/**
 * Stride 1 where dx is larger than dy ('valid' padding: a single conv over the padded dy spends up
 * to half its multiply-adds on the padding, see tapBlocks) with many (>= 128) or few (< 8) dx
 * channels: one GEMM for all taps, then a scatter-add of its columns into dx ("col2im"):
 *   cols[n, oh, ow, (kh, kw, ci)] = sum_co dy[n, oh, ow, co] * W[kh, kw, ci, co]
 *   dx[n, oh + kh - top, ow + kw - left, ci] += cols[n, oh, ow, (kh, kw, ci)]
 * The GEMM does exactly the transposed conv's multiply-adds, and as one large XNNPACK product it
 * runs at full speed (and on all threads), where the alternatives do extra multiply-adds (one
 * padded conv) or are many small convs, each with its pad and sum (tapBlocks). Measured, ms per
 * call (one thread), before -> this:
 *   [100,10,10,256] -> [100,14,14,128] k5 (CIFAR-10 G0 deconv2, one padded conv):  970 -> 632
 *   [100,28,28,128] -> [100,32,32,3]   k5 (CIFAR-10 G0 deconv4):  147 -> 104
 *   [100,28,28,64]  -> [100,32,32,3]   k5 (CIFAR-10 encoder conv1 gradient): 73 -> 51
 * but with 32-64 channels tapBlocks is as fast or faster ([100,8,8,128] -> [100,12,12,64]: 104 vs
 * 120; [100,8,8,32] -> [100,12,12,32]: 18 vs 28), so those keep it. The columns are made a chunk of
 * images at a time, at most GEMM_COL2IM_CHUNK floats, to bound the memory they take.
 */
const GEMM_COL2IM_MIN_CHANNELS = 128;
const GEMM_COL2IM_CHUNK = 1 << 22; // floats (16 MB)

function gemmCol2im(s: KernelScope, dy: TensorInfo, taps: FilterTaps, g: BackpropInputGeometry): TensorInfo {
  const [n, dxH, dxW, cin] = g.dxShape;
  const [kh, kw, , cout] = g.filterShape;
  const [, oh, ow] = dy.shape;
  // Stride 1: lag = k - 1 - (forward pad before), see planAxis.
  const top = kh - 1 - g.rows.phases[0].lag;
  const left = kw - 1 - g.cols.phases[0].lag;
  const width = kh * kw * cin;
  // [kh*kw, C_out*C_in] -> [C_out, (kh, kw, C_in)]
  const wt = s.reshape(s.transpose(s.reshape(taps.matrix, [kh * kw, cout, cin]), [1, 0, 2]), [cout, width]);
  const dx = s.zeros([n, dxH, dxW, cin]);
  const imagesPerChunk = Math.max(1, Math.floor(GEMM_COL2IM_CHUNK / (oh * ow * width)));
  for (let first = 0; first < n; first += imagesPerChunk) {
    const images = Math.min(imagesPerChunk, n - first);
    const chunk = new KernelScope(s.backend);
    try {
      const rows = chunk.rowRange(dy, cout, first * oh * ow, images * oh * ow);
      const cols = chunk.batchMatMul(rows, wt); // [images*oh*ow, width]
      // Views taken after the allocations above (the heap may have grown).
      const colv = s.backend.typedArrayFromHeap(cols);
      const dxv = s.backend.typedArrayFromHeap(dx);
      let p = 0;
      for (let b = first; b < first + images; b++) {
        for (let y = 0; y < oh; y++) {
          for (let x = 0; x < ow; x++, p += width) {
            for (let a = 0; a < kh; a++) {
              const ih = y + a - top;
              if (ih < 0 || ih >= dxH) continue;
              for (let c = 0; c < kw; c++) {
                const iw = x + c - left;
                if (iw < 0 || iw >= dxW) continue;
                const src = p + (a * kw + c) * cin;
                const dst = ((b * dxH + ih) * dxW + iw) * cin;
                for (let z = 0; z < cin; z++) dxv[dst + z] += colv[src + z];
              }
            }
          }
        }
      }
    } finally {
      chunk.disposeAllExcept(undefined);
    }
  }
  return dx;
}

/**
 * Strided, many dx channels: one conv per phase with exactly its taps, then the phases are
 * interleaved (columns within each row phase, then rows) by stacking and a cheap Transpose.
 */
function separatePhases(s: KernelScope, dy: TensorInfo, taps: FilterTaps, g: BackpropInputGeometry): TensorInfo {
  const [n, , , c] = g.dxShape;
  const mh = g.rows.rowsPerPhase;
  const mw = g.cols.rowsPerPhase;
  const rowPhases = g.rows.phases.map(rp => {
    const colPhases = g.cols.phases.map(cp => {
      if (rp.taps === 0 || cp.taps === 0) return s.zeros([n, mh, mw, c]); // e.g. 1x1 filter, stride 2
      const pads: Pads = [...windowPads(g.rows, rp.lag, rp.taps), ...windowPads(g.cols, cp.lag, cp.taps)];
      const cropped = cropForPads(s, dy, pads);
      return s.conv2d(cropped.x, phaseFilter(taps, g, rp, cp), cropped.pads);
    });
    // [N*M_h*M_w, s_w, C]: the columns of this row phase, interleaved.
    return interleave(s, colPhases, [n * mh * mw, c]);
  });
  // [N*M_h, s_h, M_w*s_w*C]: the rows interleaved.
  const rowsInterleaved = interleave(s, rowPhases, [n * mh, mw * g.cols.stride * c]);
  return s.reshape(rowsInterleaved, [n, mh * g.rows.stride, mw * g.cols.stride, c]);
}

/**
 * Interleave P tensors viewed as [outer, inner] into [outer, P, inner]: stack them (contiguous
 * copies) and swap the two outer axes (a Transpose the wasm backend does fast; a Concat on an inner
 * axis copies runs of `inner` values one by one and is slow when they are short).
 */
function interleave(s: KernelScope, parts: TensorInfo[], [outer, inner]: [number, number]): TensorInfo {
  if (parts.length === 1) return parts[0];
  const stacked = s.concat(parts.map(p => s.reshape(p, [1, outer * inner])), 0);
  return s.transpose(s.reshape(stacked, [parts.length, outer, inner]), [1, 0, 2]);
}

/**
 * Strided, few dx channels: all phases in one conv whose output channels are (rho_h, rho_w, c),
 * each phase's sub-filter zero-padded into a common window; then one Transpose interleaves them.
 */
function combinedPhases(s: KernelScope, dy: TensorInfo, taps: FilterTaps, g: BackpropInputGeometry): TensorInfo {
  const [n, , , c] = g.dxShape;
  const [, , , outC] = g.filterShape;
  const { rows, cols } = g;
  const wh = commonWindow(rows);
  const ww = commonWindow(cols);
  const list: ([number, number] | null)[] = [];
  for (let u = 0; u < wh.taps; u++) {
    for (let v = 0; v < ww.taps; v++) {
      rows.phases.forEach((rp, i) => cols.phases.forEach((cp, j) => {
        const su = u - wh.offset[i];
        const sv = v - ww.offset[j];
        const inside = su >= 0 && su < rp.taps && sv >= 0 && sv < cp.taps;
        list.push(inside ? [phaseTap(rows, rp, su), phaseTap(cols, cp, sv)] : null);
      }));
    }
  }
  const phasesCount = rows.stride * cols.stride;
  const byPhase = taps.gather(list, [wh.taps * ww.taps, phasesCount, outC, c]);
  const filter = s.reshape(s.transpose(byPhase, [0, 2, 1, 3]), [wh.taps, ww.taps, outC, phasesCount * c]);
  const pads: Pads = [...windowPads(rows, wh.lag, wh.taps), ...windowPads(cols, ww.lag, ww.taps)];
  const cropped = cropForPads(s, dy, pads);
  const z = s.conv2d(cropped.x, filter, cropped.pads); // [N, M_h, M_w, (rho_h, rho_w, c)]
  const mh = rows.rowsPerPhase;
  const mw = cols.rowsPerPhase;
  const t = s.transpose(s.reshape(z, [n * mh, mw, rows.stride, cols.stride * c]), [0, 2, 1, 3]);
  return s.reshape(t, [n, mh * rows.stride, mw * cols.stride, c]);
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropFilter: a dilated conv contracting over the batch

function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  requireNHWC(attrs.dataFormat, 'Conv2DBackpropFilter');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad,
    attrs.dimRoundingMode, false, 'channelsLast');
  const expected = [info.batchSize, info.outHeight, info.outWidth, info.outChannels];
  if (dy.shape.length !== 4 || dy.shape.some((d, i) => d !== expected[i])) {
    throw new Error(`wasm Conv2DBackpropFilter: dy shape [${dy.shape}] does not match the conv output [${expected}]`);
  }
  const { strideHeight: sh, strideWidth: sw, filterHeight: kh, filterWidth: kw } = info;
  const { top, left } = info.padInfo;
  // Input extent the forward conv touched: rows -top .. (outH-1)*sh + kh - 1 - top.
  const pads: Pads = [
    top, (info.outHeight - 1) * sh + kh - info.inHeight - top,
    left, (info.outWidth - 1) * sw + kw - info.inWidth - left,
  ];
  return withScope(args.backend as WasmBackend, s => {
    if (info.inChannels === 1) return singleChannelFilterGrad(s, x, dy, info);
    const cropped = cropForPads(s, x, pads);
    const xT = batchToChannels(s, cropped.x); // [C_in, H, W, N]
    const dyT = s.transpose(dy, [1, 2, 0, 3]); // [OH, OW, N, C_out]
    const grad = s.conv2d(xT, dyT, cropped.pads, [sh, sw]); // [C_in, kh, kw, C_out]
    return s.transpose(grad, [1, 2, 0, 3]);
  });
}

/**
 * One input channel: the dilated conv above would have to pack dy ([OH, OW, N, C_out], as large as
 * an activation) as its filter, which costs more than the conv itself. Instead: im2col by a conv
 * with a one-hot filter (cheap with a single input channel), patches [N*OH*OW, kh*kw], then
 * dW = patches^T . dy as one BatchMatMul ([100,28,28,1] -> k5 -> 64 channels: 15 ms instead of 40).
 */
function singleChannelFilterGrad(s: KernelScope, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { filterHeight: kh, filterWidth: kw, outChannels: outC } = info;
  const taps = kh * kw;
  const { top, bottom, left, right } = info.padInfo;
  const identity = s.constant([kh, kw, 1, taps], values => {
    for (let t = 0; t < taps; t++) values[t * taps + t] = 1;
  });
  const patches = s.conv2d(x, identity, [top, bottom, left, right], [1, 1], [info.strideHeight, info.strideWidth]);
  const pixels = info.batchSize * info.outHeight * info.outWidth;
  const patchesT = s.transpose(s.reshape(patches, [pixels, taps]), [1, 0]);
  const grad = s.batchMatMul(s.reshape(patchesT, [1, taps, pixels]), s.reshape(dy, [1, pixels, outC]));
  return s.reshape(grad, [kh, kw, 1, outC]);
}

/**
 * [N, H, W, C] -> [C, H, W, N]. Done as [N, HW, C] -> [HW, C, N] -> [C, HW, N]: the wasm
 * Transpose is ~5x faster on these two steps than on the single reversing permutation.
 */
function batchToChannels(s: KernelScope, x: TensorInfo): TensorInfo {
  const [n, h, w, c] = x.shape;
  const step = s.transpose(s.reshape(x, [n, h * w, c]), [1, 2, 0]);
  return s.reshape(s.transpose(step, [1, 0, 2]), [c, h, w, n]);
}

// ---------------------------------------------------------------------------------------------
// MaxPoolGrad

/**
 * The stock wasm MaxPoolGrad (and MaxPoolWithArgmax) start the running maximum at 0 instead of
 * -Infinity, so a window whose values are all negative sends its gradient nowhere (and it takes
 * ~30 ms for [100,24,24,32]). This replacement follows the cpu backend exactly: each dy value goes
 * to the first maximum of its window (row-major order, padding excluded), summed where windows
 * overlap. It is a single pass over x on the wasm heap, channels innermost so reads are
 * contiguous; composing it from kernels would take several passes per window offset.
 */
function maxPoolGrad(args: KernelArgs): TensorInfo {
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const backend = args.backend as WasmBackend;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  if (dy.shape.some((d, i) => d !== info.outShape[i])) {
    throw new Error(`wasm MaxPoolGrad: dy shape [${dy.shape}] does not match the pooled shape [${info.outShape}]`);
  }
  const out = backend.makeOutput(input.shape, 'float32');
  const dx = backend.typedArrayFromHeap(out); // views taken after the allocation above
  dx.fill(0);
  routeToWindowMaxima(backend.typedArrayFromHeap(input), backend.typedArrayFromHeap(dy), dx, info);
  return out;
}

function routeToWindowMaxima(x: Float32Array, dy: Float32Array, dx: Float32Array, info: tf.backend_util.Conv2DInfo): void {
  const { batchSize, inHeight, inWidth, inChannels: c, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const window = new Int32Array(fh * fw); // offsets in x of the current window's pixels, row-major
  let dyOffset = 0;
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      const h0 = oh * strideHeight - info.padInfo.top;
      for (let ow = 0; ow < outWidth; ow++, dyOffset += c) {
        const w0 = ow * strideWidth - info.padInfo.left;
        let pixels = 0;
        for (let h = Math.max(0, h0); h < Math.min(inHeight, h0 + fh); h++) {
          for (let w = Math.max(0, w0); w < Math.min(inWidth, w0 + fw); w++) {
            window[pixels++] = ((b * inHeight + h) * inWidth + w) * c;
          }
        }
        for (let ch = 0; ch < c; ch++) {
          let best = -Infinity;
          let bestAt = -1;
          for (let p = 0; p < pixels; p++) {
            const v = x[window[p] + ch];
            if (v > best) {
              best = v;
              bestAt = window[p] + ch;
            }
          }
          if (bestAt >= 0) dx[bestAt] += dy[dyOffset + ch];
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Identity, BatchMatMul, Sum, Mean: faster paths for the cases training uses

/** Identity without a copy: the output shares x's data (tensors are immutable). */
function identity(args: KernelArgs): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  if (x.dtype === 'string') return stockKernel('Identity')(args) as TensorInfo;
  (args.backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** A Cast to the dtype x already has (the gradient of every product casts its inputs): no copy either. */
function cast(args: KernelArgs): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const { dtype } = args.attrs as unknown as tf.CastAttrs;
  if (dtype !== x.dtype || x.dtype === 'string') return stockKernel('Cast')(args) as TensorInfo;
  (args.backend as WasmBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

const sizeOf = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * A product C = op(A) op(B) ([M,K] x [K,N]) with transposeA or transposeB, and no batch, as the
 * stock kernel's XNNPACK path plus explicit Transposes, whichever way copies fewer elements:
 *  - transpose the operands that are transposed (M*K and/or N*K elements), or
 *  - compute C^T = op(B)^T op(A)^T, where a transposed operand is used as stored, and transpose
 *    C^T (M*N elements, plus any operand that was not transposed).
 * The stock scalar loop costs ~10x the product: dy.W^T for [100,256] x [2048,256]^T takes ~5 ms
 * instead of 76, x^T.dy for [100,2048]^T x [100,256] ~4 ms instead of 82.
 */
function batchMatMul(args: KernelArgs): TensorInfo {
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
  const unbatched = sizeOf(a.shape.slice(0, -2)) === 1 && sizeOf(b.shape.slice(0, -2)) === 1;
  if ((!transposeA && !transposeB) || !unbatched || a.dtype !== 'float32' || b.dtype !== 'float32') {
    return stockKernel('BatchMatMul')(args) as TensorInfo;
  }
  const [ar, ac] = a.shape.slice(-2);
  const [br, bc] = b.shape.slice(-2);
  const [m, k] = transposeA ? [ac, ar] : [ar, ac];
  const n = transposeB ? br : bc;
  const copyOperands = (transposeA ? m * k : 0) + (transposeB ? n * k : 0);
  const copyProduct = (transposeA ? 0 : m * k) + (transposeB ? 0 : n * k) + m * n;
  return withScope(args.backend as WasmBackend, s => {
    const matrix = (t: TensorInfo, transpose: boolean) => {
      const mat = s.reshape(t, t.shape.slice(-2));
      return transpose ? s.transpose(mat, [1, 0]) : mat;
    };
    const product = (x: TensorInfo, y: TensorInfo) =>
      s.run('BatchMatMul', { a: x, b: y }, { transposeA: false, transposeB: false }, stockKernel('BatchMatMul'));
    const c = copyOperands <= copyProduct
      ? product(matrix(a, transposeA), matrix(b, transposeB))
      : s.transpose(product(matrix(b, !transposeB), matrix(a, !transposeA)), [1, 0]);
    // Outer (batch) dimensions are all 1 here; keep as many as the inputs had.
    const outer = new Array(Math.max(a.shape.length, b.shape.length) - 2).fill(1);
    return outer.length === 0 ? c : s.reshape(c, [...outer, m, n]);
  });
}

/** Number of leading axes reduced when `axis` is exactly 0..k-1 (k < rank), else null. */
function leadingAxes(axis: number | number[], shape: number[]): number | null {
  const axes = tf.util.parseAxisParam(axis, shape).sort((p, q) => p - q);
  if (axes.length === 0 || axes.length >= shape.length) return null;
  return axes.every((ax, i) => ax === i) ? axes.length : null;
}

/**
 * Sum or Mean over the leading axes of a float32 tensor, viewed as [rows, cols]: one contiguous
 * pass adding the rows into float64 accumulators (at least as accurate as the stock float32 sums).
 * Four rows are added per step (their pairwise sum first): half the accumulator traffic, 2x faster
 * ([57600, 64]: 2.6 ms instead of 5.4 ms; the stock kernels take ~25 ms).
 */
function reduceLeadingAxes(args: KernelArgs, kernel: 'Sum' | 'Mean'): TensorInfo {
  const { x } = args.inputs as { x: TensorInfo };
  const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
  const k = x.dtype === 'float32' ? leadingAxes(axis, x.shape) : null;
  if (k === null || sizeOf(x.shape) === 0) return stockKernel(kernel)(args) as TensorInfo;
  const rows = sizeOf(x.shape.slice(0, k));
  const cols = sizeOf(x.shape.slice(k));
  const backend = args.backend as WasmBackend;
  const out = backend.makeOutput([...(keepDims ? new Array(k).fill(1) : []), ...x.shape.slice(k)], 'float32');
  const src = backend.typedArrayFromHeap(x); // views taken after the allocation above
  const dst = backend.typedArrayFromHeap(out);
  const acc = new Float64Array(cols);
  let r = 0;
  for (let o = 0; r + 4 <= rows; r += 4, o += 4 * cols) {
    for (let c = 0; c < cols; c++) acc[c] += (src[o + c] + src[o + cols + c]) + (src[o + 2 * cols + c] + src[o + 3 * cols + c]);
  }
  for (let o = r * cols; r < rows; r++, o += cols) {
    for (let c = 0; c < cols; c++) acc[c] += src[o + c];
  }
  for (let c = 0; c < cols; c++) dst[c] = kernel === 'Mean' ? acc[c] / rows : acc[c];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Registration

const TRAINING_KERNELS: ReadonlyArray<{ name: string; kernelFunc: tf.KernelFunc }> = [
  { name: 'Conv2DBackpropInput', kernelFunc: conv2DBackpropInput },
  { name: 'Conv2DBackpropFilter', kernelFunc: conv2DBackpropFilter },
  { name: 'MaxPoolGrad', kernelFunc: maxPoolGrad },
  { name: 'Identity', kernelFunc: identity },
  { name: 'Cast', kernelFunc: cast },
  { name: 'BatchMatMul', kernelFunc: batchMatMul },
  { name: 'Sum', kernelFunc: (args: KernelArgs) => reduceLeadingAxes(args, 'Sum') },
  { name: 'Mean', kernelFunc: (args: KernelArgs) => reduceLeadingAxes(args, 'Mean') },
];

/**
 * Register the project's wasm training kernels (idempotent). Call before tf.setBackend('wasm');
 * calling later also works since these kernels need no setup.
 */
export function registerWasmTrainingKernels(): void {
  // The wasm package registers its own kernels when first loaded; load it now so that it cannot
  // later overwrite ours.
  require('@tensorflow/tfjs-backend-wasm');
  for (const { name, kernelFunc } of TRAINING_KERNELS) {
    const current = tf.getKernel(name, BACKEND);
    if (current?.kernelFunc === kernelFunc) continue;
    if (current !== undefined) {
      stockKernels.set(name, current);
      tf.unregisterKernel(name, BACKEND);
    }
    // The stock setupFunc (binding the wasm function) must still run when the backend starts: ours
    // pass some cases on to the stock kernel.
    tf.registerKernel({ kernelName: name, backendName: BACKEND, kernelFunc, setupFunc: current?.setupFunc });
  }
}
