/**
 * CIFAR-10, official binary version (https://www.cs.toronto.edu/~kriz/cifar.html):
 * data_batch_1.bin .. data_batch_5.bin (train, 10,000 images each) and test_batch.bin (test).
 * Each record is 3073 bytes: 1 label byte, then 1024 R, 1024 G, 1024 B bytes, each a 32x32
 * plane in row-major order (channels-first); we convert to NHWC on load.
 *
 * The files may sit directly in dataDir or in the tarball's own subfolder
 * dataDir/cifar-10-batches-bin/. Whichever train batches are present are used (a partial set is
 * still useful for small experiments); none at all is an error.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { ImageDataset, Split } from './dataset';

export const CIFAR10_SIDE = 32;
const PLANE = CIFAR10_SIDE * CIFAR10_SIDE;
export const CIFAR10_RECORD_BYTES = 1 + 3 * PLANE;
export const CIFAR10_TRAIN_FILES = [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`);
export const CIFAR10_TEST_FILES = ['test_batch.bin'];
/** The subfolder the official tarball extracts to. */
export const CIFAR10_TAR_SUBDIR = 'cifar-10-batches-bin';

/** Candidate folders, in order of preference. */
function searchDirs(dataDir: string): string[] {
  return [dataDir, path.join(dataDir, CIFAR10_TAR_SUBDIR)];
}

/** Paths of the split's batch files that exist (first folder that has any wins). */
export function findCifar10Files(split: Split, dataDir: string): string[] {
  const names = split === 'train' ? CIFAR10_TRAIN_FILES : CIFAR10_TEST_FILES;
  for (const dir of searchDirs(dataDir)) {
    const found = names.map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f));
    if (found.length > 0) return found;
  }
  const looked = searchDirs(dataDir).flatMap((d) => names.map((f) => path.join(d, f)));
  throw new Error(`cifar10: no ${split} batch files found; looked for ${looked.join(', ')}`);
}

function checkSize(size: number, file: string): number {
  if (size === 0 || size % CIFAR10_RECORD_BYTES !== 0) {
    throw new Error(`cifar10: ${file}: size ${size} is not a multiple of the ${CIFAR10_RECORD_BYTES}-byte record`);
  }
  return size / CIFAR10_RECORD_BYTES;
}

/**
 * Decode one batch file's records into `pixels`/`labels` starting at image `first` (pure apart
 * from filling the outputs; `file` is for messages). Channel-first planes become interleaved RGB:
 * out[(i*1024 + p)*3 + c] = rec[1 + c*1024 + p].
 */
export function decodeCifar10Into(bytes: Uint8Array, file: string, pixels: Uint8Array, labels: Uint8Array, first: number): number {
  const n = checkSize(bytes.length, file);
  for (let i = 0; i < n; i++) {
    const rec = i * CIFAR10_RECORD_BYTES;
    const label = bytes[rec];
    if (label > 9) throw new Error(`cifar10: ${file}: record ${i} has label ${label}, expected 0..9`);
    labels[first + i] = label;
    const out = (first + i) * PLANE * 3;
    for (let c = 0; c < 3; c++) {
      const plane = rec + 1 + c * PLANE;
      for (let p = 0; p < PLANE; p++) pixels[out + p * 3 + c] = bytes[plane + p];
    }
  }
  return n;
}

/** Decode a whole batch file held in memory. */
export function decodeCifar10Batch(bytes: Uint8Array, file: string): { pixels: Uint8Array; labels: Uint8Array } {
  const n = checkSize(bytes.length, file);
  const pixels = new Uint8Array(n * PLANE * 3);
  const labels = new Uint8Array(n);
  decodeCifar10Into(bytes, file, pixels, labels, 0);
  return { pixels, labels };
}

export function loadCifar10(split: Split, dataDir: string): ImageDataset {
  const files = findCifar10Files(split, dataDir);
  // Size everything first so the output is allocated once (50k images = 154 MB) and a bad file
  // is reported before any decoding work.
  const counts = files.map((f) => checkSize(fs.statSync(f).size, f));
  const n = counts.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(n * PLANE * 3);
  const labels = new Uint8Array(n);
  let first = 0;
  files.forEach((f, k) => {
    const bytes = fs.readFileSync(f);
    if (bytes.length !== counts[k] * CIFAR10_RECORD_BYTES) throw new Error(`cifar10: ${f}: size changed while loading (${bytes.length} bytes)`);
    first += decodeCifar10Into(bytes, f, pixels, labels, first);
  });
  return {
    name: 'cifar10',
    split,
    n,
    height: CIFAR10_SIDE,
    width: CIFAR10_SIDE,
    channels: 3,
    pixels,
    labels,
    source: `CIFAR-10 binary files ${files.join(', ')}`,
  };
}
