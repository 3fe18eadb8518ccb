/**
 * Compute backend selection. lib/ only ever talks to the @tensorflow/tfjs API; this file decides
 * which implementation sits underneath. Order of preference (fastest first):
 *   gpu        @tensorflow/tfjs-node-gpu  (libtensorflow + CUDA; optional dependency)
 *   tensorflow @tensorflow/tfjs-node      (libtensorflow on the CPU; optional dependency)
 *   wasm       @tensorflow/tfjs-backend-wasm + the project's training kernels (lib/wasm-kernels.ts),
 *              on the cores that are free (see wasmThreadsWanted, startNodeWasmThreads;
 *              SGAN_WASM_THREADS=N forces N threads)
 *   cpu        the plain JavaScript backend that ships with @tensorflow/tfjs
 * SGAN_BACKEND=gpu|tensorflow|wasm|cpu forces one and fails loudly if it cannot be loaded.
 */
import * as os from 'os';
import * as path from 'path';
import * as workerThreads from 'worker_threads';
import * as tf from '@tensorflow/tfjs';
import { registerWasmTrainingKernels } from './wasm-kernels';

export type BackendName = 'gpu' | 'tensorflow' | 'wasm' | 'cpu';
export const BACKEND_ORDER: readonly BackendName[] = ['gpu', 'tensorflow', 'wasm', 'cpu'];

let active: BackendName | null = null;

function isBackendName(s: string): s is BackendName {
  return (BACKEND_ORDER as readonly string[]).includes(s);
}

/** Try to bring up one backend; returns null on success, else the reason it failed. */
async function tryLoad(name: BackendName): Promise<string | null> {
  try {
    switch (name) {
      case 'gpu':
      case 'tensorflow': {
        // Both packages register a backend called 'tensorflow' and must use our exact tfjs version.
        require(name === 'gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node');
        if (!(await tf.setBackend('tensorflow'))) return 'setBackend("tensorflow") returned false';
        break;
      }
      case 'wasm': {
        require('@tensorflow/tfjs-backend-wasm');
        registerWasmTrainingKernels();
        const threads = await wasmThreadsWanted();
        const ok = threads > 1 ? await startNodeWasmThreads(threads, () => tf.setBackend('wasm')) : await startSingleThreaded();
        if (!ok) return 'setBackend("wasm") returned false';
        break;
      }
      case 'cpu':
        if (!(await tf.setBackend('cpu'))) return 'setBackend("cpu") returned false';
        break;
    }
    await tf.ready();
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

// ---------------------------------------------------------------------------------------------
// The wasm backend's threads in Node

/**
 * XNNPACK threads wanted: SGAN_WASM_THREADS if set, else one per core that other processes are not
 * using right now (at least 1; tfjs pre-creates 8 workers at most). "Right now" is measured, not
 * guessed from the load average (a 1-minute average that still counts a job that ended seconds ago):
 * busy CPU time of the whole machine over a short window, minus this process's own CPU time.
 * Why not always one per core: XNNPACK splits every op evenly over its threads and waits for the
 * slowest, so a thread that shares its core with another process makes every op wait. Measured on
 * the 2-core machine with one other busy process: MNIST iteration 2055 ms with 2 threads, 1821 ms
 * with 1; on the quiet machine 1054 ms with 2 threads, 1761 ms with 1. Results do not depend on the
 * thread count (bit-identical losses and weights), so this is purely a speed setting.
 */
async function wasmThreadsWanted(): Promise<number> {
  const env = process.env.SGAN_WASM_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`SGAN_WASM_THREADS: expected an integer >= 1, found "${env}"`);
    return Math.min(n, 8);
  }
  const cores = os.availableParallelism();
  const busy = await coresBusyElsewhere(300);
  return Math.max(1, Math.min(cores - Math.round(busy), 8));
}

/** Cores' worth of CPU time that other processes used during the last `ms` milliseconds. */
export async function coresBusyElsewhere(ms: number): Promise<number> {
  const machineBusy = () => os.cpus().reduce((sum, c) => sum + c.times.user + c.times.nice + c.times.sys + c.times.irq, 0); // ms
  const ownBusy = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000; // ms
  };
  const m0 = machineBusy();
  const o0 = ownBusy();
  const t0 = process.hrtime.bigint();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  const others = machineBusy() - m0 - (ownBusy() - o0);
  return Math.max(0, others / elapsed);
}

async function startSingleThreaded(): Promise<boolean> {
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  return tf.setBackend('wasm');
}

/**
 * tfjs-backend-wasm ships a threaded SIMD build (emscripten pthreads, which run on worker_threads
 * in Node) but never uses it in Node (WASM_HAS_MULTITHREAD_SUPPORT is false there, tensorflow/tfjs
 * issue 3830). Two things stop it, both worked around here while the backend starts (`start`):
 *  1. Its pthread workers are created from blob: URLs (worker script and main script are Blobs),
 *     which Node's Worker cannot load. Emscripten takes its Worker class from worker_threads when
 *     its module is created; we hand it a subclass that runs the same worker script (shipped as
 *     wasm-out/tfjs-backend-wasm-threaded-simd.worker.js) as eval code, and points the worker's
 *     'load' message at the shipped main script (wasm-out/tfjs-backend-wasm-threaded-simd.js, the
 *     same emscripten output as the Blob, for the same .wasm file) instead of the Blob.
 *  2. Its C++ caps XNNPACK's thread pool at emscripten_num_logical_cores() / 2 (it assumes two
 *     hyper-threads per core), i.e. os.cpus().length / 2 in Node: 1 thread on a 2-core machine. So
 *     os.cpus reports 2 x `threads` entries while the module initialises, and is restored after.
 * A running pthread holds a ref on its worker, which would keep Node alive after the main script is
 * done; pthread workers ignore ref() (as the single-threaded build has no workers to wait for).
 * Falls back to one thread (with a warning) if the threaded build cannot start.
 */
async function startNodeWasmThreads(threads: number, start: () => Promise<boolean>): Promise<boolean> {
  const pkg = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
  const wasmOut = path.join(pkg, 'wasm-out');
  const { wasmWorkerContents } = require(path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.worker.js')) as { wasmWorkerContents: string };
  // As tfjs does before making its Blob: the shipped template literal turned "\n" into newlines.
  const workerSource = wasmWorkerContents.replace(/\n/g, '\\n');
  const mainScript = path.join(wasmOut, 'tfjs-backend-wasm-threaded-simd.js');
  // The real module objects, which emscripten require()s (an `import * as` binding is a copy).
  const threadsModule = require('worker_threads') as { Worker: typeof workerThreads.Worker };
  const osModule = require('os') as { cpus: typeof os.cpus };
  const NodeWorker = threadsModule.Worker;
  class PthreadWorker extends NodeWorker {
    private readonly pthread: boolean;
    constructor(file: string | URL, options?: workerThreads.WorkerOptions) {
      const blob = typeof file === 'string' && file.startsWith('blob:');
      super(blob ? workerSource : file, blob ? { ...options, eval: true } : options);
      this.pthread = blob;
    }
    override postMessage(message: unknown, transfer?: readonly workerThreads.TransferListItem[]): void {
      const m = message as { cmd?: string; urlOrBlob?: unknown } | null;
      if (this.pthread && m?.cmd === 'load' && typeof m.urlOrBlob !== 'string') message = { ...m, urlOrBlob: mainScript };
      super.postMessage(message, transfer);
    }
    override ref(): void {
      if (!this.pthread) super.ref();
    }
  }
  const wasm = require('@tensorflow/tfjs-backend-wasm') as { setThreadsCount(n: number): void };
  const cpus = osModule.cpus;
  let why = 'setBackend("wasm") returned false';
  try {
    threadsModule.Worker = PthreadWorker;
    osModule.cpus = () => {
      const real = cpus();
      return Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]);
    };
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threads);
    if (await start()) return true;
  } catch (e) {
    why = (e as Error).message.split('\n')[0];
  } finally {
    threadsModule.Worker = NodeWorker;
    osModule.cpus = cpus;
  }
  // tfjs keeps the backend's factory after a failed start, so it can be started again without threads.
  process.stderr.write(`warning: the threaded wasm backend did not start (${why}); using one thread\n`);
  return startSingleThreaded();
}

/** XNNPACK threads the wasm backend computes with (undefined before it is initialised). */
export function wasmThreadsCount(): number | undefined {
  try {
    return (require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number }).getThreadsCount();
  } catch {
    return undefined;
  }
}

/**
 * Select and initialise the backend. With `forced` (or SGAN_BACKEND) only that one is tried.
 * Idempotent: later calls return the backend chosen first unless a different one is forced.
 */
export async function initBackend(forced: string | undefined = process.env.SGAN_BACKEND): Promise<BackendName> {
  if (forced !== undefined && forced !== '') {
    if (!isBackendName(forced)) {
      throw new Error(`SGAN_BACKEND: expected one of ${BACKEND_ORDER.join('|')}, found "${forced}"`);
    }
    if (active === forced) return active;
    const why = await tryLoad(forced);
    if (why !== null) throw new Error(`SGAN_BACKEND=${forced}: backend could not be loaded: ${why}`);
    active = forced;
    return active;
  }
  if (active !== null) return active;
  const failures: string[] = [];
  for (const name of BACKEND_ORDER) {
    const why = await tryLoad(name);
    if (why === null) {
      active = name;
      return active;
    }
    failures.push(`${name}: ${why}`);
  }
  throw new Error(`no tfjs backend could be loaded:\n  ${failures.join('\n  ')}`);
}

/** The backend chosen by initBackend (throws if none was chosen yet). */
export function activeBackend(): BackendName {
  if (active === null) throw new Error('initBackend() has not been called');
  return active;
}
