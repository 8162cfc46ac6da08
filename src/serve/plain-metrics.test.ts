import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client';
import { PlainCounter, PlainHistogram } from './plain-metrics.ts';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const VALUES = [0.0005, 0.001, 0.002, 0.05, 0.5, 3, 0.01];

describe('plain metrics', () => {
  it('print exactly what prom-client\'s own Histogram and Counter print for the same observations', async () => {
    const mine = new Registry();
    const theirs = new Registry();
    const h = new PlainHistogram('x_seconds', 'help', ['model', 'version'], BUCKETS, [mine]);
    const ph = new Histogram({ name: 'x_seconds', help: 'help', labelNames: ['model', 'version'], buckets: BUCKETS, registers: [theirs] });
    const c = new PlainCounter('x_total', 'help', ['model', 'outcome'], [mine]);
    const pc = new Counter({ name: 'x_total', help: 'help', labelNames: ['model', 'outcome'], registers: [theirs] });
    for (const v of VALUES) {
      h.labels('mlp', '1').observe(v);
      ph.labels('mlp', '1').observe(v);
    }
    h.labels('digits', '2').observe(0.2);
    ph.labels('digits', '2').observe(0.2);
    c.labels('mlp', 'success').n += 3;
    pc.labels('mlp', 'success').inc(3);
    assert.equal(await mine.metrics(), await theirs.metrics());
  });

  it('merge across processes as prom-client\'s do (node:cluster aggregation)', async () => {
    const worker = () => {
      const r = new Registry();
      const h = new PlainHistogram('x_seconds', 'help', ['model'], BUCKETS, [r]);
      for (const v of VALUES) h.labels('mlp').observe(v);
      return r;
    };
    const merged = AggregatorRegistry.aggregate([await worker().getMetricsAsJSON(), await worker().getMetricsAsJSON()] as never);
    const text = await merged.metrics();
    assert.match(text, /x_seconds_count\{model="mlp"\} 14/);
    assert.match(text, /x_seconds_bucket\{le="0.01",model="mlp"\} 8/);
  });
});
