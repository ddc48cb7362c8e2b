/**
 * Scoring S linear models at once, for prediction: a pure kernel over CSR rows, shared by the ensemble
 * on this thread and by the prediction workers, so both give the same float32 probabilities bit for bit.
 */

export interface LinearMembers {
  /** Weights interleaved bucket-major, w[bucket·S + model]: one cache line per feature for all S models. */
  weights: Float32Array;
  biases: Float32Array;
}

export interface CsrRows {
  offsets: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

/**
 * out[m][r] = σ(b_m + Σ_j w[idx_j·S + m] · v_j), summed in float64 in the row's feature order. Eight
 * models per pass are kept in locals (registers), not in an array that each feature reads and writes.
 */
export function scoreLinear(members: LinearMembers, rows: CsrRows, n: number, out: readonly Float32Array[]): void {
  const { weights, biases } = members;
  const { offsets, indices, values } = rows;
  const S = biases.length;
  const blocks = S >> 3;
  // Row-major, then blocks of eight models: a row's weights (S floats per feature, adjacent) are still in
  // the cache when the next block reads them; block-major re-fetched every line from memory S/8 times.
  for (let r = 0; r < n; r++) {
    const from = offsets[r]!;
    const end = offsets[r + 1]!;
    for (let blk = 0; blk < blocks; blk++) {
      const m0 = blk << 3;
      let z0: number = biases[m0]!, z1: number = biases[m0 + 1]!, z2: number = biases[m0 + 2]!, z3: number = biases[m0 + 3]!;
      let z4: number = biases[m0 + 4]!, z5: number = biases[m0 + 5]!, z6: number = biases[m0 + 6]!, z7: number = biases[m0 + 7]!;
      for (let j = from; j < end; j++) {
        const base = indices[j]! * S + m0;
        const v = values[j]!;
        z0 += weights[base]! * v;
        z1 += weights[base + 1]! * v;
        z2 += weights[base + 2]! * v;
        z3 += weights[base + 3]! * v;
        z4 += weights[base + 4]! * v;
        z5 += weights[base + 5]! * v;
        z6 += weights[base + 6]! * v;
        z7 += weights[base + 7]! * v;
      }
      out[m0]![r] = 1 / (1 + Math.exp(-z0));
      out[m0 + 1]![r] = 1 / (1 + Math.exp(-z1));
      out[m0 + 2]![r] = 1 / (1 + Math.exp(-z2));
      out[m0 + 3]![r] = 1 / (1 + Math.exp(-z3));
      out[m0 + 4]![r] = 1 / (1 + Math.exp(-z4));
      out[m0 + 5]![r] = 1 / (1 + Math.exp(-z5));
      out[m0 + 6]![r] = 1 / (1 + Math.exp(-z6));
      out[m0 + 7]![r] = 1 / (1 + Math.exp(-z7));
    }
  }
  const m0 = blocks << 3;
  if (m0 === S) return;
  // The models left over (S not a multiple of 8), with accumulators in an array.
  const rest = S - m0;
  const z = new Float64Array(rest);
  for (let r = 0; r < n; r++) {
    for (let m = 0; m < rest; m++) z[m] = biases[m0 + m]!;
    for (let j = offsets[r]!; j < offsets[r + 1]!; j++) {
      const base = indices[j]! * S + m0;
      const v = values[j]!;
      for (let m = 0; m < rest; m++) z[m]! += weights[base + m]! * v;
    }
    for (let m = 0; m < rest; m++) out[m0 + m]![r] = 1 / (1 + Math.exp(-z[m]!));
  }
}
