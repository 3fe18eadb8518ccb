/**
 * lib/datasets/download.ts without a network: fetch is injected and serves local buffers (good,
 * wrong, truncated, failing mid-stream); tar.gz archives are built here by a tiny tar writer.
 * The invariant under test: a failed download or extraction leaves no file behind.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { gzipSync } from 'fflate';
import {
  downloadDataset,
  downloadToFile,
  ensureRemoteFile,
  extractCifar10Archive,
  extractTarGz,
  FetchLike,
  md5File,
  verifyChecksum,
} from '../lib/datasets/download';
import { loadDataset } from '../lib/datasets/dataset';

const tmpDirs: string[] = [];
after(() => tmpDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sgan-dl-'));
  tmpDirs.push(d);
  return d;
}

function re(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function md5(buf: Uint8Array): string {
  return crypto.createHash('md5').update(buf).digest('hex');
}

const quiet = { progress: false, log: (): void => undefined };

/** A fetch that serves `body` for every URL, optionally lying about length or failing mid-stream. */
function serve(body: Uint8Array, opts: { status?: number; claimLength?: number; failAfter?: number } = {}): FetchLike & { calls: string[] } {
  const calls: string[] = [];
  const f = async (url: string): Promise<Response> => {
    calls.push(url);
    const headers: Record<string, string> = {};
    if (opts.claimLength !== undefined) headers['content-length'] = String(opts.claimLength);
    if (opts.failAfter !== undefined) {
      const part = body.subarray(0, opts.failAfter);
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (part.length > 0 && !(controller as unknown as { sent?: boolean }).sent) {
            (controller as unknown as { sent?: boolean }).sent = true;
            controller.enqueue(part);
          } else {
            controller.error(new Error('connection reset'));
          }
        },
      });
      return new Response(stream, { status: opts.status ?? 200, headers });
    }
    return new Response(body, { status: opts.status ?? 200, headers });
  };
  return Object.assign(f, { calls });
}

const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));

test('md5File and verifyChecksum', async () => {
  const dir = tmpDir();
  const f = path.join(dir, 'hello.txt');
  fs.writeFileSync(f, 'hello');
  assert.equal(await md5File(f), '5d41402abc4b2a76b9719d911017c592');
  await verifyChecksum(f, '5D41402ABC4B2A76B9719D911017C592');
  await assert.rejects(verifyChecksum(f, '00000000000000000000000000000000'), new RegExp(`download: ${re(f)}: md5 5d41402abc4b2a76b9719d911017c592, expected 00000000000000000000000000000000`));
});

test('downloadToFile: a good download lands under the final name, no temp left', async () => {
  const dir = tmpDir();
  const dest = path.join(dir, 'sub', 'file.bin');
  const res = await downloadToFile('https://example.invalid/file.bin', dest, md5(payload), serve(payload, { claimLength: payload.length }), quiet);
  assert.equal(res.bytes, payload.length);
  assert.ok(fs.readFileSync(dest).equals(payload));
  assert.deepEqual(fs.readdirSync(path.dirname(dest)), ['file.bin']);
});

test('downloadToFile: wrong checksum, truncation, mid-stream failure and HTTP errors leave nothing', async () => {
  const dir = tmpDir();
  const dest = path.join(dir, 'file.bin');
  const url = 'https://example.invalid/file.bin';
  const cases: Array<[FetchLike, RegExp]> = [
    [serve(payload), new RegExp(`download: ${re(url)} -> ${re(dest)}: md5 ${md5(payload)}, expected 0123456789abcdef0123456789abcdef`)],
    [serve(payload.subarray(0, 1000), { claimLength: payload.length }), /truncated: received 1000 of 200000 bytes/],
    [serve(payload, { failAfter: 5000 }), /connection reset/],
    [serve(Buffer.from('not found'), { status: 404 }), /HTTP 404/],
    [async () => { throw new Error('getaddrinfo ENOTFOUND example.invalid'); }, /ENOTFOUND/],
  ];
  for (const [fetchImpl, expected] of cases) {
    await assert.rejects(downloadToFile(url, dest, '0123456789abcdef0123456789abcdef', fetchImpl, quiet), expected);
    assert.deepEqual(fs.readdirSync(dir), [], `nothing left after ${expected}`);
  }
});

test('downloadToFile: a stalled server is aborted', async () => {
  const dir = tmpDir();
  const stall: FetchLike = async (_url, init) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array([1, 2, 3]));
          init?.signal?.addEventListener('abort', () => controller.error(init.signal?.reason));
        },
      }),
    );
  await assert.rejects(downloadToFile('https://x.invalid/f', path.join(dir, 'f'), md5(payload), stall, { ...quiet, stallTimeoutMs: 50 }), /no data for 0\.05 s/);
  assert.deepEqual(fs.readdirSync(dir), []);
});

test('ensureRemoteFile: falls back to the next mirror, then skips a file with a good checksum', async () => {
  const dir = tmpDir();
  const remote = { name: 'x.gz', urls: ['https://a.invalid/x.gz', 'https://b.invalid/x.gz'], md5: md5(payload) };
  const calls: string[] = [];
  const flaky: FetchLike = async (url) => {
    calls.push(url);
    return url.startsWith('https://a.') ? new Response('down', { status: 503 }) : new Response(payload);
  };
  const lines: string[] = [];
  const opts = { fetchImpl: flaky, progress: false, log: (l: string) => lines.push(l) };
  assert.equal(await ensureRemoteFile(remote, dir, opts), 'downloaded');
  assert.deepEqual(calls, remote.urls);
  assert.ok(lines.some((l) => /HTTP 503/.test(l)), 'the failed mirror is reported');
  assert.equal(await ensureRemoteFile(remote, dir, opts), 'present');
  assert.equal(calls.length, 2, 'no fetch for a file already present with a good checksum');
  // A corrupt local copy is replaced.
  fs.writeFileSync(path.join(dir, 'x.gz'), 'garbage');
  assert.equal(await ensureRemoteFile(remote, dir, opts), 'downloaded');
  assert.ok(fs.readFileSync(path.join(dir, 'x.gz')).equals(payload));
});

test('downloadDataset: every mirror failing is one error naming them all, with nothing left', async () => {
  const dir = tmpDir();
  const down = serve(Buffer.from('gone'), { status: 404 });
  await assert.rejects(
    downloadDataset('mnist', dir, { fetchImpl: down, progress: false, log: () => undefined }),
    /download: train-images-idx3-ubyte\.gz: every mirror failed:\n.*ossci-datasets.*HTTP 404\n.*cvdf-datasets.*\n.*yann\.lecun\.com/,
  );
  assert.deepEqual(fs.readdirSync(dir), []);
  await assert.rejects(downloadDataset('svhn', dir, { fetchImpl: down, progress: false, log: () => undefined }), /ufldl\.stanford\.edu\/housenumbers\/train_32x32\.mat/);
});

// ---------------------------------------------------------------- tar

interface TarEntry {
  name: string;
  data?: Uint8Array;
  type?: string;
  /** Put the name in a GNU 'L' long-name entry, or a pax 'x' header, instead of the header. */
  via?: 'gnu' | 'pax';
}

function tarHeader(name: string, size: number, type: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('14000000000\0', 136);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function block(data: Uint8Array): Buffer {
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([Buffer.from(data), Buffer.alloc(pad)]);
}

function tar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? new Uint8Array(0);
    if (e.via === 'gnu') {
      const longName = Buffer.from(e.name + '\0');
      parts.push(tarHeader('././@LongLink', longName.length, 'L'), block(longName));
    } else if (e.via === 'pax') {
      const rec = (k: string, v: string): string => {
        const body = ` ${k}=${v}\n`;
        let len = body.length + 1;
        while (String(len).length + body.length !== len) len++;
        return `${len}${body}`;
      };
      const pax = Buffer.from(rec('path', e.name) + rec('mtime', '1500000000'));
      parts.push(tarHeader('PaxHeader/x', pax.length, 'x'), block(pax));
    }
    parts.push(tarHeader(e.via ? 'truncated-name' : e.name, data.length, e.type ?? '0'), block(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

test('extractTarGz: regular files (incl. GNU and pax long names), folders and links skipped', async () => {
  const dir = tmpDir();
  const longName = `deep/${'n'.repeat(120)}.txt`;
  const archive = path.join(dir, 'a.tar.gz');
  fs.writeFileSync(
    archive,
    gzipSync(
      tar([
        { name: 'top/', type: '5' },
        { name: 'top/a.bin', data: payload.subarray(0, 1500) },
        { name: 'top/empty', data: new Uint8Array(0) },
        { name: 'top/link', type: '2' },
        { name: longName, data: Buffer.from('gnu'), via: 'gnu' },
        { name: 'pax/named.txt', data: Buffer.from('pax'), via: 'pax' },
      ]),
    ),
  );
  const out = path.join(dir, 'out');
  const written = await extractTarGz(archive, out);
  assert.deepEqual(written.map((p) => path.relative(out, p)).sort(), [longName, 'pax/named.txt', 'top/a.bin', 'top/empty'].sort());
  assert.ok(fs.readFileSync(path.join(out, 'top/a.bin')).equals(payload.subarray(0, 1500)));
  assert.equal(fs.readFileSync(path.join(out, longName), 'utf8'), 'gnu');
  assert.equal(fs.readFileSync(path.join(out, 'pax/named.txt'), 'utf8'), 'pax');
  assert.equal(fs.existsSync(path.join(out, 'top/link')), false);
  // select: rename or skip entries.
  const sel = path.join(dir, 'sel');
  const picked = await extractTarGz(archive, sel, { select: (p) => (p === 'top/a.bin' ? 'a.bin' : null) });
  assert.deepEqual(picked, [path.join(sel, 'a.bin')]);
});

test('extractTarGz: truncated, corrupt and path-escaping archives fail and leave no partial file', async () => {
  const dir = tmpDir();
  const out = path.join(dir, 'out');
  const whole = tar([{ name: 'big.bin', data: payload }]);
  const cut = path.join(dir, 'cut.tar.gz');
  fs.writeFileSync(cut, gzipSync(whole.subarray(0, 512 + 100_000)));
  await assert.rejects(extractTarGz(cut, out), new RegExp(`extract: ${re(cut)}: truncated inside entry 'big\\.bin' \\(100000 bytes missing\\)`));
  assert.deepEqual(fs.readdirSync(out), []);
  const gzCut = path.join(dir, 'gzcut.tar.gz');
  const gz = gzipSync(whole);
  fs.writeFileSync(gzCut, gz.subarray(0, gz.length >> 1));
  await assert.rejects(extractTarGz(gzCut, out), new RegExp(`extract: ${re(gzCut)}: `));
  assert.deepEqual(fs.readdirSync(out), []);
  const corrupt = path.join(dir, 'corrupt.tar.gz');
  const bad = Buffer.from(whole);
  bad[10] ^= 0xff;
  fs.writeFileSync(corrupt, gzipSync(bad));
  await assert.rejects(extractTarGz(corrupt, out), /bad tar header checksum/);
  const evil = path.join(dir, 'evil.tar.gz');
  fs.writeFileSync(evil, gzipSync(tar([{ name: '../escape.txt', data: Buffer.from('x') }])));
  await assert.rejects(extractTarGz(evil, out), /entry '\.\.\/escape\.txt' would be written outside the destination folder/);
  assert.equal(fs.existsSync(path.join(dir, 'escape.txt')), false);
  await assert.rejects(extractTarGz(path.join(dir, 'missing.tar.gz'), out), /extract: .*missing\.tar\.gz: .*ENOENT/);
});

test('extractCifar10Archive: the tarball layout is flattened into a folder loadDataset reads', async () => {
  const dir = tmpDir();
  const rec = (label: number): Buffer => Buffer.concat([Buffer.from([label]), Buffer.alloc(3072, label * 20)]);
  const archive = path.join(dir, 'cifar-10-binary.tar.gz');
  fs.writeFileSync(
    archive,
    gzipSync(
      tar([
        { name: 'cifar-10-batches-bin/', type: '5' },
        { name: 'cifar-10-batches-bin/data_batch_1.bin', data: Buffer.concat([rec(1), rec(2)]) },
        { name: './cifar-10-batches-bin/test_batch.bin', data: rec(7) }, // as `tar -C dir .` writes it
        { name: 'cifar-10-batches-bin/batches.meta.txt', data: Buffer.from('airplane\n') },
      ]),
    ),
  );
  const written = await extractCifar10Archive(archive, dir);
  assert.deepEqual(written.map((p) => path.basename(p)), ['data_batch_1.bin', 'test_batch.bin', 'batches.meta.txt']);
  const train = loadDataset('cifar10', { split: 'train', dataDir: dir });
  assert.deepEqual(Array.from(train.labels), [1, 2]);
  assert.equal(train.pixels[3072 + 5], 40);
  assert.equal(loadDataset('cifar10', { split: 'test', dataDir: dir }).labels[0], 7);
});
