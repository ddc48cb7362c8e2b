/** The report's pure parts: all-groups fairness metrics on hand-computed cases, the verdict's wording rules, the method colours. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bootstrapIntervals, groupDifference, groupFairness, groupFairnessWithIntervals, groupRatio } from '../src/fairness/metrics.js';
import { reportVerdict, type MethodEntry } from '../src/app/report.js';
import { METHOD_COLOURS, methodColourScale } from '../src/app/charts.js';

const close = (a: number | null, b: number, eps = 1e-12) => assert.ok(a !== null && Math.abs(a - b) <= eps, `${a} ≠ ${b}`);

describe('fairness metrics for G groups (fairlearn MetricFrame conventions)', () => {
  // group 0 (a): y = 1 1 0 0,   ŷ = 1 0 0 1   → TPR 1/2, FPR 1/2, selection 2/4
  // group 1 (b): y = 1 0 0,     ŷ = 1 0 0     → TPR 1,   FPR 0,   selection 1/3
  // group 2 (c): y = 1 1 1 0 0, ŷ = 1 1 0 1 1 → TPR 2/3, FPR 1,   selection 4/5
  const y = [1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0];
  const yhat = [1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1];
  const g = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2];
  // Scores for the per-group ROC AUC. a: pairs (pos, neg) won 3 of 4 → 3/4; b: a tie counts 1/2 → 1.5/2 = 3/4;
  // c: 0.9 and 0.7 beat both negatives, 0.3 beats one → 5/6.
  const score = [0.9, 0.4, 0.5, 0.1, 0.8, 0.8, 0.2, 0.9, 0.7, 0.3, 0.6, 0.2];

  it('per-group rates, differences (max − min) and ratios (min / max) over three groups', () => {
    const m = groupFairness(y, yhat, g, ['a', 'b', 'c'], score);
    assert.deepEqual(m.byGroup.map((r) => [r.group, r.code, r.count]), [['a', 0, 4], ['b', 1, 3], ['c', 2, 5]]);
    close(m.byGroup[2]!.tpr, 2 / 3);
    close(m.byGroup[2]!.fpr, 1);
    close(m.eqOppDifference, 1 - 1 / 2);
    close(m.fprDifference, 1 - 0);
    close(m.eoDifference, 1);
    close(m.dpDifference, 4 / 5 - 1 / 3);
    close(m.eqOppRatio, 1 / 2 / 1);
    close(m.fprRatio, 0);
    close(m.eoRatio, 0);
    close(m.dpRatio, 1 / 3 / (4 / 5));
    close(m.overall.accuracy, 7 / 12);
  });

  it('per-group ROC AUC and its difference', () => {
    const m = groupFairness(y, yhat, g, ['a', 'b', 'c'], score);
    close(m.byGroup[0]!.auc, 3 / 4);
    close(m.byGroup[1]!.auc, 3 / 4);
    close(m.byGroup[2]!.auc, 5 / 6);
    close(m.aucDifference, 5 / 6 - 3 / 4);
    assert.equal(groupFairness(y, yhat, g, ['a', 'b', 'c']).aucDifference, null, 'no scores, no AUC');
  });

  it('a group with no rows is left out, as a MetricFrame has no row for it; a code outside the names is refused', () => {
    const m = groupFairness(y, yhat, g, ['a', 'b', 'c', 'd']);
    assert.deepEqual(m.byGroup.map((r) => r.group), ['a', 'b', 'c']);
    close(m.fprDifference, 1);
    assert.throws(() => groupFairness(y, yhat, g, ['a', 'b']), /group code 2 at row 7 is outside 0\.\.1/);
    close(groupDifference([0.2, 0.7, 0.5]), 0.5);
    close(groupRatio([0.2, 0.8, 0.4]), 0.25);
    close(groupRatio([0, 0]), 1);
  });

  it('bootstrap intervals keep every group’s size in every resample and are seeded', () => {
    const perGroup = (idx: Int32Array) => [0, 1, 2].map((c) => Array.from(idx).filter((i) => g[i] === c).length);
    const a = bootstrapIntervals(y.length, g, perGroup, 200, 3);
    assert.deepEqual(a, [[4, 4], [3, 3], [5, 5]]);
    const w = groupFairnessWithIntervals(y, yhat, g, ['a', 'b', 'c'], { resamples: 200, seed: 3 });
    assert.deepEqual(groupFairnessWithIntervals(y, yhat, g, ['a', 'b', 'c'], { resamples: 200, seed: 3 }), w);
    for (const k of ['accuracyCI', 'eoDifferenceCI', 'dpDifferenceCI', 'eqOppDifferenceCI', 'fprDifferenceCI'] as const) assert.ok(w[k][0] <= w[k][1], k);
    assert.ok(w.fprDifferenceCI[0] < w.fprDifferenceCI[1], 'resamples vary the FPR difference');
  });
});

type Row = Parameters<typeof reportVerdict>[0]['test'][number];
function row(name: MethodEntry['name'], accuracy: number, eo: number, ci: [number, number] = [eo - 0.02, eo + 0.02]): Row {
  const wide: [number, number] = [0, 1];
  return { name, accuracy, eoDifference: eo, eoDifferenceCI: ci, fprDifference: eo / 2, fprDifferenceCI: wide, eqOppDifference: eo, eqOppDifferenceCI: wide, dpDifference: 0.1, dpDifferenceCI: wide };
}

describe('the report verdict', () => {
  const groupNames = ['not religion', 'religion'];
  it('names the method, the gap before and after, and the accuracy cost', () => {
    const v = reportVerdict({ criterion: 'equalized-odds', groupNames, test: [row('sisa', 0.82, 0.16, [0.12, 0.2]), row('per-model', 0.75, 0.09), row('ensemble', 0.7, 0.05), row('votes', 0.76, 0.03)] });
    assert.equal(v.method, 'votes');
    assert.equal(v.lowersGap, true);
    assert.equal(v.withinInterval, false);
    close(v.accuracyCostPoints, 6, 1e-9);
    assert.match(v.text, /^On the test split, votes lowers the equalized-odds gap between ‘religion’ and ‘not religion’ from 0\.160 to 0\.030, at a cost of 6\.0 accuracy points \(0\.820 → 0\.760\)/);
  });
  it('prefers the more accurate method when the lowest gap cannot be told apart from it', () => {
    // ensemble has the lowest gap, but votes' gap is inside ensemble's interval and votes is 6 points more accurate.
    const v = reportVerdict({ criterion: 'equalized-odds', groupNames, test: [row('sisa', 0.82, 0.16, [0.12, 0.2]), row('ensemble', 0.7, 0.016, [0.005, 0.068]), row('votes', 0.76, 0.035)] });
    assert.equal(v.method, 'votes');
    const w = reportVerdict({ criterion: 'equalized-odds', groupNames, test: [row('sisa', 0.82, 0.16, [0.12, 0.2]), row('ensemble', 0.7, 0.016, [0.005, 0.03]), row('votes', 0.76, 0.035)] });
    assert.equal(w.method, 'ensemble');
  });
  it('says when no post-processor helps', () => {
    const v = reportVerdict({ criterion: 'equalized-odds', groupNames, test: [row('sisa', 0.82, 0.12), row('per-model', 0.8, 0.2), row('votes', 0.78, 0.196)] });
    assert.equal(v.lowersGap, false);
    assert.match(v.text, /^No post-processor lowers the equalized-odds gap between ‘religion’ and ‘not religion’ on the test split: the plain ensemble’s is 0\.120, and the lowest, that of votes, is 0\.196\./);
  });
  it('says when the change is inside the bootstrap interval', () => {
    const v = reportVerdict({ criterion: 'equalized-odds', groupNames, test: [row('sisa', 0.82, 0.12, [0.07, 0.18]), row('votes', 0.81, 0.1)] });
    assert.equal(v.withinInterval, true);
    assert.match(v.text, /from 0\.120 to 0\.100, at a cost of 1\.0 accuracy points .*inside the plain ensemble’s 95% bootstrap interval \[0\.070, 0\.180\], so this split is too small to tell the two apart/);
  });
  it('speaks of the fitted criterion, of every group, and of the re-drawn splits when they disagree', () => {
    const v = reportVerdict({
      criterion: 'fpr-parity',
      groupNames: ['none', 'religion', 'race'],
      test: [row('sisa', 0.82, 0.2), row('votes', 0.8, 0.06)],
      resplits: {
        count: 10,
        methods: [
          { name: 'sisa', meanAccuracy: 0.82, meanDifferences: { eoDifference: 0.15, fprDifference: 0.08, eqOppDifference: 0.1, dpDifference: 0.1 } },
          { name: 'votes', meanAccuracy: 0.79, meanDifferences: { eoDifference: 0.1, fprDifference: 0.09, eqOppDifference: 0.1, dpDifference: 0.1 } },
        ],
      },
    });
    assert.match(v.text, /votes lowers the false-positive-rate gap across the 3 groups \(‘none’, ‘religion’, ‘race’\) from 0\.100 to 0\.030/);
    assert.match(v.text, /Averaged over 10 re-drawn calibration\/test splits, votes has a mean false-positive-rate gap of 0\.090 against 0\.080 for the plain ensemble, at a cost of 3\.0 accuracy points, which does not bear out the single test split\./);
  });
});

describe('method colours', () => {
  it('each method keeps its colour whatever else is shown, and unknown methods get distinct spare colours', () => {
    const all = methodColourScale(['votes', 'sisa', 'ensemble', 'per-model', 'monolithic']);
    const some = methodColourScale(['votes', 'sisa']);
    const colour = (s: { domain: string[]; range: string[] }, m: string) => s.range[s.domain.indexOf(m)];
    for (const m of ['votes', 'sisa']) assert.equal(colour(some, m), colour(all, m));
    assert.equal(colour(all, 'votes'), METHOD_COLOURS.votes);
    assert.equal(new Set(all.range).size, all.range.length);
    const extra = methodColourScale(['sisa', 'zeta', 'alpha', 'votes']);
    assert.equal(new Set(extra.range).size, 4);
    assert.ok(!Object.values(METHOD_COLOURS).includes(colour(extra, 'alpha')!));
  });
});
