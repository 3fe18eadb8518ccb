/**
 * Result tables: per-row mean and std over seeds, rendered as CSV and JSON through danfojs-node and
 * as Markdown for the README. Values are never typed by hand: rows come from cell metrics files.
 */
import * as dfd from 'danfojs-node';

export interface Column {
  key: string; // metric key in each cell's metrics
  label: string;
  digits: number;
}

export interface TableRow {
  row: string;
  seeds: number;
  [column: string]: string | number | null;
}

/** Mean and population std (the paper's ± over runs), ignoring missing values. */
export function meanStd(values: Array<number | null | undefined>): { mean: number; std: number; n: number } | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return null;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { mean, std, n: v.length };
}

/** One row: for each column, `<key>_mean` and `<key>_std` over the given metric objects. */
export function aggregateRow(row: string, metrics: Array<Record<string, unknown>>, columns: Column[]): TableRow {
  const out: TableRow = { row, seeds: metrics.length };
  for (const c of columns) {
    const ms = meanStd(metrics.map((m) => m[c.key] as number | null | undefined));
    out[`${c.key}_mean`] = ms ? ms.mean : null;
    out[`${c.key}_std`] = ms ? ms.std : null;
  }
  return out;
}

export function toCsv(rows: TableRow[]): string {
  return dfd.toCSV(new dfd.DataFrame(rows.map((r) => ({ ...r })))) as string;
}

export function toJsonRows(rows: TableRow[]): unknown {
  return dfd.toJSON(new dfd.DataFrame(rows.map((r) => ({ ...r }))));
}

/** "mean ± std" cells (just "mean" for a single seed, "–" when absent). */
export function toMarkdown(rows: TableRow[], columns: Column[]): string {
  const head = `| | seeds | ${columns.map((c) => c.label).join(' | ')} |`;
  const sep = `|---|---|${columns.map(() => '---').join('|')}|`;
  const body = rows.map((r) => {
    const cells = columns.map((c) => {
      const m = r[`${c.key}_mean`];
      const s = r[`${c.key}_std`];
      if (typeof m !== 'number') return '–';
      return r.seeds > 1 && typeof s === 'number' ? `${m.toFixed(c.digits)} ± ${s.toFixed(c.digits)}` : m.toFixed(c.digits);
    });
    return `| ${r.row} | ${r.seeds} | ${cells.join(' | ')} |`;
  });
  return [head, sep, ...body].join('\n') + '\n';
}
