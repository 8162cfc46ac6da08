// Monthly cost per target from a traffic profile and *measured* latency and memory. Every figure that goes in is
// returned beside the result (inputs, prices with their sources, a formula and a line per charge), so a reader can
// redo the sum by hand; nothing here is assumed that a source or the user did not give.
import { fact, type PriceFact, type PriceTable, type PriceTier, value } from './price-table.ts';

export type Arch = 'x86_64' | 'arm64';

export interface TrafficProfile {
  requestsPerMonth: number;
  /** Measured time one request keeps the function busy, in ms (Lambda bills it rounded up to 1 ms). */
  durationMs: number;
  /** Memory configured for the serverless function, MB. */
  memoryMb: number;
  arch: Arch;
  freeTier: boolean;
  /** Busiest second's requests; sizes always-on fleets and provisioned concurrency. Default: the month's average. */
  peakRps?: number;
  /** Response body size; prices data transfer out where a table for it exists. */
  responseBytes?: number;
  /** Cold starts a month and the measured INIT duration: billed as duration for zip functions since 2025-08-01. */
  coldStartsPerMonth?: number;
  initMs?: number;
  /** Measured requests per second one always-on server instance sustains without errors. */
  instanceRps?: number;
  /** Measured peak resident memory of one server instance, MB. */
  instanceMemoryMb?: number;
  /** vCPUs of a Fargate task / Cloud Run instance. */
  vcpu: number;
  /** Electricity price for edge devices; no default (no sourced figure), so devices are priced without power if absent. */
  powerUsdPerKwh?: number;
  /** Where each measured input came from (flag, bench file …), shown with the result. */
  provenance?: Record<string, string>;
}

export type TargetKind = 'serverless' | 'always-on' | 'device';

export interface CostLine {
  item: string;
  /** The arithmetic with the numbers in it. */
  formula: string;
  usd: number;
}

export interface UsedPrice {
  service: string;
  key: string;
  value?: number;
  tiers?: PriceTier[];
  unit: string;
  source: string;
  asOf: string;
}

export interface TargetCost {
  target: string;
  label: string;
  kind: TargetKind;
  /** Rounded to the cent. */
  monthlyUsd: number;
  monthlyUsdExact: number;
  /** The formula in words and symbols. */
  formula: string;
  lines: CostLine[];
  inputs: Record<string, number | string | boolean | null>;
  prices: UsedPrice[];
  notes: string[];
}

export const SECONDS_PER_MONTH_HOURS = 730;
const MB_PER_GB = 1024;
/** AWS bills transfer in GB of 2^30 bytes. */
const BYTES_PER_GB = 1024 ** 3;

type Tables = Map<string, PriceTable>;

export function cents(usd: number): number {
  // Round half up on the cent; the epsilon keeps 3.465 (stored as 3.46499…) from rounding down.
  return Math.round((usd + Number.EPSILON * Math.max(1, Math.abs(usd))) * 100) / 100;
}

/** Cost of `quantity` units under cumulative tiers. */
export function tieredCost(quantity: number, tiers: PriceTier[]): { usd: number; parts: string[] } {
  let left = quantity;
  let floor = 0;
  let usd = 0;
  const parts: string[] = [];
  for (const t of tiers) {
    if (left <= 0) break;
    const width = t.upTo === null ? left : Math.min(left, t.upTo - floor);
    if (width > 0) {
      usd += width * t.value;
      parts.push(`${num(width)} × $${t.value}`);
      left -= width;
    }
    if (t.upTo !== null) floor = t.upTo;
  }
  return { usd, parts: parts.length ? parts : ['0'] };
}

function num(n: number): string {
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return Number(n.toPrecision(10)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

class Builder {
  lines: CostLine[] = [];
  prices: UsedPrice[] = [];
  notes: string[] = [];
  constructor(private tables: Tables) {}
  price(service: string, key: string): PriceFact {
    const p = fact(this.tables, service, key);
    if (!this.prices.some((u) => u.service === service && u.key === key)) {
      this.prices.push({ service, key, value: p.value, tiers: p.tiers, unit: p.unit, source: p.source, asOf: p.asOf });
    }
    return p;
  }
  v(service: string, key: string): number {
    this.price(service, key);
    return value(this.tables, service, key);
  }
  line(item: string, formula: string, usd: number) {
    this.lines.push({ item, formula: `${formula} = $${num(Number(usd.toFixed(6)))}`, usd });
  }
  done(target: string, label: string, kind: TargetKind, formula: string, inputs: TargetCost['inputs']): TargetCost {
    const exact = this.lines.reduce((s, l) => s + l.usd, 0);
    return { target, label, kind, monthlyUsd: cents(exact), monthlyUsdExact: exact, formula, lines: this.lines, inputs, prices: this.prices, notes: this.notes };
  }
}

export function averageRps(p: TrafficProfile): number {
  return p.requestsPerMonth / (SECONDS_PER_MONTH_HOURS * 3600);
}

function peakRps(p: TrafficProfile): number {
  return p.peakRps ?? averageRps(p);
}

/** Always-on instances needed for the peak, from the measured per-instance throughput; at least one. */
function instancesFor(p: TrafficProfile, b: Builder): number {
  if (!p.instanceRps || p.instanceRps <= 0) {
    b.notes.push('one instance priced: no measured per-instance throughput (bench result or --instance-rps), so capacity is not checked');
    return 1;
  }
  return Math.max(1, Math.ceil(peakRps(p) / p.instanceRps));
}

function dataTransferOut(p: TrafficProfile, b: Builder) {
  if (!p.responseBytes) {
    b.notes.push('data transfer out not counted: no response size (bench result or --response-bytes)');
    return;
  }
  const gb = (p.requestsPerMonth * p.responseBytes) / BYTES_PER_GB;
  const free = p.freeTier ? b.v('aws-data-transfer', 'free-gb') : 0;
  const rate = b.v('aws-data-transfer', 'per-gb');
  const billable = Math.max(0, gb - free);
  b.line('data transfer out', `max(0, ${num(p.requestsPerMonth)} req × ${num(p.responseBytes)} B / 2^30 − ${num(free)} GB free) × $${rate}/GB`, billable * rate);
}

export function lambdaCost(p: TrafficProfile, tables: Tables, options: { httpApi?: boolean } = {}): TargetCost {
  const b = new Builder(tables);
  const S = 'aws-lambda';
  const memGb = p.memoryMb / b.v(S, 'mb-per-gb');
  const billedMs = Math.ceil(p.durationMs);
  const computeGbS = p.requestsPerMonth * (billedMs / 1000) * memGb;
  const coldStarts = p.coldStartsPerMonth ?? 0;
  const initMs = p.initMs !== undefined ? Math.ceil(p.initMs) : 0;
  const initGbS = coldStarts * (initMs / 1000) * memGb;
  b.price(S, 'init-billed-since');
  if (coldStarts > 0 && p.initMs === undefined) b.notes.push('INIT not priced: cold starts given without a measured INIT duration (--init-ms or a bench result with lambda)');
  if (coldStarts === 0) b.notes.push('INIT (billed since 2025-08-01) not counted: give --cold-starts-per-month to price it');
  const freeReq = p.freeTier ? b.v(S, 'free-requests') : 0;
  const freeGbS = p.freeTier ? b.v(S, 'free-gb-seconds') : 0;
  const reqRate = b.v(S, 'requests');
  const billableReq = Math.max(0, p.requestsPerMonth - freeReq);
  b.line('requests', `max(0, ${num(p.requestsPerMonth)} − ${num(freeReq)} free) / 1M × $${reqRate}`, (billableReq / 1e6) * reqRate);
  const durKey = `duration-${p.arch}`;
  const tiers = b.price(S, durKey).tiers!;
  const billableGbS = Math.max(0, computeGbS + initGbS - freeGbS);
  const tiered = tieredCost(billableGbS, tiers);
  const gbsText = `${num(p.requestsPerMonth)} req × ${billedMs} ms × ${num(memGb)} GB` + (initGbS > 0 ? ` + ${num(coldStarts)} cold × ${initMs} ms × ${num(memGb)} GB` : '');
  b.line('duration', `(${gbsText} = ${num(computeGbS + initGbS)} GB-s − ${num(freeGbS)} free = ${num(billableGbS)} GB-s) → ${tiered.parts.join(' + ')}`, tiered.usd);
  let target = `aws-lambda-${p.arch}`;
  let label = `AWS Lambda (${p.arch})`;
  let formula = 'requests: max(0, N − free) / 1M × request price; duration: max(0, N × ceil(ms) / 1000 × MB / 1024 + INIT GB-s − free GB-s) × tiered GB-s price';
  if (options.httpApi) {
    const rate = b.v('aws-api-gateway', 'http-api-requests');
    const firstTier = b.v('aws-api-gateway', 'http-api-first-tier-requests');
    if (p.requestsPerMonth > firstTier) b.notes.push(`over ${num(firstTier)} requests the HTTP API price drops; the first-tier price is applied to all (an upper bound)`);
    b.line('API Gateway HTTP API', `${num(p.requestsPerMonth)} / 1M × $${rate}`, (p.requestsPerMonth / 1e6) * rate);
    target += '+http-api';
    label += ' behind API Gateway HTTP API';
    formula += '; HTTP API: N / 1M × HTTP API price';
  } else {
    b.notes.push('invoked directly or through a function URL (no charge for the URL); add API Gateway with the +http-api target');
  }
  dataTransferOut(p, b);
  return b.done(target, label, 'serverless', formula, {
    requestsPerMonth: p.requestsPerMonth,
    durationMs: p.durationMs,
    billedDurationMs: billedMs,
    memoryMb: p.memoryMb,
    arch: p.arch,
    freeTier: p.freeTier,
    coldStartsPerMonth: coldStarts,
    initMs: p.initMs ?? null,
    responseBytes: p.responseBytes ?? null,
  });
}

export function lambdaProvisionedCost(p: TrafficProfile, tables: Tables): TargetCost | undefined {
  if (p.arch !== 'x86_64') return undefined; // only x86_64 provisioned prices are in the table
  const b = new Builder(tables);
  const S = 'aws-lambda';
  const memGb = p.memoryMb / b.v(S, 'mb-per-gb');
  const billedMs = Math.ceil(p.durationMs);
  const concurrency = Math.max(1, Math.ceil(peakRps(p) * (billedMs / 1000)));
  const hours = b.v('aws-fargate', 'hours-per-month');
  const pcRate = b.v(S, 'provisioned-concurrency-x86_64');
  const durRate = b.v(S, 'provisioned-duration-x86_64');
  const reqRate = b.v(S, 'requests');
  b.line('provisioned concurrency', `${concurrency} × ${num(memGb)} GB × ${hours} h × 3600 s × $${pcRate}`, concurrency * memGb * hours * 3600 * pcRate);
  const gbs = p.requestsPerMonth * (billedMs / 1000) * memGb;
  b.line('duration', `${num(p.requestsPerMonth)} req × ${billedMs} ms × ${num(memGb)} GB = ${num(gbs)} GB-s × $${durRate}`, gbs * durRate);
  b.line('requests', `${num(p.requestsPerMonth)} / 1M × $${reqRate}`, (p.requestsPerMonth / 1e6) * reqRate);
  b.notes.push(`concurrency = ceil(peak ${num(Number(peakRps(p).toFixed(3)))} req/s × ${billedMs} ms) (Little's law); free tier not applied to provisioned concurrency`);
  dataTransferOut(p, b);
  return b.done('aws-lambda-x86_64-provisioned', 'AWS Lambda (x86_64) with provisioned concurrency', 'always-on',
    'concurrency × GB × seconds in month × configured price + N × ceil(ms)/1000 × GB × provisioned duration price + N / 1M × request price',
    { requestsPerMonth: p.requestsPerMonth, durationMs: p.durationMs, memoryMb: p.memoryMb, peakRps: peakRps(p), concurrency });
}

export function cloudRunCost(p: TrafficProfile, tables: Tables): TargetCost {
  const b = new Builder(tables);
  const S = 'gcp-cloud-run';
  const seconds = p.requestsPerMonth * (p.durationMs / 1000);
  const gib = p.memoryMb / 1024;
  const vcpuS = seconds * p.vcpu;
  const gibS = seconds * gib;
  const freeV = p.freeTier ? b.v(S, 'free-vcpu-seconds') : 0;
  const freeG = p.freeTier ? b.v(S, 'free-gib-seconds') : 0;
  const freeR = p.freeTier ? b.v(S, 'free-requests') : 0;
  const vRate = b.v(S, 'vcpu-second');
  const gRate = b.v(S, 'gib-second');
  const rRate = b.v(S, 'requests');
  b.line('vCPU', `max(0, ${num(p.requestsPerMonth)} req × ${num(p.durationMs)} ms × ${p.vcpu} vCPU − ${num(freeV)} free) × $${vRate}`, Math.max(0, vcpuS - freeV) * vRate);
  b.line('memory', `max(0, ${num(p.requestsPerMonth)} req × ${num(p.durationMs)} ms × ${num(gib)} GiB − ${num(freeG)} free) × $${gRate}`, Math.max(0, gibS - freeG) * gRate);
  b.line('requests', `max(0, ${num(p.requestsPerMonth)} − ${num(freeR)} free) / 1M × $${rRate}`, (Math.max(0, p.requestsPerMonth - freeR) / 1e6) * rRate);
  b.notes.push('upper bound: each request is billed as if alone on its instance (Cloud Run bills instance time, which concurrent requests share)');
  b.notes.push('egress not priced (no sourced Google Cloud transfer table)');
  return b.done('gcp-cloud-run', 'Google Cloud Run (request-based)', 'serverless',
    'max(0, N × s × vCPU − free) × vCPU-s price + max(0, N × s × GiB − free) × GiB-s price + max(0, N − free) / 1M × request price',
    { requestsPerMonth: p.requestsPerMonth, durationMs: p.durationMs, memoryMb: p.memoryMb, vcpu: p.vcpu, freeTier: p.freeTier });
}

export function azureFunctionsCost(p: TrafficProfile, tables: Tables): TargetCost {
  const b = new Builder(tables);
  const S = 'azure-functions';
  const step = b.v(S, 'memory-step-mb');
  const billedMb = Math.ceil(p.memoryMb / step) * step;
  const gbs = p.requestsPerMonth * (p.durationMs / 1000) * (billedMb / 1024);
  const freeG = p.freeTier ? b.v(S, 'free-gb-seconds') : 0;
  const freeE = p.freeTier ? b.v(S, 'free-executions') : 0;
  const gRate = b.v(S, 'gb-second');
  const eRate = b.v(S, 'executions');
  b.line('execution time', `max(0, ${num(p.requestsPerMonth)} × ${num(p.durationMs)} ms × ${billedMb} MB / 1024 − ${num(freeG)} free) × $${gRate}`, Math.max(0, gbs - freeG) * gRate);
  b.line('executions', `max(0, ${num(p.requestsPerMonth)} − ${num(freeE)} free) / 1M × $${eRate}`, (Math.max(0, p.requestsPerMonth - freeE) / 1e6) * eRate);
  b.notes.push(`memory billed rounded up to ${step} MB; Azure's pricing page may also set a minimum billed time per execution, not applied here (no stored source)`);
  b.notes.push('egress not priced (no sourced Azure transfer table)');
  return b.done('azure-functions', 'Azure Functions (Consumption)', 'serverless',
    'max(0, N × s × ceil(MB / 128) × 128 / 1024 − free) × GB-s price + max(0, N − free) / 1M × execution price',
    { requestsPerMonth: p.requestsPerMonth, durationMs: p.durationMs, memoryMb: p.memoryMb, billedMemoryMb: billedMb, freeTier: p.freeTier });
}

/** Fargate memory for a task: the measured peak RSS rounded up to a whole GB, at least the 2 GB a 1-vCPU task needs. */
export function fargateMemoryGb(instanceMemoryMb: number | undefined, vcpu: number): number {
  const minimum = vcpu <= 0.25 ? 0.5 : vcpu <= 0.5 ? 1 : vcpu * 2;
  return Math.max(minimum, Math.ceil((instanceMemoryMb ?? 0) / 1024));
}

export function fargateCost(p: TrafficProfile, tables: Tables): TargetCost {
  const b = new Builder(tables);
  const S = 'aws-fargate';
  const n = instancesFor(p, b);
  const memGb = fargateMemoryGb(p.instanceMemoryMb, p.vcpu);
  const hours = b.v(S, 'hours-per-month');
  const vRate = b.v(S, `vcpu-hour-${p.arch}`);
  const gRate = b.v(S, `gb-hour-${p.arch}`);
  b.line('tasks', `${n} task × ${hours} h × (${p.vcpu} vCPU × $${vRate} + ${memGb} GB × $${gRate})`, n * hours * (p.vcpu * vRate + memGb * gRate));
  if (p.instanceMemoryMb === undefined) b.notes.push(`task memory ${memGb} GB is the smallest for ${p.vcpu} vCPU: no measured server memory`);
  dataTransferOut(p, b);
  return b.done(`aws-fargate-${p.arch}`, `AWS Fargate (${p.arch}), always on`, 'always-on',
    'tasks × hours × (vCPU × vCPU-hour price + GB × GB-hour price); tasks = max(1, ceil(peak req/s ÷ measured req/s per instance))',
    { requestsPerMonth: p.requestsPerMonth, peakRps: peakRps(p), instanceRps: p.instanceRps ?? null, tasks: n, vcpu: p.vcpu, memoryGb: memGb, instanceMemoryMb: p.instanceMemoryMb ?? null });
}

export function ec2Cost(p: TrafficProfile, tables: Tables, instanceType: string): TargetCost {
  const b = new Builder(tables);
  const S = 'aws-ec2';
  const spec = b.price(S, instanceType);
  const n = instancesFor(p, b);
  const hours = b.v(S, 'hours-per-month');
  const rate = spec.value!;
  b.line('instances', `${n} × ${hours} h × $${rate}/h`, n * hours * rate);
  if (typeof spec.memoryGb === 'number' && p.instanceMemoryMb !== undefined && p.instanceMemoryMb > (spec.memoryGb as number) * 1024) {
    b.notes.push(`the measured server memory ${num(Math.round(p.instanceMemoryMb))} MB does not fit the ${spec.memoryGb} GiB of ${instanceType}`);
  }
  if (spec.gpu) b.notes.push(`${spec.gpu}: unused by the onnxruntime CPU build dais ships; throughput measured on CPU`);
  if (p.instanceRps) b.notes.push('per-instance throughput was measured on the bench machine, not on this instance type');
  dataTransferOut(p, b);
  return b.done(`aws-ec2-${instanceType}`, `Amazon EC2 ${instanceType} (${spec.vcpu} vCPU, ${spec.memoryGb} GiB), always on`, 'always-on',
    'instances × hours × hourly price; instances = max(1, ceil(peak req/s ÷ measured req/s per instance))',
    { requestsPerMonth: p.requestsPerMonth, peakRps: peakRps(p), instanceRps: p.instanceRps ?? null, instances: n });
}

export function deviceCost(p: TrafficProfile, tables: Tables, device: string): TargetCost {
  const b = new Builder(tables);
  const S = 'edge-devices';
  const price = b.v(S, device);
  const watts = b.v(S, `${device}-watts`);
  const months = b.v(S, 'lifetime-months');
  const hours = b.v(S, 'hours-per-month');
  b.line('hardware', `$${price} / ${months} months`, price / months);
  if (p.powerUsdPerKwh !== undefined) {
    b.line('power', `${watts} W × ${hours} h / 1000 × $${p.powerUsdPerKwh}/kWh`, (watts * hours * p.powerUsdPerKwh) / 1000);
  } else {
    b.notes.push(`power not priced: give --power-usd-per-kwh (at ${watts} W the device uses ${num((watts * hours) / 1000)} kWh a month)`);
  }
  b.notes.push('one device, serving the requests of the place it stands in; its throughput was not measured on the device');
  const label = device === 'raspberry-pi-5-8gb' ? 'Raspberry Pi 5 (8 GB), amortised' : 'NVIDIA Jetson Orin Nano Super dev kit, amortised';
  return b.done(device, label, 'device', 'price ÷ lifetime months + W × hours ÷ 1000 × electricity price',
    { devicePriceUsd: price, lifetimeMonths: months, watts, powerUsdPerKwh: p.powerUsdPerKwh ?? null });
}

export function estimateAll(p: TrafficProfile, tables: Tables): TargetCost[] {
  const out: TargetCost[] = [
    lambdaCost(p, tables),
    lambdaCost(p, tables, { httpApi: true }),
  ];
  const pc = lambdaProvisionedCost(p, tables);
  if (pc) out.push(pc);
  out.push(cloudRunCost(p, tables), azureFunctionsCost(p, tables), fargateCost(p, tables));
  out.push(ec2Cost(p, tables, 'm7g.large'), ec2Cost(p, tables, 'g5.xlarge'));
  out.push(deviceCost(p, tables, 'raspberry-pi-5-8gb'), deviceCost(p, tables, 'jetson-orin-nano-super'));
  return out;
}

export interface BreakEven {
  serverless: string;
  alwaysOn: string;
  /** Requests a month at which both cost the same; null when one is cheaper over the whole range searched. */
  requestsPerMonth: number | null;
  averageRps: number | null;
  monthlyUsd: number | null;
  summary: string;
}

/** Cost of one target at another monthly volume, the peak scaled with the volume. */
export function costAt(p: TrafficProfile, tables: Tables, target: (q: TrafficProfile, t: Tables) => TargetCost, requestsPerMonth: number): number {
  const scale = requestsPerMonth / p.requestsPerMonth;
  const q: TrafficProfile = { ...p, requestsPerMonth, peakRps: p.peakRps !== undefined ? p.peakRps * scale : undefined };
  return target(q, tables).monthlyUsdExact;
}

const LOW = 1e3;
const HIGH = 1e12;

/** Smallest monthly volume at which the serverless target costs at least as much as the always-on one. */
export function breakEven(
  p: TrafficProfile,
  tables: Tables,
  serverless: (q: TrafficProfile, t: Tables) => TargetCost,
  alwaysOn: (q: TrafficProfile, t: Tables) => TargetCost,
): BreakEven {
  const sName = serverless(p, tables).target;
  const aName = alwaysOn(p, tables).target;
  const diff = (r: number) => costAt(p, tables, serverless, r) - costAt(p, tables, alwaysOn, r);
  const steps = 9 * 12;
  let prev = LOW;
  if (diff(LOW) >= 0) {
    return { serverless: sName, alwaysOn: aName, requestsPerMonth: null, averageRps: null, monthlyUsd: null, summary: `${aName} costs less than ${sName} from ${num(LOW)} requests a month up` };
  }
  for (let i = 1; i <= steps; i++) {
    const r = LOW * 10 ** ((i * 9) / steps);
    if (diff(r) >= 0) {
      let lo = prev;
      let hi = r;
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (diff(mid) >= 0) hi = mid;
        else lo = mid;
      }
      const rps = hi / (SECONDS_PER_MONTH_HOURS * 3600);
      const usd = cents(costAt(p, tables, serverless, hi));
      return {
        serverless: sName, alwaysOn: aName, requestsPerMonth: hi, averageRps: rps, monthlyUsd: usd,
        summary: `${sName} costs less below ${num(hi)} requests a month (${num(Number(rps.toFixed(2)))} req/s on average, $${usd.toFixed(2)}); ${aName} from there up`,
      };
    }
    prev = r;
  }
  return { serverless: sName, alwaysOn: aName, requestsPerMonth: null, averageRps: null, monthlyUsd: null, summary: `${sName} costs less than ${aName} up to ${num(HIGH)} requests a month` };
}

/** Break-even of each serverless target against each always-on container target. */
export function breakEvens(p: TrafficProfile, tables: Tables): BreakEven[] {
  const serverless = [(q: TrafficProfile, t: Tables) => lambdaCost(q, t), (q: TrafficProfile, t: Tables) => lambdaCost(q, t, { httpApi: true }), cloudRunCost, azureFunctionsCost];
  const alwaysOn = [fargateCost, (q: TrafficProfile, t: Tables) => ec2Cost(q, t, 'm7g.large')];
  return serverless.flatMap((s) => alwaysOn.map((a) => breakEven(p, tables, s, a)));
}

/** Monthly cost of each target over a log range of volumes: the data behind the break-even chart. */
export function costCurves(p: TrafficProfile, tables: Tables, from = 1e5, to = 1e10, points = 41): { requestsPerMonth: number[]; series: { target: string; usd: number[] }[] } {
  const xs = Array.from({ length: points }, (_, i) => Math.round(from * (to / from) ** (i / (points - 1))));
  const fns: [string, (q: TrafficProfile, t: Tables) => TargetCost][] = [
    [`aws-lambda-${p.arch}`, (q, t) => lambdaCost(q, t)],
    [`aws-lambda-${p.arch}+http-api`, (q, t) => lambdaCost(q, t, { httpApi: true })],
    ['gcp-cloud-run', cloudRunCost],
    ['azure-functions', azureFunctionsCost],
    [`aws-fargate-${p.arch}`, fargateCost],
    ['aws-ec2-m7g.large', (q, t) => ec2Cost(q, t, 'm7g.large')],
  ];
  return { requestsPerMonth: xs, series: fns.map(([target, f]) => ({ target, usd: xs.map((x) => cents(costAt(p, tables, f, x))) })) };
}
