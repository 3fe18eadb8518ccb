/**
 * The Inception score of Salimans et al. (2016), as a formula over class probabilities p(y|x):
 *
 *   split the N rows into `splits` consecutive parts (part i = rows floor(i*N/s) .. floor((i+1)*N/s));
 *   per part, score = exp( mean_x KL(p(y|x) || p(y)) ) with p(y) the part's mean row;
 *   report the mean and the population std (numpy's default, ddof=0) of the part scores.
 *
 * This is the reference code (improved-gan, inception_score.py):
 *   kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
 *   kl = np.mean(np.sum(kl, 1)); scores.append(np.exp(kl))  ...  np.mean(scores), np.std(scores)
 *
 * One deliberate difference: an entry p(y|x) = 0 contributes 0 (the limit of p log p), where the
 * reference computes 0 * (-inf) = NaN and returns NaN for the whole part. Wherever the reference
 * is finite (every entry > 0) the two agree.
 *
 * Only a number computed from Inception-v3's probabilities may be called an "Inception score"; the
 * same formula over the dataset encoder's probabilities is a "classifier score" (lib/metrics/classifier.ts).
 *
 * Streaming: mean_x KL(p(y|x) || p(y)) = mean_x sum_y p log p  -  sum_y p(y) log p(y), so a part
 * needs only its row count, the running sum of p log p and its column sums. ScoreAccumulator keeps
 * those per part (splits x K numbers), so an evaluation of 50,000 samples holds neither images nor
 * the 50,000 x K probabilities.
 */

/** Row-major [N, K] probabilities. */
export type ProbabilityRows = Float32Array | Float64Array;

export interface ScoreSummary {
  mean: number;
  std: number;
  /** Rows scored. */
  n: number;
  splits: number;
  /** One score per part, in order. */
  scores: number[];
}

/** How far a row's sum may be from 1 (float32 softmax outputs are off by ~1e-7 per class). */
export const ROW_SUM_TOLERANCE = 1e-3;
export const DEFAULT_SPLITS = 10;

/** p log p with the limit 0 at p = 0. */
function plogp(p: number): number {
  return p > 0 ? p * Math.log(p) : 0;
}

/** Part boundaries: part i is rows [bounds[i], bounds[i+1]). */
export function splitBounds(n: number, splits: number): number[] {
  if (!Number.isInteger(splits) || splits < 1) throw new Error(`splits is ${splits}, expected a positive integer`);
  if (!Number.isInteger(n) || n < 0) throw new Error(`n is ${n}, expected a non-negative integer`);
  if (splits > n) throw new Error(`splits (${splits}) is larger than the number of rows (${n}): every part needs at least one row`);
  return Array.from({ length: splits + 1 }, (_, i) => Math.floor((i * n) / splits));
}

/**
 * Check rows of probabilities: finite, non-negative, each summing to 1 within ROW_SUM_TOLERANCE.
 * `firstRow` offsets the row numbers in messages (for batches of a longer stream).
 */
export function validateProbabilities(probs: ProbabilityRows, k: number, firstRow = 0): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`probabilities: ${k} classes, expected a positive integer`);
  if (probs.length % k !== 0) throw new Error(`probabilities: ${probs.length} values is not a whole number of rows of ${k} classes`);
  const rows = probs.length / k;
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const v = probs[r * k + c];
      if (!Number.isFinite(v)) throw new Error(`probabilities: row ${firstRow + r}, class ${c} is ${v}; every entry must be finite`);
      if (v < 0) throw new Error(`probabilities: row ${firstRow + r}, class ${c} is ${v}; probabilities cannot be negative`);
      sum += v;
    }
    if (Math.abs(sum - 1) > ROW_SUM_TOLERANCE) {
      throw new Error(`probabilities: row ${firstRow + r} sums to ${sum}, expected 1 within ${ROW_SUM_TOLERANCE} (are these logits? apply softmax first)`);
    }
  }
}

/** Shape check for a whole array given as [N, K]. */
export function checkShape(shape: readonly number[], length: number): [number, number] {
  if (shape.length !== 2) throw new Error(`probabilities: shape (${shape.join(', ')}) is ${shape.length}-D, expected 2-D [N, K]`);
  const [n, k] = shape;
  if (n * k !== length) throw new Error(`probabilities: shape (${n}, ${k}) needs ${n * k} values, found ${length}`);
  if (n < 1 || k < 1) throw new Error(`probabilities: shape (${n}, ${k}) is empty`);
  return [n, k];
}

/** Mean and population std (ddof 0), as np.mean / np.std. */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  const variance = xs.reduce((s, v) => s + (v - mean) * (v - mean), 0) / xs.length;
  return { mean, std: Math.sqrt(variance) };
}

/**
 * exp(mean_x KL(p(y|x) || p(y))) of rows [start, end), computed as the reference writes it:
 * first the part's marginal, then the per-row KL against it (float64 throughout).
 */
export function partScore(probs: ProbabilityRows, k: number, start: number, end: number): number {
  const rows = end - start;
  const marginal = new Float64Array(k);
  for (let r = start; r < end; r++) for (let c = 0; c < k; c++) marginal[c] += probs[r * k + c];
  for (let c = 0; c < k; c++) marginal[c] /= rows;
  const logMarginal = Float64Array.from(marginal, (m) => (m > 0 ? Math.log(m) : 0));
  let klSum = 0;
  for (let r = start; r < end; r++) {
    for (let c = 0; c < k; c++) {
      const p = probs[r * k + c];
      // p > 0 implies marginal[c] > 0, so the log is finite.
      if (p > 0) klSum += p * (Math.log(p) - logMarginal[c]);
    }
  }
  return Math.exp(klSum / rows);
}

/** The score of an [N, K] array held in memory (validated first). */
export function inceptionScore(probs: ProbabilityRows, shape: readonly number[], splits = DEFAULT_SPLITS): ScoreSummary {
  const [n, k] = checkShape(shape, probs.length);
  const bounds = splitBounds(n, splits);
  validateProbabilities(probs, k);
  const scores = Array.from({ length: splits }, (_, i) => partScore(probs, k, bounds[i], bounds[i + 1]));
  return { ...meanStd(scores), n, splits, scores };
}

/**
 * The same score from rows that arrive in batches, in order, when the total N is known up front
 * (it fixes the part boundaries). Memory: splits x K float64 values.
 */
export class ScoreAccumulator {
  private readonly bounds: number[];
  /** Per part: sum over its rows of sum_y p log p. */
  private readonly plogpSums: Float64Array;
  /** Per part: column sums, [splits, K]. */
  private readonly colSums: Float64Array;
  private seen = 0;

  constructor(readonly n: number, readonly k: number, readonly splits = DEFAULT_SPLITS) {
    this.bounds = splitBounds(n, splits);
    this.plogpSums = new Float64Array(splits);
    this.colSums = new Float64Array(splits * k);
  }

  get rowsSeen(): number {
    return this.seen;
  }

  /** Add the next rows (row-major, K per row); throws on invalid rows or past N. */
  add(batch: ProbabilityRows): void {
    validateProbabilities(batch, this.k, this.seen);
    const rows = batch.length / this.k;
    if (this.seen + rows > this.n) throw new Error(`ScoreAccumulator: ${this.seen + rows} rows added, more than the ${this.n} announced`);
    let part = this.partOf(this.seen);
    for (let r = 0; r < rows; r++) {
      const row = this.seen + r;
      while (row >= this.bounds[part + 1]) part++;
      let s = 0;
      for (let c = 0; c < this.k; c++) {
        const p = batch[r * this.k + c];
        s += plogp(p);
        this.colSums[part * this.k + c] += p;
      }
      this.plogpSums[part] += s;
    }
    this.seen += rows;
  }

  private partOf(row: number): number {
    let part = 0;
    while (part < this.splits - 1 && row >= this.bounds[part + 1]) part++;
    return part;
  }

  /** The score once all N rows have been added. */
  result(): ScoreSummary {
    if (this.seen !== this.n) throw new Error(`ScoreAccumulator: ${this.seen} of ${this.n} rows added; the score needs all of them`);
    const scores: number[] = [];
    for (let i = 0; i < this.splits; i++) {
      const rows = this.bounds[i + 1] - this.bounds[i];
      let marginalTerm = 0;
      for (let c = 0; c < this.k; c++) marginalTerm += plogp(this.colSums[i * this.k + c] / rows);
      scores.push(Math.exp(this.plogpSums[i] / rows - marginalTerm));
    }
    return { ...meanStd(scores), n: this.n, splits: this.splits, scores };
  }
}
