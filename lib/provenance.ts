/**
 * Provenance: every result file says what produced it (command, seed, backend, preset, commit, scale,
 * machine) so nothing in results/ has to be taken on trust.
 */
import { execFileSync } from 'child_process';
import * as os from 'os';
import * as tf from '@tensorflow/tfjs';

export interface Provenance {
  command: string;
  seed: number | number[] | null;
  backend: string;
  preset: string | null;
  commit: string;
  /** True when the working tree had uncommitted changes (the commit alone does not reproduce it). */
  dirty: boolean;
  scale: string | null;
  date: string;
  node: string;
  tfjs: string;
  machine: string;
  wallSeconds?: number;
}

export function gitCommit(cwd = process.cwd()): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    // results/ holds outputs, not code: a run that rewrites results/ is not thereby unreproducible.
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':!results'], { cwd, stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    return { commit, dirty: status.trim().length > 0 };
  } catch {
    return { commit: 'unknown (not a git checkout)', dirty: false };
  }
}

export function commandLine(argv = process.argv): string {
  const args = argv.slice(2).map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)));
  return ['sgan', ...args].join(' ');
}

export function provenance(p: { seed: number | number[] | null; backend: string; preset: string | null; scale: string | null; command?: string; wallSeconds?: number }): Provenance {
  const { commit, dirty } = gitCommit();
  const cpus = os.cpus();
  return {
    command: p.command ?? commandLine(),
    seed: p.seed,
    backend: p.backend,
    preset: p.preset,
    commit,
    dirty,
    scale: p.scale,
    date: new Date().toISOString(),
    node: process.version,
    tfjs: tf.version.tfjs,
    machine: `${os.platform()} ${os.arch()}, ${cpus.length} x ${cpus[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    wallSeconds: p.wallSeconds,
  };
}
