// `dais cost`: monthly cost per target from measured latency and memory and a traffic profile, with sourced prices.
import { readFileSync } from 'node:fs';
import { CliError, flags, parseFlags, type Command } from './command.ts';
import { breakEvens, estimateAll, type Arch, type TargetCost, type TrafficProfile } from '../cost/estimate.ts';
import { measuredInputs, type MeasuredInputs } from '../cost/from-bench.ts';
import { DEFAULT_PRICES_DIR, loadPriceTables, stalePrices, type PriceTable } from '../cost/price-table.ts';

const HELP = `Usage: dais cost --requests-per-month <n> [--bench results.json | --duration-ms <n> --memory-mb <n>] [options]
       dais cost --check

Prices each target for a month of traffic: AWS Lambda (on demand, behind API Gateway HTTP API, provisioned
concurrency), Google Cloud Run, Azure Functions, AWS Fargate and EC2 (always on), Raspberry Pi 5 and Jetson Orin
Nano (bought, amortised). Shows each formula with its numbers, the prices with their sources and dates, and the
request volume at which serverless and always-on containers cost the same.

Measured inputs come from a 'dais bench' result (--bench) or flags; a flag wins over the bench file.

Options:
  --requests-per-month <n>   monthly requests (required unless --check)
  --bench <file>             a results.json from 'dais bench': duration, memory, throughput, RSS, response size
  --duration-ms <n>          time one request keeps the function busy, ms
  --memory-mb <n>            serverless memory setting, MB (Lambda 128-10240)
  --arch <x86_64|arm64>      Lambda and Fargate architecture (default: x86_64)
  --peak-rps <n>             busiest second's requests (default: the month's average)
  --no-free-tier             leave out the free tiers
  --region <name>            price region; the tables hold us-east-1 (default: us-east-1)
  --response-bytes <n>       response size, for data transfer out
  --cold-starts-per-month <n> cold starts, to price Lambda INIT (billed since 2025-08-01)
  --init-ms <n>              INIT duration of one cold start, ms
  --instance-rps <n>         requests/s one always-on server sustains (sizes Fargate/EC2 fleets)
  --instance-memory-mb <n>   peak memory of one server, MB (sizes the Fargate task)
  --vcpu <n>                 vCPUs of a Fargate task / Cloud Run instance (default: 1)
  --power-usd-per-kwh <n>    electricity price for the edge devices (no default: without it power is left out)
  --prices <dir>             price tables folder (default: data/prices)
  --readme                   print the README's "Choosing a target" section from --bench files (repeat --bench)
  --check                    list prices whose date is more than a year old; exit 1 if any
  --today <YYYY-MM-DD>       the date --check measures age from (default: today)
  --json                     print JSON: { profile, targets: [{ target, monthlyUsd, inputs, formula, lines, prices, notes }], breakEven }
  -h, --help                 show this help
`;

function numFlag(name: string, v: string | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v.replaceAll('_', '').replaceAll(',', ''));
  if (!Number.isFinite(n) || n < min || n > max) throw new CliError(`--${name} must be a number from ${min} to ${max}, got '${v}'`);
  return n;
}

export const command: Command = {
  name: 'cost',
  summary: 'Monthly cost per target from measured latency and memory, with sourced, dated prices and break-even volumes',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('cost', argv, flags({ string: ['requests-per-month', 'duration-ms', 'memory-mb', 'arch', 'peak-rps', 'region', 'response-bytes', 'cold-starts-per-month', 'init-ms', 'instance-rps', 'instance-memory-mb', 'vcpu', 'power-usd-per-kwh', 'prices', 'today'], boolean: ['readme', 'no-free-tier', 'check', 'json'], multiple: ['bench'] }));
    if (positionals.length) throw new CliError(`unexpected argument '${positionals[0]}' (see 'dais cost --help')`);
    const tables: Map<string, PriceTable> = loadPriceTables(values.prices ?? DEFAULT_PRICES_DIR);
    if (values.check) return check(tables, values.today, Boolean(values.json));
    const benchFiles = values.bench ?? [];
    if (values.readme) return readme(tables, benchFiles, argv);
    if (benchFiles.length > 1) throw new CliError('give one --bench file (several are for --readme)');

    const region = values.region ?? 'us-east-1';
    if (region !== 'us-east-1') throw new CliError(`--region ${region}: the price tables hold us-east-1 only; add a table under data/prices or drop --region`);
    const arch = (values.arch ?? 'x86_64') as Arch;
    if (arch !== 'x86_64' && arch !== 'arm64') throw new CliError(`--arch must be x86_64 or arm64, got '${values.arch}'`);
    const requestsPerMonth = numFlag('requests-per-month', values['requests-per-month'], 0, 1e13);
    if (requestsPerMonth === undefined) throw new CliError('--requests-per-month is required (how many inference requests a month), e.g. --requests-per-month 10000000');

    let measured: MeasuredInputs = { provenance: {} };
    if (benchFiles.length) {
      const raw = readBench(benchFiles[0]);
      measured = measuredInputs(raw, benchFiles[0]);
    }
    const provenance = { ...measured.provenance };
    const pick = (key: keyof MeasuredInputs & string, flag: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined => {
      const f = numFlag(flag, values[flag as keyof typeof values] as string | undefined, min, max);
      if (f !== undefined) {
        provenance[key] = `--${flag}`;
        return f;
      }
      return measured[key] as number | undefined;
    };
    const durationMs = pick('durationMs', 'duration-ms', 0.001, 900_000);
    const memoryMb = pick('memoryMb', 'memory-mb', 128, 10_240);
    if (durationMs === undefined) throw new CliError('no request duration: give --bench <results.json> from dais bench, or --duration-ms');
    if (memoryMb === undefined) throw new CliError('no memory size: give --bench <results.json> from dais bench, or --memory-mb');
    const profile: TrafficProfile = {
      requestsPerMonth,
      durationMs,
      memoryMb,
      arch,
      freeTier: !values['no-free-tier'],
      peakRps: numFlag('peak-rps', values['peak-rps'], 0),
      responseBytes: pick('responseBytes', 'response-bytes', 0),
      coldStartsPerMonth: numFlag('cold-starts-per-month', values['cold-starts-per-month'], 0),
      initMs: pick('initMs', 'init-ms', 0, 10_000),
      instanceRps: pick('instanceRps', 'instance-rps', 0),
      instanceMemoryMb: pick('instanceMemoryMb', 'instance-memory-mb', 1),
      vcpu: numFlag('vcpu', values.vcpu, 0.25, 16) ?? 1,
      powerUsdPerKwh: numFlag('power-usd-per-kwh', values['power-usd-per-kwh'], 0, 10),
      provenance,
    };
    const targets: TargetCost[] = estimateAll(profile, tables);
    const be = breakEvens(profile, tables);
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ profile: { ...profile, region }, targets, breakEven: be }, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(formatCost(profile, region, targets, be.map((b) => b.summary)));
    return 0;
  },
};

function readBench(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new CliError(err.code === 'ENOENT' ? `bench file not found: ${file}` : `cannot read bench file ${file}: ${err.message}`);
  }
}

/** The README's "Choosing a target" section from bench results (the first one is priced). */
async function readme(tables: Map<string, PriceTable>, files: string[], argv: string[]): Promise<number> {
  if (files.length === 0) throw new CliError("--readme needs one or more --bench <results.json> from 'dais bench --out <dir>'");
  const { renderChoosingATarget } = await import('../cost/choosing.ts');
  const results = files.map((file) => {
    const raw = readBench(file);
    measuredInputs(raw, file);
    return { file, raw: raw as import('../cost/choosing.ts').BenchSummaryInput };
  });
  const set = results[0].raw.settings as { durationS: number; cold?: number; warm?: number };
  const benches = results.map((r) => `dais bench examples/${r.raw.model.name} --duration ${set.durationS}${set.cold ? ` --cold ${set.cold} --warm ${set.warm}` : ''} --out bench-results/${r.raw.model.name}`);
  const command = [...benches, `dais cost --readme ${results.map((r) => `--bench bench-results/${r.raw.model.name}/results.json`).join(' ')}`].join('\n');
  process.stdout.write(renderChoosingATarget(results, tables, command));
  return 0;
}

function check(tables: Map<string, PriceTable>, todayFlag: string | undefined, json: boolean): number {
  let today = new Date();
  if (todayFlag !== undefined) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(todayFlag)) throw new CliError(`--today must be YYYY-MM-DD, got '${todayFlag}'`);
    today = new Date(`${todayFlag}T00:00:00Z`);
  }
  const stale = stalePrices(tables, today);
  const total = [...tables.values()].reduce((n, t) => n + Object.keys(t.prices).length, 0);
  if (json) process.stdout.write(`${JSON.stringify({ today: today.toISOString().slice(0, 10), checked: total, stale }, null, 2)}\n`);
  else if (stale.length === 0) process.stdout.write(`all ${total} prices are dated within a year of ${today.toISOString().slice(0, 10)}\n`);
  else {
    let out = `${stale.length} of ${total} prices are more than a year old (today ${today.toISOString().slice(0, 10)}): re-check them and update data/prices\n`;
    for (const s of stale) out += `  ${s.service}.${s.key}  as of ${s.asOf} (${s.ageDays} days)  ${s.source}\n`;
    process.stdout.write(out);
  }
  return stale.length ? 1 : 0;
}

function usd(n: number): string {
  return `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

export function formatCost(p: TrafficProfile, region: string, targets: TargetCost[], breakEven: string[]): string {
  let out = `dais cost: ${p.requestsPerMonth.toLocaleString('en-US')} requests a month, ${p.durationMs} ms, ${p.memoryMb} MB, ${p.arch}, ` +
    `free tier ${p.freeTier ? 'on' : 'off'}, ${region}\n`;
  for (const [k, v] of Object.entries(p.provenance ?? {})) out += `  ${k} from ${v}\n`;
  const w = Math.max(...targets.map((t) => t.target.length));
  out += `\n  ${'target'.padEnd(w)}  ${'monthly'.padStart(12)}\n`;
  for (const t of [...targets].sort((a, b) => a.monthlyUsdExact - b.monthlyUsdExact)) out += `  ${t.target.padEnd(w)}  ${usd(t.monthlyUsd).padStart(12)}\n`;
  for (const t of targets) {
    out += `\n${t.target}: ${t.label} = ${usd(t.monthlyUsd)}\n  formula: ${t.formula}\n`;
    for (const l of t.lines) out += `  ${l.item}: ${l.formula}\n`;
    for (const n of t.notes) out += `  note: ${n}\n`;
  }
  out += '\nbreak-even, serverless vs always-on:\n';
  for (const b of breakEven) out += `  ${b}\n`;
  const seen = new Map<string, string>();
  for (const t of targets) for (const pr of t.prices) seen.set(`${pr.service}.${pr.key}`, `as of ${pr.asOf}  ${pr.source}`);
  out += '\nprices used:\n';
  for (const [k, v] of [...seen].sort()) out += `  ${k}  ${v}\n`;
  return out;
}
