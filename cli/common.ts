/** Shared pieces of the CLI: option parsers that fail as usage errors, and the backend start-up. */
import { InvalidArgumentError } from 'commander';
import { BackendName, initBackend } from '../lib/backend';

export function intOption(name: string, min = Number.MIN_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got "${v}"`);
    return n;
  };
}

export function choiceOption<T extends string>(name: string, choices: readonly T[]) {
  return (v: string): T => {
    if (!(choices as readonly string[]).includes(v)) throw new InvalidArgumentError(`${name} must be one of ${choices.join('|')}, got "${v}"`);
    return v as T;
  };
}

/** Comma-separated integers ("1,2,3"). */
export function intListOption(name: string) {
  return (v: string): number[] => {
    const parts = v.split(',').map((s) => s.trim());
    const out = parts.map(Number);
    if (parts.length === 0 || out.some((n, i) => parts[i] === '' || !Number.isInteger(n))) {
      throw new InvalidArgumentError(`${name} must be comma-separated integers, got "${v}"`);
    }
    return out;
  };
}

/** Comma-separated choices ("wasm,cpu"), duplicates dropped. */
export function choiceListOption<T extends string>(name: string, choices: readonly T[]) {
  return (v: string): T[] => {
    const parts = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const bad = parts.filter((p) => !(choices as readonly string[]).includes(p));
    if (parts.length === 0 || bad.length > 0) throw new InvalidArgumentError(`${name} must be a comma-separated list of ${choices.join('|')}, got "${v}"`);
    return [...new Set(parts)] as T[];
  };
}

/** Start the backend (SGAN_BACKEND or the fastest available) and say which, on stderr. */
export async function startBackend(): Promise<BackendName> {
  const b = await initBackend();
  process.stderr.write(`backend: ${b}\n`);
  return b;
}

/** Commands print their machine-readable answer as the last line of stdout: one JSON object. */
export function printJsonLine(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}
