// `dais bench <model>`: measure every target side by side; write JSON, Markdown and an HTML report with charts.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CliError, flags, intFlag, parseFlags, type Command } from './command.ts';

const HELP = `Usage: dais bench <model.onnx | example-dir> [--targets server,container,lambda,edge-node,edge-browser] [--duration s] [--out dir] [--json]

Measures the model on every target this checkout can build, in one run on this machine:
  server        dais serve under load from a separate autocannon process: concurrency sweep, p50/p95/p99,
                throughput, errors, peak RSS (VmHWM); JSON and binary request paths; batching off and on;
                beside it the limit (onnxruntime-node in process) and the peer (node:http + onnxruntime-node,
                one request one run), with dais/limit and dais/peer ratios
  container     the 'dais build --target container --image' OCI image: compressed and unpacked size per layer
  lambda        the 'dais build --target lambda' bundle, N cold + M warm invocations through 'dais invoke'
  edge-node     onnxruntime-web (WebAssembly) in Node
  edge-browser  the 'dais build --target edge' browser bundle in headless Chromium, and its sizes
A target that cannot run here is listed under "not measured" with the reason.

An example folder (examples/mlp) gives the model and its requests/; with a model file, give --request.

Options:
  --targets <list>            comma-separated (default: all five)
  --duration <s>              seconds per measured point (default: 3)
  --concurrency <list>        server sweep (default: 1,4,16,64)
  --cold <n> --warm <m>       Lambda invocations (default: 5 cold, 20 warm)
  --request <file.json>       the v2 request to send (default: the example's requests/single.json or first)
  --out <dir>                 write results.json, report.md and report.html there
  --requests-per-month <n>    volume for the report's cost table (default: 10,000,000; the break-even chart spans 1e5-1e10)
  --json                      print the result JSON on stdout (progress always goes to stderr)
  -h, --help                  show this help
`;

export const command: Command = {
  name: 'bench',
  summary: 'Benchmark every target side by side (server, limit, peer, Lambda, edge) into JSON, Markdown and HTML',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('bench', argv, flags({ string: ['targets', 'duration', 'concurrency', 'cold', 'warm', 'request', 'out', 'requests-per-month'], boolean: ['json'] }));
    if (positionals.length !== 1) throw new CliError(`give one model file or example folder (see 'dais bench --help')`);
    const { TARGETS, runBench } = await import('../bench/run.ts');
    const targets = (values.targets ?? TARGETS.join(',')).split(',').map((t) => t.trim()).filter(Boolean);
    for (const t of targets) if (!(TARGETS as readonly string[]).includes(t)) throw new CliError(`--targets: unknown target '${t}'; choose from ${TARGETS.join(', ')}`);
    const durationS = Number(values.duration ?? 3);
    if (!Number.isFinite(durationS) || durationS <= 0 || durationS > 600) throw new CliError(`--duration must be seconds from 0 to 600, got '${values.duration}'`);
    const concurrency = (values.concurrency ?? '1,4,16,64').split(',').map((c) => intFlag('concurrency', c.trim(), 1, 1, 1024));
    const requestsPerMonth = Number(values['requests-per-month'] ?? 10_000_000);
    if (!Number.isFinite(requestsPerMonth) || requestsPerMonth <= 0) throw new CliError(`--requests-per-month must be a positive number, got '${values['requests-per-month']}'`);
    const progress = (line: string) => process.stderr.write(`${line}\n`);
    const result = await runBench({
      model: positionals[0],
      request: values.request,
      targets: targets as (typeof TARGETS)[number][],
      durationS,
      concurrency,
      cold: intFlag('cold', values.cold, 5, 1, 1000),
      warm: intFlag('warm', values.warm, 20, 0, 100_000),
      progress,
    });
    const cost = await costSection(result, requestsPerMonth);
    const { renderHtml, renderMarkdown } = await import('../bench/report.ts');
    const md = renderMarkdown(result, cost);
    if (values.out) {
      const dir = resolve(values.out);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
      writeFileSync(join(dir, 'report.md'), md);
      writeFileSync(join(dir, 'report.html'), renderHtml(result, cost));
      progress(`wrote ${join(dir, 'results.json')}, report.md, report.html`);
    }
    process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : md);
    return 0;
  },
};

/** Prices the measured result with `dais cost` for the report (memory, duration, throughput from the run). */
async function costSection(result: import('../bench/run.ts').BenchResult, requestsPerMonth: number) {
  const { measuredInputs } = await import('../cost/from-bench.ts');
  const { breakEvens, costCurves, estimateAll } = await import('../cost/estimate.ts');
  const { loadPriceTables } = await import('../cost/price-table.ts');
  const m = measuredInputs(result, 'this run');
  if (m.durationMs === undefined || m.memoryMb === undefined) return undefined;
  const tables = loadPriceTables();
  const profile = { ...m, durationMs: m.durationMs, memoryMb: m.memoryMb, requestsPerMonth, arch: 'x86_64' as const, freeTier: true, vcpu: 1 };
  return {
    requestsPerMonth,
    note: 'x86_64, free tiers on, us-east-1; Lambda memory and duration, server throughput and RSS as measured in this run (see inputs). Run `dais cost --bench results.json` for every formula and source.',
    inputs: m.provenance,
    targets: estimateAll(profile, tables),
    breakEven: breakEvens(profile, tables),
    curves: costCurves(profile, tables),
  };
}
