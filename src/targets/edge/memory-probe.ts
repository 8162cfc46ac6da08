// Entry of the child process that --max-memory measures (bundled by memory-budget.ts, run with plain node so no
// TypeScript loader inflates the figure): loads the models on the target's runtime the way the bundle would, runs
// each sample request a few times (the first run allocates the runtime's arenas), and prints peak resident memory.
import { readFileSync } from 'node:fs';
import { requestFromJson, type InferenceRequest } from '../../core/index.ts';
import type { Backend } from '../../runtime/backend.ts';
import { ServedModelVersion } from '../../runtime/served-model.ts';
import { zerosRequest } from '../samples.ts';

export interface ProbeConfig {
  runtime: 'onnxruntime-node' | 'onnxruntime-web';
  threads?: number;
  models: { name: string; path: string; requests: string[] }[];
}

export interface ProbeResult {
  /** Peak resident set size of the whole process, bytes (VmHWM). */
  maxRssBytes: number;
  /** Resident set size once every model was loaded, before any request. */
  loadedRssBytes: number;
  runs: number;
}

const RUNS_PER_REQUEST = 3;

/**
 * Peak resident memory of this process since it started. getrusage's maxrss is no good here: Linux keeps it across
 * exec, so a child spawned from a large parent reports the parent's size. VmHWM belongs to the new image only.
 */
export function peakRssBytes(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}

function zeros(model: ServedModelVersion): InferenceRequest {
  return requestFromJson(zerosRequest(model.metadata().inputs));
}

async function main(): Promise<void> {
  const config = JSON.parse(readFileSync(process.argv[2], 'utf8')) as ProbeConfig;
  const backend: Backend =
    config.runtime === 'onnxruntime-web'
      ? (await import('../../runtime/onnxruntime-web.ts')).createOnnxruntimeWebBackend({ numThreads: config.threads ?? 1 })
      : (await import('../../runtime/onnxruntime-node.ts')).onnxruntimeNode;
  const models: { model: ServedModelVersion; requests: string[] }[] = [];
  for (const m of config.models) {
    const model = await ServedModelVersion.load(new Uint8Array(readFileSync(m.path)), {
      name: m.name,
      version: '1',
      backend,
      sessionOptions: config.threads ? { intraOpThreads: config.threads } : undefined,
    });
    models.push({ model, requests: m.requests });
  }
  const loadedRssBytes = process.memoryUsage().rss;
  let runs = 0;
  for (const { model, requests } of models) {
    const bodies = requests.length ? requests.map((p) => requestFromJson(JSON.parse(readFileSync(p, 'utf8')))) : [zeros(model)];
    for (const body of bodies) {
      for (let i = 0; i < RUNS_PER_REQUEST; i++) {
        await model.infer(body);
        runs++;
      }
    }
  }
  const result: ProbeResult = { maxRssBytes: peakRssBytes(), loadedRssBytes, runs };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const { model } of models) await model.dispose();
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
