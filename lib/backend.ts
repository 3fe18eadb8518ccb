/**
 * Compute backend selection. lib/ only ever talks to the @tensorflow/tfjs API; this file decides
 * which implementation sits underneath. Order of preference (fastest first):
 *   gpu        @tensorflow/tfjs-node-gpu  (libtensorflow + CUDA; optional dependency)
 *   tensorflow @tensorflow/tfjs-node      (libtensorflow on the CPU; optional dependency)
 *   wasm       @tensorflow/tfjs-backend-wasm + the project's training kernels (lib/wasm-kernels.ts)
 *   cpu        the plain JavaScript backend that ships with @tensorflow/tfjs
 * SGAN_BACKEND=gpu|tensorflow|wasm|cpu forces one and fails loudly if it cannot be loaded.
 */
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
        // The threaded build spawns workers from blob: URLs, which Node cannot run; the SIMD
        // single-thread build is what works here.
        tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
        registerWasmTrainingKernels();
        if (!(await tf.setBackend('wasm'))) return 'setBackend("wasm") returned false';
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

/** XNNPACK threads the wasm backend computes with (undefined before it is initialised). */
export function wasmThreadsCount(): number | undefined {
  try {
    return (require('@tensorflow/tfjs-backend-wasm') as { getThreadsCount(): number }).getThreadsCount();
  } catch {
    return undefined;
  }
}

/** The backend chosen by initBackend (throws if none was chosen yet). */
export function activeBackend(): BackendName {
  if (active === null) throw new Error('initBackend() has not been called');
  return active;
}
