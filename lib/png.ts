/**
 * Image grids as PNG (encoded by pngjs). Images are NHWC floats in [0,1] (1 or 3 channels), laid out
 * row-major into `cols` columns with a `pad`-pixel border.
 */
import { PNG } from 'pngjs';
import { writeFileAtomic } from './atomic';

export interface GridOptions {
  cols: number;
  pad?: number;
  /** Integer upscaling so small digits are visible. */
  scale?: number;
  /** Border value in [0,1]. */
  background?: number;
}

export interface ImageStack {
  data: Float32Array; // [n, h, w, c]
  n: number;
  h: number;
  w: number;
  c: number;
}

export function gridPng(images: ImageStack, opts: GridOptions): Buffer {
  const { n, h, w, c, data } = images;
  if (c !== 1 && c !== 3) throw new Error(`gridPng: images have ${c} channels, expected 1 or 3`);
  if (data.length !== n * h * w * c) throw new Error(`gridPng: ${data.length} values for ${n}x${h}x${w}x${c} images`);
  const cols = Math.max(1, Math.min(opts.cols, n));
  const rows = Math.ceil(n / cols);
  const pad = opts.pad ?? 2;
  const s = opts.scale ?? 1;
  const W = cols * (w * s + pad) + pad;
  const H = rows * (h * s + pad) + pad;
  const png = new PNG({ width: W, height: H });
  const bg = Math.round(255 * (opts.background ?? 1));
  png.data.fill(bg);
  for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
  const to8 = (v: number) => Math.max(0, Math.min(255, Math.round(v * 255)));
  for (let k = 0; k < n; k++) {
    const r = Math.floor(k / cols);
    const col = k % cols;
    const x0 = pad + col * (w * s + pad);
    const y0 = pad + r * (h * s + pad);
    for (let y = 0; y < h * s; y++) {
      for (let x = 0; x < w * s; x++) {
        const src = ((k * h + Math.floor(y / s)) * w + Math.floor(x / s)) * c;
        const dst = ((y0 + y) * W + (x0 + x)) * 4;
        const rv = to8(data[src]);
        png.data[dst] = rv;
        png.data[dst + 1] = c === 3 ? to8(data[src + 1]) : rv;
        png.data[dst + 2] = c === 3 ? to8(data[src + 2]) : rv;
      }
    }
  }
  return PNG.sync.write(png);
}

export function writeGridPng(file: string, images: ImageStack, opts: GridOptions): void {
  writeFileAtomic(file, gridPng(images, opts));
}

/** Decode a PNG (tests and notebooks read grids back). */
export function readPng(buf: Buffer): { width: number; height: number; data: Buffer } {
  const p = PNG.sync.read(buf);
  return { width: p.width, height: p.height, data: p.data };
}
