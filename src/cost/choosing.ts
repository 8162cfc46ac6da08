// The README's "Choosing a target" section, written from real `dais bench` results and the price tables: every
// number in it is a measurement from those files or a price with a source, and the command that reproduces it
// is printed with it. Bench results are read as data (structurally), so cost does not depend on bench code.
import { breakEven, estimateAll, fargateCost, lambdaCost, lambdaProvisionedCost, type TrafficProfile } from './estimate.ts';
import { measuredInputs } from './from-bench.ts';
import type { PriceTable } from './price-table.ts';

interface S {
  p50: number;
  p95: number;
}
interface Point {
  concurrency: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  timeouts: number;
}
/** The parts of a `dais bench` result this section reads. */
export interface BenchSummaryInput {
  createdAt: string;
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string; loadAvg?: { start: number; end?: number } };
  model: { name: string; sizeBytes: number };
  settings: { durationS: number; concurrency: number[] };
  server?: { peakRssMb?: number; sweeps: { server: string; path: string; batching: boolean; points: Point[] }[] };
  peer?: { peakRssMb?: number; sweeps: { points: Point[] }[] };
  limit?: { sequential: { latencyMs: S }; concurrent: { rps: number; inFlight: number } };
  container?: { compressedBytes: number; unpackedBytes: number };
  lambda?: { memoryMb: number; cold: { n: number; initMs: S }; warm: { n: number; durationMs: S }; maxMemoryUsedMb: number; packageBytes: { zip?: number; unzipped: number } };
  edge?: { node?: { latencyMs: S }; browser?: { latencyMs: S; loadMs: number }; bundle?: { totalBytes: number; totalGzipBytes: number } };
  skipped: { target: string; reason: string }[];
}

const mb = (b?: number) => (b === undefined ? '–' : `${(b / 1e6).toFixed(1)} MB`);
const ms = (v?: number) => (v === undefined || !Number.isFinite(v) ? '–' : v < 10 ? v.toFixed(2) : v.toFixed(0));
const int = (v?: number) => (v === undefined || !Number.isFinite(v) ? '–' : Math.round(v).toLocaleString('en-US'));
const usd = (v: number) => `$${v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;

function clean(p: Point) {
  return p.errors + p.non2xx + p.timeouts === 0;
}

function sweep(r: BenchSummaryInput, path: string, batching: boolean) {
  return r.server?.sweeps.find((s) => s.server === 'dais' && s.path === path && s.batching === batching);
}

function best(points: Point[] | undefined): Point | undefined {
  const ok = (points ?? []).filter(clean);
  return ok.length ? ok.reduce((a, b) => (b.rps > a.rps ? b : a)) : undefined;
}

export function renderChoosingATarget(results: { file: string; raw: BenchSummaryInput }[], tables: Map<string, PriceTable>, command: string): string {
  const first = results[0].raw;
  const m = first.machine;
  let md = '## Choosing a target\n\n';
  md += `Measured by \`dais bench\` and priced by \`dais cost\` on ${m.cpus} × ${m.cpuModel} (${m.memoryGb.toFixed(0)} GB, Node ${m.node}), ${first.createdAt.slice(0, 10)}, `;
  md += `${first.settings.durationS} s per load point with autocannon in its own process. `;
  const loads = results.map((r) => r.raw.machine.loadAvg?.start).filter((x): x is number => x !== undefined);
  if (loads.length && Math.max(...loads) > m.cpus) md += `Other work shared the machine (1-minute load average up to ${Math.max(...loads).toFixed(1)} on ${m.cpus} CPUs), so absolute numbers are low and noisy; compare targets within a row. `;
  md += 'Lambda numbers come from the local emulator (`dais invoke`), not from AWS. Reproduce:\n\n';
  md += `\`\`\`sh\n${command}\n\`\`\`\n\n`;

  md += '### Speed and size, per example\n\n';
  md += '| example | limit: onnxruntime-node in process, p50 | dais serve JSON, 1 client, p50 | dais serve best req/s (JSON / binary / batched JSON) | peer best req/s | server peak RSS | container image (pulled / unpacked) | Lambda cold INIT p50 | Lambda warm p50 | function.zip | WASM p50 Node / Chromium | browser bundle (gzip) |\n';
  md += '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n';
  for (const { raw: r } of results) {
    const dj = sweep(r, 'json', false);
    const db = sweep(r, 'binary', false);
    const bj = sweep(r, 'json', true);
    const c1 = dj?.points.find((p) => p.concurrency === 1);
    const bestJ = best(dj?.points);
    const bestB = best(db?.points);
    const bestBj = best(bj?.points);
    const bestPeer = best(r.peer?.sweeps[0]?.points);
    md += `| ${r.model.name} | ${ms(r.limit?.sequential.latencyMs.p50)} ms | ${ms(c1?.p50Ms)} ms | ${int(bestJ?.rps)} / ${int(bestB?.rps)} / ${int(bestBj?.rps)} | ${int(bestPeer?.rps)} | ${int(r.server?.peakRssMb)} MB | `;
    md += `${mb(r.container?.compressedBytes)} / ${mb(r.container?.unpackedBytes)} | ${ms(r.lambda?.cold.initMs.p50)} ms | ${ms(r.lambda?.warm.durationMs.p50)} ms | ${mb(r.lambda?.packageBytes.zip)} | `;
    md += `${ms(r.edge?.node?.latencyMs.p50)} / ${ms(r.edge?.browser?.latencyMs.p50)} ms | ${mb(r.edge?.bundle?.totalGzipBytes)} |\n`;
  }
  md += '\n"Best req/s" is the highest throughput over the concurrency sweep with no failed request; the peer is a hand-written node:http + onnxruntime-node server measured in the same run.\n';
  const skipped = results.flatMap(({ raw }) => raw.skipped.map((s) => `${raw.model.name} ${s.target}: ${s.reason}`));
  if (skipped.length) md += `Not measured: ${skipped.join('; ')}.\n`;
  md += '\n';

  // Cost: one example (the first) at three volumes, with the break-even against an always-on container.
  const inputs = measuredInputs(first, results[0].file);
  if (inputs.durationMs !== undefined && inputs.memoryMb !== undefined) {
    const base: TrafficProfile = { ...inputs, durationMs: inputs.durationMs, memoryMb: inputs.memoryMb, requestsPerMonth: 1, arch: 'x86_64', freeTier: true, vcpu: 1 };
    const volumes = [1e6, 1e7, 1e8];
    const rows = volumes.map((v) => estimateAll({ ...base, requestsPerMonth: v }, tables));
    md += `### Monthly cost of serving ${first.model.name} (us-east-1, x86_64, free tiers on)\n\n`;
    md += `Inputs measured above: ${inputs.durationMs} ms per request (${inputs.provenance.durationMs?.split(': ').slice(1).join(': ')}), ${inputs.memoryMb} MB Lambda memory (${inputs.provenance.memoryMb?.split(': ').slice(1).join(': ')})`;
    if (inputs.instanceRps) md += `, ${int(inputs.instanceRps)} req/s per always-on instance`;
    md += '. Each price has its source and date in `data/prices/`; `dais cost` prints every formula.\n\n';
    md += `| target | ${volumes.map((v) => `${int(v)} req/month`).join(' | ')} |\n|---|${volumes.map(() => '---:').join('|')}|\n`;
    for (let i = 0; i < rows[0].length; i++) {
      if (rows[0][i].kind === 'device') continue;
      md += `| ${rows[0][i].target} | ${rows.map((r) => usd(r[i].monthlyUsd)).join(' | ')} |\n`;
    }
    const lam = breakEven({ ...base, requestsPerMonth: 1e7 }, tables, (q, t) => lambdaCost(q, t), fargateCost);
    const lamApi = breakEven({ ...base, requestsPerMonth: 1e7 }, tables, (q, t) => lambdaCost(q, t, { httpApi: true }), fargateCost);
    md += `\nBreak-even: ${lam.summary}. Behind API Gateway HTTP API: ${lamApi.summary}.\n`;
    const devices = estimateAll({ ...base, requestsPerMonth: 1e6 }, tables).filter((t) => t.kind === 'device');
    md += `Edge devices cost the same at any volume (bought, amortised over ${devices[0]?.inputs.lifetimeMonths} months, power not included unless you give \`--power-usd-per-kwh\`): ${devices.map((d) => `${d.target} ${usd(d.monthlyUsd)}`).join(', ')}.\n\n`;
    const pc = lambdaProvisionedCost({ ...base, requestsPerMonth: 1e7 }, tables);

    md += '### What the numbers say\n\n';
    md += `- **Spiky or low traffic → Lambda.** Below the break-even above, on-demand Lambda costs less than an always-on container, and nothing when idle. It pays for cold starts: INIT measured ${ms(first.lambda?.cold.initMs.p50)} ms p50 here (the model loads once per cold start); warm invocations take ${ms(first.lambda?.warm.durationMs.p50)} ms.`;
    if (pc) md += ` Keeping one instance warm with provisioned concurrency costs ${usd(pc.monthlyUsd)} a month at 10M requests.`;
    md += '\n';
    const unb = best(sweep(first, 'json', false)?.points);
    const bat = best(sweep(first, 'json', true)?.points);
    md += `- **Steady traffic → a container.** Above the break-even an always-on container (Fargate, EC2, Kubernetes/KServe from \`dais build --target container --k8s\`) costs less and has no cold start.`;
    if (unb && bat) md += ` Dynamic batching changed ${first.model.name}'s best throughput from ${int(unb.rps)} to ${int(bat.rps)} req/s (×${(bat.rps / unb.rps).toFixed(2)}) in this run.`;
    md += '\n';
    md += `- **Data that must stay on the device, or no server at all → edge.** The browser bundle runs the model in the page (WASM p50 above), costs nothing per request, and is downloaded once (gzip size above); a Raspberry Pi class device costs its price spread over its life.\n`;
    md += `- **Server overhead.** One request at a time, dais serve adds HTTP and codec work to the model's own run time (compare the first two columns); the binary request path sends less than JSON for tensor-heavy inputs.\n`;
  }
  return md;
}
