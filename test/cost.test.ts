// dais cost: hand-checked figures to the cent, every price sourced and dated, --check, the CLI's JSON and errors.
// Each expected figure is worked out in the comment above it from the prices in data/prices (us-east-1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, cpSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  azureFunctionsCost, breakEven, cloudRunCost, deviceCost, ec2Cost, estimateAll, fargateCost, lambdaCost,
  lambdaProvisionedCost, tieredCost, type TrafficProfile,
} from '../src/cost/estimate.ts';
import { DEFAULT_PRICES_DIR, loadPriceTables, stalePrices } from '../src/cost/price-table.ts';
import { measuredInputs } from '../src/cost/from-bench.ts';
import { REPO_ROOT } from './support/env.ts';

const tables = loadPriceTables();
const base: TrafficProfile = { requestsPerMonth: 10_000_000, durationMs: 50, memoryMb: 1024, arch: 'x86_64', freeTier: true, vcpu: 1 };

test('x86 Lambda, 10M requests at 50 ms and 1,024 MB, with the free tier: $3.47', () => {
  // requests: (10,000,000 − 1,000,000 free) / 1M × $0.20 = $1.80
  // duration: 10,000,000 × 0.050 s × 1 GB = 500,000 GB-s; − 400,000 free = 100,000 GB-s × $0.0000166667 = $1.66667
  // total $3.46667 → $3.47
  const c = lambdaCost(base, tables);
  assert.equal(c.target, 'aws-lambda-x86_64');
  assert.equal(c.lines.find((l) => l.item === 'requests')!.usd.toFixed(2), '1.80');
  assert.equal(c.lines.find((l) => l.item === 'duration')!.usd.toFixed(5), '1.66667');
  assert.equal(c.monthlyUsd, 3.47);
});

test('x86 Lambda, same traffic without the free tier: $10.33', () => {
  // requests: 10,000,000 / 1M × $0.20 = $2.00; duration: 500,000 GB-s × $0.0000166667 = $8.33335; total $10.33335 → $10.33
  const c = lambdaCost({ ...base, freeTier: false }, tables);
  assert.equal(c.monthlyUsd, 10.33);
  assert.ok(Math.abs(c.monthlyUsdExact - 10.33335) < 1e-9);
});

test('arm64 Lambda without the free tier: $8.67', () => {
  // $2.00 + 500,000 GB-s × $0.0000133334 = $6.6667 → $8.6667 → $8.67
  assert.equal(lambdaCost({ ...base, arch: 'arm64', freeTier: false }, tables).monthlyUsd, 8.67);
});

test('Lambda duration tiers: 7 billion GB-s crosses from the first x86 tier into the second', () => {
  // 140,000,000,000 requests × 0.050 s × 1 GB = 7,000,000,000 GB-s
  // 6e9 × $0.0000166667 = $100,000.20; 1e9 × $0.000015 = $15,000; requests 140,000 × $0.20 = $28,000 → $143,000.20
  const c = lambdaCost({ ...base, requestsPerMonth: 140_000_000_000, freeTier: false }, tables);
  assert.equal(c.monthlyUsd, 143_000.2);
  // Tier arithmetic on its own: 20e9 into the x86 tiers = 6e9 × 0.0000166667 + 9e9 × 0.000015 + 5e9 × 0.000013334
  //   = 100,000.2 + 135,000 + 66,670 = $301,670.20
  assert.equal(tieredCost(20e9, tables.get('aws-lambda')!.prices['duration-x86_64'].tiers!).usd.toFixed(2), '301670.20');
});

test('Lambda bills duration rounded up to the millisecond and INIT for cold starts', () => {
  // 49.2 ms bills as 50 ms: the same $10.33 as above without free tier.
  assert.equal(lambdaCost({ ...base, durationMs: 49.2, freeTier: false }, tables).monthlyUsd, 10.33);
  // 10,000 cold starts × 812.3 ms → 813 ms × 1 GB = 8,130 GB-s more: × $0.0000166667 = $0.135500…
  // $10.33335 + $0.1355003 = $10.4688503 → $10.47
  const c = lambdaCost({ ...base, freeTier: false, coldStartsPerMonth: 10_000, initMs: 812.3 }, tables);
  assert.equal(c.monthlyUsd, 10.47);
  assert.match(c.lines.find((l) => l.item === 'duration')!.formula, /10,000 cold × 813 ms/);
});

test('Lambda behind API Gateway HTTP API adds $1.00 per million: $13.47', () => {
  // $3.47 (exact $3.46667) + 10 × $1.00 = $13.46667 → $13.47
  const c = lambdaCost(base, tables, { httpApi: true });
  assert.equal(c.target, 'aws-lambda-x86_64+http-api');
  assert.equal(c.monthlyUsd, 13.47);
});

test('data transfer out: 100 GB free, then $0.09 per GB', () => {
  // 10,000,000 × 10,000 B = 1e11 B / 2^30 = 93.1323 GB: under the 100 GB free → $0 with the free tier
  assert.equal(lambdaCost({ ...base, responseBytes: 10_000 }, tables).monthlyUsd, 3.47);
  // without it: 93.1323 GB × $0.09 = $8.3819 → $10.33335 + $8.381903 = $18.715253 → $18.72
  assert.equal(lambdaCost({ ...base, responseBytes: 10_000, freeTier: false }, tables).monthlyUsd, 18.72);
});

test('provisioned concurrency (x86): one instance for 3.8 req/s at 50 ms: $17.81', () => {
  // concurrency ceil(10M / 2,628,000 s × 0.05 s) = ceil(0.19) = 1
  // 1 × 1 GB × 730 h × 3,600 s × $0.0000041667 = $10.9500876; 500,000 GB-s × $0.0000097222 = $4.8611; requests $2.00
  // $17.8111876 → $17.81
  assert.equal(lambdaProvisionedCost(base, tables)!.monthlyUsd, 17.81);
  assert.equal(lambdaProvisionedCost({ ...base, arch: 'arm64' }, tables), undefined);
});

test('Cloud Run and Azure Functions, same traffic', () => {
  // Cloud Run: vCPU (500,000 − 180,000) × $0.000024 = $7.68; GiB (500,000 − 360,000) × $0.0000025 = $0.35;
  //   requests (10M − 2M) / 1M × $0.40 = $3.20 → $11.23
  assert.equal(cloudRunCost(base, tables).monthlyUsd, 11.23);
  // Azure: (500,000 − 400,000) GB-s × $0.000016 = $1.60; (10M − 1M) / 1M × $0.20 = $1.80 → $3.40
  assert.equal(azureFunctionsCost(base, tables).monthlyUsd, 3.4);
  // 1,000 MB bills as 1,024 MB (128 MB steps): same $3.40
  assert.equal(azureFunctionsCost({ ...base, memoryMb: 1000 }, tables).inputs.billedMemoryMb, 1024);
});

test('always-on: Fargate and EC2 sized from the measured throughput', () => {
  // Fargate x86 1 vCPU + 2 GB: 730 h × ($0.04048 + 2 × $0.004445) = 730 × $0.04937 = $36.0401 → $36.04
  assert.equal(fargateCost(base, tables).monthlyUsd, 36.04);
  // arm: 730 × ($0.03238 + 2 × $0.00356) = 730 × $0.0395 = $28.835 → $28.84 (half-cent rounds up)
  assert.equal(fargateCost({ ...base, arch: 'arm64' }, tables).monthlyUsd, 28.84);
  // peak 250 req/s, 100 req/s measured per instance, 2.5 GB RSS → 3 tasks of 1 vCPU + 3 GB:
  //   3 × 730 × ($0.04048 + 3 × $0.004445) = 3 × 730 × $0.053815 = $117.85485 → $117.85
  const f = fargateCost({ ...base, peakRps: 250, instanceRps: 100, instanceMemoryMb: 2560 }, tables);
  assert.equal(f.inputs.tasks, 3);
  assert.equal(f.monthlyUsd, 117.85);
  // EC2 m7g.large: 730 × $0.0816 = $59.568 → $59.57; g5.xlarge: 730 × $1.006 = $734.38
  assert.equal(ec2Cost(base, tables, 'm7g.large').monthlyUsd, 59.57);
  assert.equal(ec2Cost(base, tables, 'g5.xlarge').monthlyUsd, 734.38);
});

test('edge devices: amortised price, power only with a user-given electricity price', () => {
  // Pi 5 8 GB: $95 / 60 months = $1.583333 → $1.58; power left out (no sourced $/kWh)
  const pi = deviceCost(base, tables, 'raspberry-pi-5-8gb');
  assert.equal(pi.monthlyUsd, 1.58);
  assert.ok(pi.notes.some((n) => n.includes('--power-usd-per-kwh')));
  // with $0.20/kWh: 27 W × 730 h / 1000 = 19.71 kWh × $0.20 = $3.942 → $1.583333 + $3.942 = $5.525333 → $5.53
  assert.equal(deviceCost({ ...base, powerUsdPerKwh: 0.2 }, tables, 'raspberry-pi-5-8gb').monthlyUsd, 5.53);
  // Jetson: $249 / 60 = $4.15
  assert.equal(deviceCost(base, tables, 'jetson-orin-nano-super').monthlyUsd, 4.15);
});

test('break-even: x86 Lambda (free tier) against one always-on Fargate task', () => {
  // Above 8M requests both free allowances are used up, so Lambda(R) = (R − 1M) × 0.2e-6 + (R × 0.05 − 400,000) × 0.0000166667
  //   = 1.033335e-6 × R − 6.86668. Equal to $36.0401 at R = 42.90678 / 1.033335e-6 = 41,522,623.6 → first whole request 41,522,624.
  const be = breakEven(base, tables, (q, t) => lambdaCost(q, t), fargateCost);
  assert.equal(be.requestsPerMonth, 41_522_624);
  assert.equal(be.monthlyUsd, 36.04);
});

test('estimateAll prices every target and each result carries inputs, formula and sourced prices', () => {
  const all = estimateAll(base, tables);
  assert.deepEqual(all.map((t) => t.target), [
    'aws-lambda-x86_64', 'aws-lambda-x86_64+http-api', 'aws-lambda-x86_64-provisioned', 'gcp-cloud-run', 'azure-functions',
    'aws-fargate-x86_64', 'aws-ec2-m7g.large', 'aws-ec2-g5.xlarge', 'raspberry-pi-5-8gb', 'jetson-orin-nano-super',
  ]);
  for (const t of all) {
    assert.ok(t.formula.length > 10 && t.lines.length > 0, t.target);
    assert.equal(t.monthlyUsd, Math.round(t.lines.reduce((s, l) => s + l.usd, 0) * 100) / 100, t.target);
    for (const p of t.prices) assert.ok(p.source && /^\d{4}/.test(p.asOf), `${t.target} ${p.key}`);
  }
});

test('every price in data/prices has a source and a date; --check flags those over a year old', () => {
  let n = 0;
  for (const t of tables.values()) {
    for (const [k, p] of Object.entries(t.prices)) {
      n++;
      assert.ok(p.source.length > 8, `${t.service}.${k} source`);
      assert.match(p.asOf, /^\d{4}(-\d{2}(-\d{2})?)?$/, `${t.service}.${k} asOf`);
    }
  }
  assert.ok(n >= 35);
  const stale = stalePrices(tables, new Date('2026-11-24T00:00:00Z'));
  const keys = stale.map((s) => `${s.service}.${s.key}`);
  // modal.com's guide is dated 2025-05-22; the Jetson datasheet Dec 2024; the Pi price "2025" counts from 2025-01-01.
  assert.ok(keys.includes('azure-functions.gb-second'));
  assert.ok(keys.includes('edge-devices.jetson-orin-nano-super'));
  assert.ok(keys.includes('edge-devices.raspberry-pi-5-8gb'));
  assert.ok(!keys.includes('aws-lambda.requests'));
  assert.ok(!keys.includes('aws-ec2.m7g.large')); // 2026-06-17
});

test('a table without a source is refused, naming file and field', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dais-prices-'));
  writeFileSync(join(dir, 'x.json'), JSON.stringify({ service: 'x', title: 'x', region: 'r', currency: 'USD', prices: { a: { value: 1, unit: 'u', asOf: '2026-01-01', asOfKind: 'published' } } }));
  assert.throws(() => loadPriceTables(dir), /x\.json: prices\.a: 'source'/);
});

test('measured inputs are read from a bench result', () => {
  const m = measuredInputs({
    schema: 'dais-bench/1',
    server: { peakRssMb: 181.4, responseBytes: { json: 412 }, sweeps: [{ path: 'json', batching: false, points: [{ concurrency: 1, p50Ms: 0.9, rps: 900, errors: 0, non2xx: 0 }, { concurrency: 16, p50Ms: 4, rps: 3100, errors: 0, non2xx: 0 }, { concurrency: 64, p50Ms: 30, rps: 3300, errors: 2, non2xx: 0 }] }] },
  }, 'r.json');
  assert.equal(m.durationMs, 0.9);
  assert.equal(m.memoryMb, 256);
  assert.equal(m.instanceRps, 3100);
  assert.equal(m.responseBytes, 412);
  assert.throws(() => measuredInputs({ foo: 1 }, 'r.json'), /not a dais bench result/);
});

function dais(args: string[]) {
  return spawnSync(process.execPath, [join(REPO_ROOT, 'bin/dais.js'), ...args], { encoding: 'utf8' });
}

test('CLI: --json prints one object per target with target, monthlyUsd, inputs and formula', () => {
  const r = dais(['cost', '--requests-per-month', '10000000', '--duration-ms', '50', '--memory-mb', '1024', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  const lambda = out.targets.find((t: { target: string }) => t.target === 'aws-lambda-x86_64');
  assert.equal(lambda.monthlyUsd, 3.47);
  assert.equal(lambda.inputs.memoryMb, 1024);
  assert.ok(lambda.formula.includes('tiered'));
  assert.ok(out.breakEven.length >= 4);
  const noFree = JSON.parse(dais(['cost', '--requests-per-month', '10000000', '--duration-ms', '50', '--memory-mb', '1024', '--no-free-tier', '--json']).stdout);
  assert.equal(noFree.targets[0].monthlyUsd, 10.33);
});

test('CLI: text output shows the formula with its numbers and the sources', () => {
  const r = dais(['cost', '--requests-per-month', '10000000', '--duration-ms', '50', '--memory-mb', '1024']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /aws-lambda-x86_64: AWS Lambda \(x86_64\) = \$3\.47/);
  assert.match(r.stdout, /100,000 × \$0\.0000166667/);
  assert.match(r.stdout, /https:\/\/aws\.amazon\.com\/lambda\/pricing\//);
});

test('CLI: a bench result supplies the measured inputs; flags win', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dais-cost-'));
  const f = join(dir, 'results.json');
  writeFileSync(f, JSON.stringify({ schema: 'dais-bench/1', server: { peakRssMb: 300, sweeps: [{ path: 'json', points: [{ concurrency: 1, p50Ms: 50, rps: 20, errors: 0, non2xx: 0 }] }] } }));
  const out = JSON.parse(dais(['cost', '--bench', f, '--requests-per-month', '10000000', '--memory-mb', '1024', '--json']).stdout);
  assert.equal(out.targets[0].monthlyUsd, 3.47);
  assert.match(out.profile.provenance.durationMs, /concurrency 1/);
  assert.equal(out.profile.provenance.memoryMb, '--memory-mb');
});

test('CLI: errors are one line naming the flag', () => {
  let r = dais(['cost', '--duration-ms', '50', '--memory-mb', '1024']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^dais cost: --requests-per-month is required/);
  r = dais(['cost', '--requests-per-month', '1e6', '--duration-ms', '50', '--memory-mb', '1024', '--arch', 'sparc']);
  assert.match(r.stderr, /--arch must be x86_64 or arm64/);
  r = dais(['cost', '--requests-per-month', 'lots']);
  assert.match(r.stderr, /--requests-per-month must be a number/);
  r = dais(['cost', '--requests-per-month', '1e6', '--memory-mb', '1024']);
  assert.match(r.stderr, /no request duration: give --bench/);
  r = dais(['cost', '--requests-per-month', '1e6', '--duration-ms', '5', '--memory-mb', '1024', '--region', 'eu-west-1']);
  assert.match(r.stderr, /us-east-1 only/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('CLI: --check exits 1 listing old prices, 0 on fresh tables', () => {
  let r = dais(['cost', '--check', '--today', '2026-11-24']);
  assert.equal(r.status, 1);
  assert.match(r.stdout, /azure-functions\.gb-second\s+as of 2025-05-22/);
  const dir = mkdtempSync(join(tmpdir(), 'dais-prices-'));
  cpSync(join(DEFAULT_PRICES_DIR, 'aws-lambda.json'), join(dir, 'aws-lambda.json'));
  r = dais(['cost', '--check', '--today', '2026-11-24', '--prices', dir]);
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /all \d+ prices are dated within a year/);
  assert.ok(readFileSync(join(dir, 'aws-lambda.json'), 'utf8').includes('aws.amazon.com/lambda/pricing'));
});

test('CLI: --readme writes "Choosing a target" from bench results, with the reproducing commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dais-readme-'));
  const f = join(dir, 'results.json');
  const pt = (concurrency: number, rps: number, p50Ms: number) => ({ concurrency, rps, p50Ms, p99Ms: p50Ms * 3, errors: 0, non2xx: 0, timeouts: 0 });
  writeFileSync(f, JSON.stringify({
    schema: 'dais-bench/1', createdAt: '2026-11-24T12:00:00Z',
    machine: { cpus: 2, cpuModel: 'Test CPU', memoryGb: 8, node: 'v20.20.2', loadAvg: { start: 0.5, end: 0.6 } },
    model: { name: 'mlp', sizeBytes: 407_653 }, settings: { durationS: 3, concurrency: [1, 64], cold: 10, warm: 50 },
    server: { peakRssMb: 180, responseBytes: { json: 356 }, sweeps: [
      { server: 'dais', path: 'json', batching: false, points: [pt(1, 900, 1.1), pt(64, 3000, 20)] },
      { server: 'dais', path: 'json', batching: true, points: [pt(1, 800, 1.3), pt(64, 6000, 10)] },
    ] },
    lambda: { memoryMb: 1024, cold: { n: 10, initMs: { p50: 420, p95: 480 } }, warm: { n: 50, durationMs: { p50: 2.2, p95: 3 } }, maxMemoryUsedMb: 81, packageBytes: { zip: 18_000_000, unzipped: 46_000_000 } },
    skipped: [],
  }));
  const r = dais(['cost', '--readme', '--bench', f]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^## Choosing a target/);
  assert.match(r.stdout, /dais bench examples\/mlp --duration 3 --cold 10 --warm 50 --out bench-results\/mlp/);
  assert.match(r.stdout, /\| mlp \| – ms \| 1\.10 ms \| 3,000 \/ – \/ 6,000 \|/);
  // 2.2 ms bills 3 ms: 10M × 0.003 s × 1 GB = 30,000 GB-s, under the free 400,000; requests (10M − 1M) × $0.20/M = $1.80
  assert.match(r.stdout, /\| aws-lambda-x86_64 \| \$0\.00 \| \$1\.80 \| \$19\.80 \|/);
  assert.match(r.stdout, /from 3,000 to 6,000 req\/s \(×2\.00\)/);
  assert.match(r.stdout, /INIT measured 420 ms p50/);
  assert.equal(dais(['cost', '--readme']).status, 1);
});
