/**
 * Fréchet distance between Gaussian fits of two feature sets (Heusel et al. 2017's FID when the
 * features are Inception-v3 pool features; with the dataset encoder's fc3 it is an "encoder FID"):
 *
 *   d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})
 *
 * Everything is float64. Gaussian statistics are accumulated batch by batch (GaussianStats), so the
 * features of 50,000 samples are never held at once.
 *
 * The trace term: S1 S2 is not symmetric, and a general matrix square root of it (scipy's sqrtm,
 * a Schur method) picks up imaginary parts and loses accuracy when the covariances are singular,
 * which they are whenever there are fewer samples than dimensions. Instead, with A = S1^{1/2}
 * (symmetric, from S1's eigen-decomposition), S1 S2 = A (A S2) and A S2 A = (A S2) A have the same
 * eigenvalues (XY and YX always do), and M = A S2 A is symmetric positive semi-definite. So
 * Tr (S1 S2)^{1/2} = sum_i sqrt(lambda_i(M)): two symmetric eigen-decompositions, real throughout,
 * with eigenvalues under the rounding floor (negative ones included) taken as 0.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

export interface Gaussian {
  mean: Float64Array;
  /** Row-major D x D. */
  cov: Float64Array;
  /** Samples it was fitted to. */
  n: number;
}

/**
 * Running mean and covariance of D-dimensional rows. Batches are merged with Chan et al.'s pairwise
 * update (centred scatter of the batch plus a correction for the shift of the mean), which avoids the
 * cancellation of sum(x x^T) - n mu mu^T. Memory: D x D float64 (32 MB at D = 2048).
 */
export class GaussianStats {
  private count = 0;
  private readonly mu: Float64Array;
  /** Upper triangle (and diagonal) of the centred scatter matrix sum (x - mu)(x - mu)^T. */
  private readonly scatter: Float64Array;

  constructor(readonly dim: number) {
    if (!Number.isInteger(dim) || dim < 1) throw new Error(`GaussianStats: dimension ${dim}, expected a positive integer`);
    this.mu = new Float64Array(dim);
    this.scatter = new Float64Array(dim * dim);
  }

  get n(): number {
    return this.count;
  }

  /** Add rows given row-major (length = rows x dim). */
  add(rows: ArrayLike<number>): void {
    const D = this.dim;
    if (rows.length % D !== 0) throw new Error(`GaussianStats.add: ${rows.length} values is not a whole number of rows of ${D}`);
    const nb = rows.length / D;
    if (nb === 0) return;
    for (let i = 0; i < rows.length; i++) {
      if (!Number.isFinite(rows[i])) throw new Error(`GaussianStats.add: row ${Math.floor(i / D)} (of this batch), feature ${i % D} is ${rows[i]}`);
    }
    const mb = new Float64Array(D);
    for (let r = 0; r < nb; r++) for (let j = 0; j < D; j++) mb[j] += rows[r * D + j];
    for (let j = 0; j < D; j++) mb[j] /= nb;
    const c = new Float64Array(D);
    const S = this.scatter;
    for (let r = 0; r < nb; r++) {
      for (let j = 0; j < D; j++) c[j] = rows[r * D + j] - mb[j];
      for (let i = 0; i < D; i++) {
        const ci = c[i];
        if (ci === 0) continue; // ReLU features are often exactly zero
        const base = i * D;
        for (let j = i; j < D; j++) S[base + j] += ci * c[j];
      }
    }
    const n = this.count;
    const total = n + nb;
    const w = (n * nb) / total;
    for (let j = 0; j < D; j++) c[j] = mb[j] - this.mu[j]; // shift between the two means
    for (let i = 0; i < D; i++) {
      const di = c[i] * w;
      const base = i * D;
      for (let j = i; j < D; j++) S[base + j] += di * c[j];
    }
    for (let j = 0; j < D; j++) this.mu[j] += (c[j] * nb) / total;
    this.count = total;
  }

  mean(): Float64Array {
    if (this.count === 0) throw new Error('GaussianStats: no rows added');
    return Float64Array.from(this.mu);
  }

  /** Unbiased covariance (divides by n - 1, as np.cov). */
  cov(): Float64Array {
    if (this.count < 2) throw new Error(`GaussianStats: covariance needs at least 2 rows, have ${this.count}`);
    const D = this.dim;
    const out = new Float64Array(D * D);
    for (let i = 0; i < D; i++) {
      for (let j = i; j < D; j++) {
        const v = this.scatter[i * D + j] / (this.count - 1);
        out[i * D + j] = v;
        out[j * D + i] = v;
      }
    }
    return out;
  }

  gaussian(): Gaussian {
    return { mean: this.mean(), cov: this.cov(), n: this.count };
  }
}

/** Fit a Gaussian to rows held in memory. */
export function fitGaussian(rows: ArrayLike<number>, dim: number): Gaussian {
  const s = new GaussianStats(dim);
  s.add(rows);
  return s.gaussian();
}

function toMatrix(a: Float64Array, dim: number): Matrix {
  const m = new Matrix(dim, dim);
  for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) m.set(i, j, a[i * dim + j]);
  return m;
}

/** (M + M^T) / 2: removes the rounding asymmetry before a symmetric eigen-decomposition. */
function symmetrize(m: Matrix): Matrix {
  return Matrix.add(m, m.transpose()).mul(0.5);
}

/**
 * Eigen-decomposition of a symmetric PSD matrix. Eigenvalues below the rounding floor
 * (D * machine eps * largest) are set to 0: they are zeros of a singular covariance (fewer samples
 * than dimensions, dead ReLU features) blurred by rounding, and the square root would blow that
 * ~1e-14 blur up to ~1e-7 each (sqrt is steep at 0).
 */
function psdEigen(m: Matrix): { values: number[]; vectors: Matrix } {
  const e = new EigenvalueDecomposition(symmetrize(m), { assumeSymmetric: true });
  const largest = Math.max(0, ...e.realEigenvalues.map(Math.abs));
  const floor = m.rows * Number.EPSILON * largest;
  return { values: e.realEigenvalues.map((v) => (v > floor ? v : 0)), vectors: e.eigenvectorMatrix };
}

/** Symmetric square root of a symmetric PSD matrix: V diag(sqrt(lambda)) V^T. */
export function sqrtPsd(m: Matrix): Matrix {
  const { values, vectors } = psdEigen(m);
  const scaled = vectors.clone();
  for (let j = 0; j < values.length; j++) {
    const s = Math.sqrt(values[j]);
    for (let i = 0; i < scaled.rows; i++) scaled.set(i, j, scaled.get(i, j) * s);
  }
  return scaled.mmul(vectors.transpose());
}

/** Tr (S1 S2)^{1/2} via the symmetric M = S1^{1/2} S2 S1^{1/2} (see the module comment). */
export function traceSqrtProduct(s1: Float64Array, s2: Float64Array, dim: number): number {
  const a = sqrtPsd(toMatrix(s1, dim));
  const m = a.mmul(toMatrix(s2, dim)).mmul(a);
  return psdEigen(m).values.reduce((s, v) => s + Math.sqrt(v), 0);
}

export function frechetDistance(g1: Pick<Gaussian, 'mean' | 'cov'>, g2: Pick<Gaussian, 'mean' | 'cov'>): number {
  const D = g1.mean.length;
  if (g2.mean.length !== D || g1.cov.length !== D * D || g2.cov.length !== D * D) {
    throw new Error(`frechetDistance: dimensions differ (means ${g1.mean.length} and ${g2.mean.length}, covariances ${g1.cov.length} and ${g2.cov.length} entries)`);
  }
  let meanTerm = 0;
  let traces = 0;
  for (let i = 0; i < D; i++) {
    const d = g1.mean[i] - g2.mean[i];
    meanTerm += d * d;
    traces += g1.cov[i * D + i] + g2.cov[i * D + i];
  }
  // Not clamped at 0: two equal Gaussians give about +-1e-12, and a clearly negative value would
  // be a bug to see, not to hide.
  return meanTerm + traces - 2 * traceSqrtProduct(g1.cov, g2.cov, D);
}
