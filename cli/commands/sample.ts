import { Command } from 'commander';
import { GRID_KINDS, GridKind, writeSampleGrid } from '../../lib/sample';
import { loadModel } from '../../lib/train';
import { writeJsonAtomic } from '../../lib/atomic';
import { provenance } from '../../lib/provenance';
import { choiceOption, intOption, printJsonLine, startBackend } from '../common';

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description('write a sample grid: rows are classes; classes | level1 (vary z1) | level0 (fixed fc3, vary z0)')
    .requiredOption('--checkpoint <dir>', 'run folder or checkpoint.bin')
    .requiredOption('--grid <kind>', GRID_KINDS.join('|'), choiceOption('grid', GRID_KINDS))
    .option('--n <n>', 'samples per row', intOption('--n', 1), 10)
    .option('--seed <n>', 'noise seed', intOption('--seed', 0), 1)
    .requiredOption('--out <file.png>', 'PNG to write')
    .action(async (o: { checkpoint: string; grid: GridKind; n: number; seed: number; out: string }) => {
      const backend = await startBackend();
      const { model, file, meta } = loadModel(o.checkpoint);
      await writeSampleGrid(model, o.grid, o.out, { cols: o.n, seed: o.seed });
      // A picture in results/ must say what made it: the command, seed, backend, commit, checkpoint.
      writeJsonAtomic(`${o.out}.provenance.json`, {
        checkpoint: file, grid: o.grid, step: meta.step, ...provenance({ seed: o.seed, backend, preset: meta.config.preset, scale: meta.config.scale }),
      });
      printJsonLine({ out: o.out, grid: o.grid, checkpoint: file, per_row: o.n, seed: o.seed, backend });
    });
}
