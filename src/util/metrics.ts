/** Classification metrics for binary labels and scores. Pure functions. */

/**
 * ROC AUC by the rank-sum (Mann–Whitney U) formula, with tied scores given their average rank; equals
 * the area under the ROC curve with ties handled as scikit-learn's roc_auc_score does. NaN if one class
 * is absent.
 */
export function rocAuc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let pos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (labels[order[k]!] === 1) {
        pos += 1;
        rankSumPos += avgRank;
      }
    }
    i = j + 1;
  }
  const neg = n - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSumPos - (pos * (pos + 1)) / 2) / (pos * neg);
}

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export function confusion(labels: ArrayLike<number>, predicted: ArrayLike<number>, mask?: ArrayLike<number>): Confusion {
  const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
  for (let i = 0; i < labels.length; i++) {
    if (mask && !mask[i]) continue;
    const y = labels[i] === 1;
    const p = predicted[i] === 1;
    if (y && p) c.tp++;
    else if (!y && p) c.fp++;
    else if (!y && !p) c.tn++;
    else c.fn++;
  }
  return c;
}

const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);

export interface BinaryMetrics {
  count: number;
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
}

export function binaryMetrics(c: Confusion): BinaryMetrics {
  const count = c.tp + c.fp + c.tn + c.fn;
  const precision = ratio(c.tp, c.tp + c.fp);
  const recall = ratio(c.tp, c.tp + c.fn);
  return { count, accuracy: ratio(c.tp + c.tn, count), precision, recall, f1: ratio(2 * precision * recall, precision + recall) };
}
