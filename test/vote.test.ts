/** One notion of a vote and a majority (issue 9, structure): the helpers' edge cases, and every caller agreeing with them. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { majority, majorityThreshold, vote } from '../src/util/vote.js';
import { aggregate, voteCounts } from '../src/models/ensemble.js';
import { applyMethod, expectedPositive, type FittedMethod } from '../src/fairness/postprocess.js';

/** The float32 just below 0.5: a probability a model can actually emit. */
const BELOW_HALF = Math.fround(0.5 - 2 ** -25);

describe('vote and majority', () => {
  it('p = 0.5 exactly is a positive vote; the float32 below it, NaN and -0 are not', () => {
    assert.equal(vote(0.5), 1);
    assert.equal(vote(Math.fround(0.5)), 1);
    assert.ok(BELOW_HALF < 0.5);
    assert.equal(vote(BELOW_HALF), 0);
    assert.equal(vote(Number.NaN), 0);
    assert.equal(vote(-0), 0);
    assert.equal(vote(1), 1);
  });
  it('an even split is a majority (ties positive); one short of it is not', () => {
    assert.equal(majority(2, 4), 1);
    assert.equal(majority(1, 4), 0);
    assert.equal(majority(2, 3), 1);
    assert.equal(majority(1, 3), 0);
    assert.equal(majority(1, 1), 1);
    assert.equal(majority(0, 1), 0);
    assert.equal(majority(1, 2), 1);
  });
  it('majorityThreshold(S) is the fewest votes majority accepts, for every S', () => {
    for (let S = 1; S <= 64; S++) {
      const t = majorityThreshold(S);
      for (let k = 0; k <= S; k++) assert.equal(majority(k, S), k >= t ? 1 : 0, `S=${S} k=${k}`);
    }
  });
});

/** Probabilities drawn with exact 0.5s and the float32 just below it in the mix, so ties are common. */
const probsArb = fc.integer({ min: 1, max: 8 }).chain((S) =>
  fc.integer({ min: 1, max: 20 }).chain((n) =>
    fc.array(fc.array(fc.constantFrom(0, 0.2, BELOW_HALF, 0.5, 0.7, 1), { minLength: n, maxLength: n }), { minLength: S, maxLength: S }),
  ),
);

describe('predict and the fairness post-processors count votes the same way', () => {
  it('voteCounts and the vote label of aggregate follow vote() and majority()', () => {
    fc.assert(
      fc.property(probsArb, (rows) => {
        const probs = rows.map((r) => Float32Array.from(r));
        const S = probs.length;
        const k = voteCounts(probs);
        const { label } = aggregate(probs, 'vote');
        for (let i = 0; i < probs[0]!.length; i++) {
          const expect = probs.reduce((s, p) => s + vote(p[i]!), 0);
          assert.equal(k[i], expect);
          assert.equal(label[i], majority(expect, S));
        }
      }),
    );
  });
  it('an identity post-processor (p[g][b] = b) reproduces the vote labels of predict for every method', () => {
    const identity = [[0, 1], [0, 1]];
    fc.assert(
      fc.property(probsArb, (rows) => {
        const probs = rows.map((r) => Float32Array.from(r));
        const S = probs.length;
        const n = probs[0]!.length;
        const ids = Array.from({ length: n }, (_, i) => `r${i}`);
        const group = Array.from({ length: n }, (_, i) => i % 2);
        const { label } = aggregate(probs, 'vote');
        const votesTable = [0, 1].map(() => Array.from({ length: S + 1 }, (_, k) => majority(k, S)));
        const fits: FittedMethod[] = [
          { method: 'per-model', tables: probs.map(() => identity), lpError: 0 },
          { method: 'ensemble', tables: [identity], lpError: 0 },
          { method: 'votes', tables: [votesTable], lpError: 0 },
        ];
        for (const fit of fits) {
          assert.deepEqual([...applyMethod(fit, probs, group, ids, 1)], [...label], fit.method);
          assert.deepEqual([...expectedPositive(fit, probs, group)], [...label], fit.method);
        }
      }),
    );
  });
});
