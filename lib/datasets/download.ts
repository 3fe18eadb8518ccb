/**
 * `sgan data download <mnist|cifar10|svhn> [--data-dir DIR]`: fetch the official files into DIR,
 * the same folder that loadDataset(name, { dataDir: DIR }) then reads.
 *
 * Every file is streamed to a temp name beside its destination while its MD5 is computed, checked
 * against the published checksum, and only then renamed into place, so an interrupted or corrupt
 * download never leaves a file that looks complete. Files already present with a good checksum
 * are skipped, so re-running the command is cheap and resumes after a failure.
 *
 * CIFAR-10 comes as one tarball; its .bin files are extracted flat into DIR (the loader also
 * accepts the tarball's own cifar-10-batches-bin/ subfolder) and the tarball is then deleted
 * unless keepArchive is set. The tar reader here handles ustar/GNU/pax regular files only, which
 * is all that archive holds, and refuses entry paths that would escape DIR.
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import * as cliProgress from 'cli-progress';
import { commitTempFile, removeQuietly, tempPathFor } from '../atomic';
import type { DatasetName } from './dataset';
import { MNIST_FILES } from './mnist';
import { CIFAR10_RECORD_BYTES, CIFAR10_TAR_SUBDIR, CIFAR10_TEST_FILES, CIFAR10_TRAIN_FILES } from './cifar10';
import { SVHN_FILES } from './svhn';

/** The subset of the fetch API we use, so tests can serve local buffers. */
export type FetchLike = (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;

export interface RemoteFile {
  /** File name inside the data folder. */
  name: string;
  /** Mirrors, tried in order. */
  urls: string[];
  md5: string;
}

const MNIST_MIRRORS = [
  'https://ossci-datasets.s3.amazonaws.com/mnist/',
  'https://storage.googleapis.com/cvdf-datasets/mnist/',
  'http://yann.lecun.com/exdb/mnist/',
];

function mnistFile(name: string, md5: string): RemoteFile {
  return { name, urls: MNIST_MIRRORS.map((m) => m + name), md5 };
}

export const MNIST_REMOTE: RemoteFile[] = [
  mnistFile(`${MNIST_FILES.train.images}.gz`, 'f68b3c2dcbeaaa9fbdd348bbdeb94873'),
  mnistFile(`${MNIST_FILES.train.labels}.gz`, 'd53e105ee54ea40749a09fcbcd1e9432'),
  mnistFile(`${MNIST_FILES.test.images}.gz`, '9fb629c4189551a2d022fa330f9573f3'),
  mnistFile(`${MNIST_FILES.test.labels}.gz`, 'ec29112dd5afa0611ce80d1b7f02629c'),
];

export const CIFAR10_REMOTE: RemoteFile = {
  name: 'cifar-10-binary.tar.gz',
  urls: ['https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'],
  md5: 'c32a1d4ab5d03f1284b67883e8d87530',
};
/** Every official batch file holds 10,000 records. */
const CIFAR10_BATCH_BYTES = 10000 * CIFAR10_RECORD_BYTES;

export const SVHN_REMOTE: RemoteFile[] = [
  { name: SVHN_FILES.train, urls: [`http://ufldl.stanford.edu/housenumbers/${SVHN_FILES.train}`], md5: 'e26dedcc434d2e4c54c9b2d4a06d8373' },
  { name: SVHN_FILES.test, urls: [`http://ufldl.stanford.edu/housenumbers/${SVHN_FILES.test}`], md5: 'eb5a983be6a315427106f1b164d9cef3' },
];

export interface DownloadOptions {
  /** Defaults to the global fetch. */
  fetchImpl?: FetchLike;
  /** Where status lines go; default stderr. */
  log?: (line: string) => void;
  /** Show progress (bar on a TTY, a line per 10% otherwise); default true. */
  progress?: boolean;
  /** CIFAR-10: keep the tarball after extracting; default false (it is 163 MB). */
  keepArchive?: boolean;
  /** Abort a download when no bytes arrive for this long; default 60 s. */
  stallTimeoutMs?: number;
}

function defaultLog(line: string): void {
  process.stderr.write(line + '\n');
}

// ---------------------------------------------------------------- checksums

/** MD5 of a file, streamed (the SVHN train file is 182 MB). */
export async function md5File(file: string): Promise<string> {
  const hash = crypto.createHash('md5');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Throw unless `file`'s MD5 is `expected`; the error names file, expected and found. */
export async function verifyChecksum(file: string, expected: string): Promise<void> {
  const found = await md5File(file);
  if (found !== expected.toLowerCase()) throw new Error(`download: ${file}: md5 ${found}, expected ${expected}`);
}

async function hasGoodChecksum(file: string, expected: string): Promise<boolean> {
  if (!fs.existsSync(file)) return false;
  return (await md5File(file)) === expected.toLowerCase();
}

// ---------------------------------------------------------------- progress

interface Progress {
  update(bytes: number): void;
  stop(): void;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}

/** A cli-progress bar on a TTY; plain lines at every 10% (or 10 MB, size unknown) otherwise. */
function startProgress(label: string, total: number | null, opts: DownloadOptions): Progress {
  if (opts.progress === false) return { update: () => undefined, stop: () => undefined };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} |{bar}| {percentage}% {done}/{size} MB`, stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    const size = total ?? 0;
    bar.start(size || 1, 0, { done: '0.0', size: total ? mb(total) : '?' });
    return {
      update: (b) => bar.update(size ? b : 0, { done: mb(b) }),
      stop: () => bar.stop(),
    };
  }
  const log = opts.log ?? defaultLog;
  let nextMark = 0;
  return {
    update: (b) => {
      const mark = total ? Math.floor((b / total) * 10) : Math.floor(b / 10e6);
      if (mark < nextMark) return;
      nextMark = mark + 1;
      log(total ? `${label}: ${mark * 10}% (${mb(b)} of ${mb(total)} MB)` : `${label}: ${mb(b)} MB`);
    },
    stop: () => undefined,
  };
}

// ---------------------------------------------------------------- one download

export interface DownloadResult {
  file: string;
  bytes: number;
  md5: string;
}

/**
 * Stream `url` to a temp file beside `dest`, verify size (when the server sent one) and MD5, then
 * rename to `dest`. On any failure the temp file is removed and nothing appears at `dest`.
 */
export async function downloadToFile(
  url: string,
  dest: string,
  expectedMd5: string,
  fetchImpl: FetchLike = fetch,
  opts: DownloadOptions = {},
): Promise<DownloadResult> {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = tempPathFor(dest);
  const controller = new AbortController();
  const stallMs = opts.stallTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const armStallTimer = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`no data for ${stallMs / 1000} s`)), stallMs);
  };
  let handle: fs.promises.FileHandle | undefined;
  let progress: Progress | undefined;
  try {
    armStallTimer();
    const res = await fetchImpl(url, { signal: controller.signal });
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`.trim());
    if (!res.body) throw new Error('response has no body');
    const lengthHeader = res.headers.get('content-length');
    const total = lengthHeader ? Number(lengthHeader) : null;
    progress = startProgress(path.basename(dest), total, opts);
    handle = await fs.promises.open(tmp, 'w');
    const hash = crypto.createHash('md5');
    let bytes = 0;
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      armStallTimer();
      hash.update(value);
      await handle.write(value);
      bytes += value.length;
      progress.update(bytes);
    }
    progress.stop();
    if (total !== null && bytes !== total) throw new Error(`truncated: received ${bytes} of ${total} bytes`);
    const md5 = hash.digest('hex');
    if (md5 !== expectedMd5.toLowerCase()) throw new Error(`md5 ${md5}, expected ${expectedMd5} (${bytes} bytes received)`);
    await handle.sync();
    await handle.close();
    handle = undefined;
    commitTempFile(tmp, dest);
    return { file: dest, bytes, md5 };
  } catch (e) {
    progress?.stop();
    const reason = controller.signal.aborted && controller.signal.reason instanceof Error ? controller.signal.reason.message : (e as Error).message;
    throw new Error(`download: ${url} -> ${dest}: ${reason}`);
  } finally {
    clearTimeout(timer);
    if (handle) await handle.close().catch(() => undefined);
    removeQuietly(tmp);
  }
}

/** Ensure `dir/remote.name` exists with the right MD5, trying each mirror. Returns what happened. */
export async function ensureRemoteFile(remote: RemoteFile, dir: string, opts: DownloadOptions = {}): Promise<'present' | 'downloaded'> {
  const log = opts.log ?? defaultLog;
  const dest = path.join(dir, remote.name);
  if (await hasGoodChecksum(dest, remote.md5)) {
    log(`${dest}: present, checksum ok`);
    return 'present';
  }
  if (fs.existsSync(dest)) log(`${dest}: checksum mismatch, downloading again`);
  const errors: string[] = [];
  for (const url of remote.urls) {
    try {
      log(`${remote.name}: downloading ${url}`);
      await downloadToFile(url, dest, remote.md5, opts.fetchImpl ?? fetch, opts);
      return 'downloaded';
    } catch (e) {
      errors.push((e as Error).message);
      log(`${remote.name}: failed (${(e as Error).message})`);
    }
  }
  throw new Error(`download: ${remote.name}: every mirror failed:\n  ${errors.join('\n  ')}`);
}

// ---------------------------------------------------------------- tar.gz extraction

export interface ExtractOptions {
  /** Map an entry path to its output path relative to destDir, or null to skip it. Default: as is. */
  select?: (entryPath: string) => string | null;
}

const BLOCK = 512;

function cString(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

/** Numeric header field: octal text, or GNU base-256 when the top bit of the first byte is set. */
function numField(buf: Buffer, start: number, len: number): number {
  if (buf[start] & 0x80) {
    let v = buf[start] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + buf[start + i];
    return v;
  }
  const text = cString(buf, start, len).trim();
  return text ? parseInt(text, 8) : 0;
}

function headerChecksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return sum === numField(h, 148, 8);
}

/** Reject absolute paths and '..' so an archive cannot write outside destDir. */
function safeRelative(p: string, archive: string): string {
  const norm = path.posix.normalize(p.replace(/\\/g, '/'));
  if (path.posix.isAbsolute(norm) || norm === '..' || norm.startsWith('../')) {
    throw new Error(`extract: ${archive}: entry '${p}' would be written outside the destination folder`);
  }
  return norm;
}

/** Records "LEN key=value\n" of a pax extended header; only 'path' matters to us. */
function paxPath(data: Buffer): string | null {
  let off = 0;
  while (off < data.length) {
    const space = data.indexOf(0x20, off);
    if (space < 0) break;
    const len = parseInt(data.toString('ascii', off, space), 10);
    if (!(len > 0)) break;
    const rec = data.toString('utf8', space + 1, off + len - 1);
    if (rec.startsWith('path=')) return rec.slice(5);
    off += len;
  }
  return null;
}

type Sink =
  | { kind: 'file'; fd: number; tmp: string; dest: string }
  | { kind: 'meta'; type: 'L' | 'x'; parts: Buffer[] }
  | { kind: 'skip' };

/** Incremental tar reader: feed it chunks, it writes selected regular files. */
class TarExtractor {
  private header = Buffer.alloc(BLOCK);
  private headerFill = 0;
  private remaining = 0;
  private padding = 0;
  private sink: Sink = { kind: 'skip' };
  private entryName = '';
  private longName: string | null = null;
  private ended = false;
  readonly written: string[] = [];

  constructor(
    private readonly archive: string,
    private readonly destDir: string,
    private readonly select: (p: string) => string | null,
  ) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length && !this.ended) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - off);
        this.consumeData(chunk.subarray(off, off + n));
        off += n;
        this.remaining -= n;
        if (this.remaining === 0) this.finishEntry();
      } else if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - off);
        off += n;
        this.padding -= n;
      } else {
        const n = Math.min(BLOCK - this.headerFill, chunk.length - off);
        chunk.copy(this.header, this.headerFill, off, off + n);
        this.headerFill += n;
        off += n;
        if (this.headerFill === BLOCK) {
          this.headerFill = 0;
          this.startEntry();
        }
      }
    }
  }

  /** Called at end of input: anything half-read means the archive was cut short. */
  finish(): void {
    if (this.remaining > 0) throw new Error(`extract: ${this.archive}: truncated inside entry '${this.entryName}' (${this.remaining} bytes missing)`);
    if (this.headerFill > 0) throw new Error(`extract: ${this.archive}: truncated inside a header block`);
  }

  /** Close and delete a half-written file after an error. */
  abort(): void {
    if (this.sink.kind === 'file') {
      try {
        fs.closeSync(this.sink.fd);
      } catch {
        // Already failing.
      }
      removeQuietly(this.sink.tmp);
    }
    this.sink = { kind: 'skip' };
  }

  private startEntry(): void {
    const h = this.header;
    if (h.every((b) => b === 0)) {
      this.ended = true; // end-of-archive marker; anything after is padding
      return;
    }
    if (!headerChecksumOk(h)) throw new Error(`extract: ${this.archive}: bad tar header checksum (not a tar archive, or corrupt)`);
    const size = numField(h, 124, 12);
    const type = String.fromCharCode(h[156] || 0x30);
    const ustar = h.toString('latin1', 257, 262) === 'ustar';
    const prefix = ustar ? cString(h, 345, 155) : '';
    const plain = prefix ? `${prefix}/${cString(h, 0, 100)}` : cString(h, 0, 100);
    this.entryName = this.longName ?? plain;
    this.remaining = size;
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK;
    if (type === 'L' || type === 'x') {
      this.sink = { kind: 'meta', type, parts: [] };
    } else {
      this.longName = null; // a long name applies to the next real entry only
      this.sink = type === '0' || type === '7' ? this.openFile(this.entryName) : { kind: 'skip' };
    }
    if (size === 0) this.finishEntry();
  }

  private openFile(entry: string): Sink {
    // Archives made with `tar -C dir .` prefix every path with './'; select sees paths without it.
    const rel = this.select(entry.replace(/^(\.\/)+/, ''));
    if (rel === null) return { kind: 'skip' };
    const dest = path.join(this.destDir, safeRelative(rel, this.archive));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    const tmp = tempPathFor(dest);
    return { kind: 'file', fd: fs.openSync(tmp, 'w'), tmp, dest };
  }

  private consumeData(data: Buffer): void {
    if (this.sink.kind === 'file') fs.writeSync(this.sink.fd, data);
    else if (this.sink.kind === 'meta') this.sink.parts.push(Buffer.from(data));
  }

  private finishEntry(): void {
    const sink = this.sink;
    this.sink = { kind: 'skip' };
    if (sink.kind === 'file') {
      fs.fsyncSync(sink.fd);
      fs.closeSync(sink.fd);
      commitTempFile(sink.tmp, sink.dest);
      this.written.push(sink.dest);
    } else if (sink.kind === 'meta') {
      const data = Buffer.concat(sink.parts);
      this.longName = sink.type === 'L' ? cString(data, 0, data.length) : (paxPath(data) ?? this.longName);
    }
  }
}

/**
 * Extract the regular files of a .tar.gz into destDir (streamed: the archive is never held in
 * memory). Each file is written to a temp name and renamed when complete; on error the file being
 * written is removed (files completed earlier stay). Returns the paths written.
 */
export async function extractTarGz(archive: string, destDir: string, opts: ExtractOptions = {}): Promise<string[]> {
  const tar = new TarExtractor(archive, destDir, opts.select ?? ((p) => p));
  const input = fs.createReadStream(archive);
  const gunzip = zlib.createGunzip();
  input.on('error', (e) => gunzip.destroy(e));
  input.pipe(gunzip);
  try {
    for await (const chunk of gunzip) tar.push(chunk as Buffer);
    tar.finish();
  } catch (e) {
    tar.abort();
    input.destroy();
    const msg = (e as Error).message;
    throw msg.startsWith('extract:') ? e : new Error(`extract: ${archive}: ${msg}`);
  }
  return tar.written;
}

// ---------------------------------------------------------------- per dataset

export interface DownloadReport {
  name: DatasetName;
  dataDir: string;
  files: Array<{ file: string; status: 'present' | 'downloaded' | 'extracted' }>;
}

async function downloadAll(remotes: RemoteFile[], dataDir: string, opts: DownloadOptions): Promise<DownloadReport['files']> {
  const out: DownloadReport['files'] = [];
  for (const r of remotes) out.push({ file: path.join(dataDir, r.name), status: await ensureRemoteFile(r, dataDir, opts) });
  return out;
}

/** Extract the official tarball's cifar-10-batches-bin/* flat into dataDir; returns the paths written. */
export async function extractCifar10Archive(archive: string, dataDir: string): Promise<string[]> {
  const prefix = `${CIFAR10_TAR_SUBDIR}/`;
  // The archive holds nothing outside that folder that we need.
  return extractTarGz(archive, dataDir, { select: (p) => (p.startsWith(prefix) && p.length > prefix.length ? p.slice(prefix.length) : null) });
}

function cifarBinsComplete(dataDir: string): boolean {
  return [...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES].every((f) => {
    const p = path.join(dataDir, f);
    return fs.existsSync(p) && fs.statSync(p).size === CIFAR10_BATCH_BYTES;
  });
}

async function downloadCifar10(dataDir: string, opts: DownloadOptions): Promise<DownloadReport['files']> {
  const log = opts.log ?? defaultLog;
  const bins = [...CIFAR10_TRAIN_FILES, ...CIFAR10_TEST_FILES].map((f) => path.join(dataDir, f));
  if (cifarBinsComplete(dataDir)) {
    log(`${dataDir}: CIFAR-10 batch files present`);
    return bins.map((file) => ({ file, status: 'present' as const }));
  }
  await ensureRemoteFile(CIFAR10_REMOTE, dataDir, opts);
  const archive = path.join(dataDir, CIFAR10_REMOTE.name);
  log(`${archive}: extracting`);
  await extractCifar10Archive(archive, dataDir);
  if (!cifarBinsComplete(dataDir)) throw new Error(`download: ${archive}: extracted, but the six ${CIFAR10_BATCH_BYTES}-byte .bin files are not all in ${dataDir}`);
  if (!opts.keepArchive) fs.rmSync(archive, { force: true });
  return bins.map((file) => ({ file, status: 'extracted' as const }));
}

/** Fetch the official files of `name` into dataDir (see the module comment). */
export async function downloadDataset(name: DatasetName, dataDir: string, opts: DownloadOptions = {}): Promise<DownloadReport> {
  fs.mkdirSync(dataDir, { recursive: true });
  let files: DownloadReport['files'];
  switch (name) {
    case 'mnist':
      files = await downloadAll(MNIST_REMOTE, dataDir, opts);
      break;
    case 'cifar10':
      files = await downloadCifar10(dataDir, opts);
      break;
    case 'svhn':
      files = await downloadAll(SVHN_REMOTE, dataDir, opts);
      break;
    default:
      throw new Error(`download: unknown dataset '${String(name)}', expected mnist, cifar10 or svhn`);
  }
  return { name, dataDir, files };
}
