/**
 * Progress for long work: a live bar (rate, ETA, current values) on a terminal, plain periodic lines
 * otherwise (logs, CI, notebooks), so output stays readable wherever it goes.
 */
import * as cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, info?: Record<string, number | string>): void;
  log(line: string): void;
  stop(): void;
}

function fmt(info: Record<string, number | string> | undefined): string {
  if (!info) return '';
  return Object.entries(info)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? (Math.abs(v) >= 100 || v === 0 ? v.toFixed(0) : v.toPrecision(3)) : v}`)
    .join(' ');
}

export function createProgress(label: string, total: number, opts: { stream?: NodeJS.WriteStream; plainEverySeconds?: number } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const start = Date.now();
  if (stream.isTTY && !process.env.CI) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} | {rate}/s | ETA {eta_formatted} | {info}`, stream, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { info: '', rate: '0' });
    return {
      update(done, info) {
        const rate = done / Math.max(1e-9, (Date.now() - start) / 1000);
        bar.update(done, { info: fmt(info), rate: rate.toFixed(2) });
      },
      log(line) {
        stream.write(`\n${line}\n`);
      },
      stop() {
        bar.stop();
      },
    };
  }
  const every = (opts.plainEverySeconds ?? 10) * 1000;
  let last = 0;
  return {
    update(done, info) {
      const now = Date.now();
      if (now - last < every && done < total) return;
      last = now;
      const secs = (now - start) / 1000;
      const rate = done / Math.max(1e-9, secs);
      const eta = rate > 0 ? (total - done) / rate : 0;
      stream.write(`${label} ${done}/${total} (${((100 * done) / total).toFixed(0)}%) ${rate.toFixed(2)}/s elapsed ${secs.toFixed(0)}s eta ${eta.toFixed(0)}s ${fmt(info)}\n`);
    },
    log(line) {
      stream.write(`${line}\n`);
    },
    stop() {},
  };
}
