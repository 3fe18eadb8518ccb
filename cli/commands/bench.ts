/**
 * `sgan bench [--json] [--iters N] [--warmup N] [--backends list] [--no-torch] [--profile] [--wasm-threads N] [--out FILE]`:
 * ms per training iteration (MNIST and CIFAR-10 SGAN, paper architecture, batch 100), sampling and
 * classifier throughput, peak RSS, on every backend that loads, and the ratio to the PyTorch peer
 * (lib/bench.ts). The report goes to results/bench/latest.json (atomically, with provenance).
 */
import { Command } from 'commander';
import * as path from 'path';
import { writeJsonAtomic } from '../../lib/atomic';
import { BackendName, BACKEND_ORDER } from '../../lib/backend';
import { BENCH_EXPERIMENTS, BenchExperiment, DEFAULT_TORCH_SCRIPT, formatReport, runBench } from '../../lib/bench';
import { StageKind } from '../../lib/presets';
import { choiceListOption, choiceOption, intOption, printJsonLine } from '../common';

interface BenchOpts {
  json?: boolean;
  iters: number;
  warmup: number;
  backends?: BackendName[];
  experiments: BenchExperiment[];
  stage: StageKind;
  torch: boolean;
  torchScript: string;
  profile?: boolean;
  wasmThreads?: number;
  out: string;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time training iterations, sampling and classifier throughput on every backend that loads, against the PyTorch peer')
    .option('--json', 'print only the JSON report')
    .option('--iters <n>', 'timed iterations per measurement (at least 10)', intOption('--iters', 10), 10)
    .option('--warmup <n>', 'untimed iterations before each measurement', intOption('--warmup', 0), 2)
    .option('--backends <list>', `backends to try, comma-separated (${BACKEND_ORDER.join(',')}); cpu is only timed when listed here`, choiceListOption('--backends', BACKEND_ORDER))
    .option('--experiments <list>', `which SGANs (${BENCH_EXPERIMENTS.join(',')})`, choiceListOption('--experiments', BENCH_EXPERIMENTS), [...BENCH_EXPERIMENTS])
    .option('--stage <kind>', 'training stage of the timed iteration (the PyTorch peer times independent)', choiceOption('stage', ['independent', 'joint'] as const), 'independent')
    .option('--no-torch', 'do not run the PyTorch reference')
    .option('--torch-script <file>', 'the PyTorch reference', DEFAULT_TORCH_SCRIPT)
    .option('--profile', 'also profile one iteration per experiment (per-kernel totals)')
    .option('--wasm-threads <n>', 'threads of the wasm backend (default: SGAN_WASM_THREADS, else one per idle core)', intOption('--wasm-threads', 1))
    .option('--out <file>', 'where the JSON report goes', path.join('results', 'bench', 'latest.json'))
    .action(async (o: BenchOpts) => {
      // Read by lib/backend.ts when the wasm backend starts (a started wasm backend keeps its threads).
      if (o.wasmThreads !== undefined) process.env.SGAN_WASM_THREADS = String(o.wasmThreads);
      const report = await runBench({
        iters: o.iters,
        warmup: o.warmup,
        backends: o.backends ?? [...BACKEND_ORDER],
        backendsExplicit: o.backends !== undefined,
        experiments: o.experiments,
        stage: o.stage,
        torch: o.torch,
        torchScript: o.torchScript,
        profile: !!o.profile,
        log: o.json ? undefined : (line) => process.stderr.write(`${line}\n`),
      });
      writeJsonAtomic(o.out, report);
      if (o.json) {
        printJsonLine(report);
      } else {
        process.stdout.write(`${formatReport(report)}\nwrote ${o.out}\n`);
      }
    });
}
