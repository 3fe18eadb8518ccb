/**
 * Where the project and its neighbour ../shared are, from wherever this file runs (lib/ under tsx,
 * dist/lib/ when compiled, a notebook's kernel): the project root is the nearest folder above this
 * file whose package.json is sgan-ts's.
 */
import * as fs from 'fs';
import * as path from 'path';

let root: string | null = null;

export function projectRoot(): string {
  if (root !== null) return root;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'sgan-ts') return (root = dir);
    if (path.dirname(dir) === dir) throw new Error(`no sgan-ts package.json above ${__dirname}`);
  }
}

/** A path inside ../shared (beside the project; present on the team's machines, not in a fresh clone). */
export function sharedPath(...parts: string[]): string {
  return path.join(projectRoot(), '..', 'shared', ...parts);
}
