import { Command } from 'commander';
import { DATASET_NAMES, DatasetName } from '../../lib/datasets/dataset';
import { downloadDataset } from '../../lib/datasets/download';
import { choiceOption, printJsonLine } from '../common';

export function registerData(program: Command): void {
  const data = program.command('data').description('dataset utilities');
  data
    .command('download')
    .description('download the official files of a dataset, verify their checksums, extract what needs extracting')
    .argument('<dataset>', `one of ${DATASET_NAMES.join('|')}`, choiceOption('dataset', DATASET_NAMES))
    .option('--data-dir <dir>', 'where the files go (and where --data-dir of other commands then points)', 'data')
    .action(async (name: DatasetName, opts: { dataDir: string }) => {
      const report = await downloadDataset(name, opts.dataDir);
      printJsonLine(report);
    });
}
