// A strict reader of the Prometheus text exposition format (version 0.0.4), for checking /metrics: every line must be
// a HELP, a TYPE or a sample of a declared family, label values well escaped, values numbers, and histograms
// cumulative with +Inf equal to _count.
import assert from 'node:assert/strict';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = `([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\\\\n]|\\\\[\\\\"n])*)"`;
const SAMPLE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL}(?:,|(?=\\})))*)\\})? (\\S+)(?: (-?\\d+))?$`);
const TYPES = ['counter', 'gauge', 'histogram', 'summary', 'untyped'];

function parseValue(s: string, line: number): number {
  if (s === '+Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  if (s === 'NaN') return NaN;
  const v = Number(s);
  assert.ok(s.trim() !== '' && !Number.isNaN(v), `line ${line}: '${s}' is not a sample value`);
  return v;
}

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const familyOf = (sample: string) => {
    if (families.has(sample)) return families.get(sample);
    for (const suffix of ['_bucket', '_count', '_sum']) {
      if (sample.endsWith(suffix)) {
        const f = families.get(sample.slice(0, -suffix.length));
        if (f && (f.type === 'histogram' || f.type === 'summary')) return f;
      }
    }
    return undefined;
  };
  text.split('\n').forEach((line, i) => {
    const n = i + 1;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (!m) return; // a plain comment
      let f = families.get(m[2]);
      if (!f) families.set(m[2], (f = { name: m[2], type: 'untyped', help: '', samples: [] }));
      if (m[1] === 'TYPE') {
        assert.ok(TYPES.includes(m[3]), `line ${n}: unknown metric type '${m[3]}'`);
        assert.equal(f.samples.length, 0, `line ${n}: TYPE after samples of ${m[2]}`);
        f.type = m[3];
      } else f.help = m[3];
      return;
    }
    const m = SAMPLE.exec(line);
    assert.ok(m, `line ${n} is not a valid sample: ${line}`);
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(new RegExp(LABEL, 'g'))) labels[l[1]] = l[2].replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    const f = familyOf(m[1]);
    assert.ok(f, `line ${n}: sample ${m[1]} belongs to no declared family`);
    f.samples.push({ name: m[1], labels, value: parseValue(m[5], n) });
  });
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const series = new Map<string, Sample[]>();
    for (const s of f.samples) {
      const { le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      if (!series.has(key)) series.set(key, []);
      series.get(key)!.push(s);
    }
    for (const [key, samples] of series) {
      const buckets = samples.filter((s) => s.name === `${f.name}_bucket`);
      for (let i = 1; i < buckets.length; i++) {
        const le = (b: Sample) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le));
        assert.ok(le(buckets[i]) > le(buckets[i - 1]) && buckets[i].value >= buckets[i - 1].value, `${f.name}${key}: buckets not cumulative`);
      }
      const inf = buckets.find((b) => b.labels.le === '+Inf');
      const count = samples.find((s) => s.name === `${f.name}_count`);
      assert.ok(inf && count && inf.value === count.value, `${f.name}${key}: le="+Inf" must equal _count`);
    }
  }
  return families;
}
