import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  binOf,
  chiSquareTest,
  compareCategorical,
  compareNumeric,
  kolmogorovSurvival,
  ksTest,
  OTHER,
  profileCategorical,
  profileNumeric,
  psi,
  SAMPLE_SIZE,
} from './drift.ts';

// SciPy's own answers for the same samples: test/fixtures/monitor/make_drift_reference.py.
const reference = JSON.parse(readFileSync(new URL('../../test/fixtures/monitor/drift-reference.json', import.meta.url), 'utf8')) as {
  ks: { name: string; a: number[]; b: number[]; statistic: number; pValue: number }[];
  chiSquare: { name: string; reference: Record<string, number>; observed: Record<string, number>; statistic: number; dof: number; pValue: number }[];
};

const sorted = (x: number[]) => Float64Array.from(x).sort();
const loose = { pValue: 0.01, psi: 0.1, missingRate: 0.05 };

describe('drift statistics', () => {
  for (const c of reference.ks) {
    it(`KS statistic and p-value match scipy.stats.ks_2samp: ${c.name}`, () => {
      const r = ksTest(sorted(c.a), sorted(c.b));
      assert.ok(Math.abs(r.statistic - c.statistic) < 1e-12, `D ${r.statistic} vs ${c.statistic}`);
      // SciPy's asymptotic p uses the one-sample exact law at n = round(nₑ); ours Stephens's correction: close, not equal.
      assert.ok(Math.abs(r.pValue - c.pValue) <= 0.03 + 0.1 * c.pValue, `p ${r.pValue} vs ${c.pValue}`);
    });
  }

  for (const c of reference.chiSquare) {
    it(`χ² test of homogeneity matches scipy.stats.chi2_contingency: ${c.name}`, () => {
      const r = chiSquareTest(c.reference, c.observed);
      assert.ok(Math.abs(r.statistic - c.statistic) < 1e-9, `χ² ${r.statistic} vs ${c.statistic}`);
      assert.equal(r.dof, c.dof);
      assert.ok(Math.abs(r.pValue - c.pValue) <= 1e-9 + 1e-6 * c.pValue, `p ${r.pValue} vs ${c.pValue}`);
    });
  }

  it('Kolmogorov survival function at known points', () => {
    // Published values of 1 − K(λ): 0.05 at 1.3581, 0.01 at 1.6276, 0.2 at 1.0727.
    assert.ok(Math.abs(kolmogorovSurvival(1.3581) - 0.05) < 1e-4);
    assert.ok(Math.abs(kolmogorovSurvival(1.6276) - 0.01) < 1e-4);
    assert.ok(Math.abs(kolmogorovSurvival(1.0727) - 0.2) < 1e-4);
    assert.equal(kolmogorovSurvival(0), 1);
    // Both series agree where they meet.
    assert.ok(Math.abs(kolmogorovSurvival(1.1799999) - kolmogorovSurvival(1.18)) < 1e-7);
  });

  it('PSI by hand: identical → 0, known shift → Σ (a−e)·ln(a/e)', () => {
    assert.equal(psi([10, 20, 30], [20, 40, 60]), 0);
    const expected = (0.5 - 0.25) * Math.log(0.5 / 0.25) + (0.25 - 0.5) * Math.log(0.25 / 0.5) + 0;
    assert.ok(Math.abs(psi([25, 50, 25], [50, 25, 25]) - expected) < 1e-12);
    // An empty bin is clipped, not infinite.
    assert.ok(Number.isFinite(psi([50, 50], [100, 0])));
  });

  it('numeric profile: moments, deciles as PSI cut points, missing values, subsampled KS reference', () => {
    const values = [...Array.from({ length: 1000 }, (_, i) => i / 10), NaN, NaN];
    const p = profileNumeric('x', values);
    assert.equal(p.count, 1000);
    assert.equal(p.missing, 2);
    assert.ok(Math.abs(p.missingRate - 2 / 1002) < 1e-15);
    assert.ok(Math.abs(p.mean - 49.95) < 1e-9);
    assert.ok(Math.abs(p.std - 28.881943609574) < 1e-6); // numpy: np.arange(1000)/10 .std(ddof=1)
    assert.equal(p.bins.length, 9);
    assert.deepEqual(p.binCounts, new Array(10).fill(100));
    assert.equal(p.histogram.counts.reduce((a, b) => a + b), 1000);
    assert.equal(binOf(p.bins, p.bins[0]), 0); // a value on a cut point falls below it
    const big = profileNumeric('y', Array.from({ length: 10_000 }, (_, i) => i));
    assert.equal(big.sample.length, SAMPLE_SIZE);
    assert.equal(big.count, 10_000);
  });

  it('ties: a constant-heavy feature gets merged cut points and no empty top bin', () => {
    const p = profileNumeric('pixel', [...new Array(900).fill(0), ...Array.from({ length: 100 }, (_, i) => i + 1)]);
    assert.ok(p.bins.every((c, i) => i === 0 || c > p.bins[i - 1]));
    assert.equal(p.binCounts.reduce((a, b) => a + b), 1000);
    assert.ok(p.binCounts.every((c) => c > 0));
  });

  it('compareNumeric flags a shifted window and passes one from the same law', () => {
    const c = reference.ks[0];
    const ref = profileNumeric('x', c.a);
    const same = compareNumeric(ref, c.b, loose);
    assert.equal(same.status, 'ok');
    assert.ok(same.psi < 0.1);
    const shifted = compareNumeric(
      ref,
      c.b.map((v) => v + 1),
      loose,
    );
    assert.equal(shifted.status, 'drift');
    assert.ok(shifted.ks!.pValue < 1e-10 && shifted.psi > 0.5, JSON.stringify(shifted));
    assert.match(shifted.reasons[0], /KS p-value .* and PSI/);
  });

  it('missing values rising past the threshold flag a feature on their own', () => {
    const ref = profileNumeric('x', reference.ks[0].a);
    const window = reference.ks[0].b.map((v, i) => (i % 5 === 0 ? NaN : v));
    const d = compareNumeric(ref, window, loose);
    assert.equal(d.status, 'drift');
    assert.ok(Math.abs(d.missingRate - 0.2) < 1e-12);
    assert.match(d.reasons.join(), /missing rate 20\.0%/);
  });

  it('categorical profile pools rare categories under OTHER and compares with χ²', () => {
    const values = [...new Array(300).fill('a'), ...new Array(100).fill('b'), ...Array.from({ length: 150 }, (_, i) => `rare-${i}`), null, ''];
    const p = profileCategorical('c', values);
    assert.equal(p.missing, 2);
    assert.equal(p.categories.a, 300);
    assert.equal(Object.keys(p.categories).length, 101);
    assert.equal(p.categories[OTHER], 52);
    const same = compareCategorical(p, values, loose);
    assert.equal(same.status, 'ok');
    assert.ok(same.psi < 1e-12);
    const shifted = compareCategorical(p, [...new Array(100).fill('a'), ...new Array(300).fill('b')], loose);
    assert.equal(shifted.status, 'drift');
    assert.ok(shifted.chiSquare!.pValue < 1e-10);
  });
});
