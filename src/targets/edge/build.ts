// `dais build --target edge` as a library call: checks the model(s), the memory budget and the output folder, then
// writes a browser or device bundle. The CLI (src/cli/build-edge.ts), the tests and the benches use it.
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildBrowserBundle, checkBrowserModel, type BrowserBuildReport } from './browser-bundle.ts';
import { buildDeviceBundle, checkDeviceModels, DEVICE_PLATFORMS, type DevicePlatform, type DeviceBuildReport } from './device-bundle.ts';
import { checkMemoryBudget, type MemoryReport } from './memory-budget.ts';
import { EdgeBuildError, loadModelSources } from './model-source.ts';

export const PLATFORMS = ['browser', ...DEVICE_PLATFORMS] as const;
export type EdgePlatform = (typeof PLATFORMS)[number];

function checkOut(out: string, force: boolean): void {
  const dir = resolve(out);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !force) {
    throw new EdgeBuildError(`--out ${out} is not empty; choose another folder or pass --force to replace its contents`);
  }
}

function prepareOut(out: string, force: boolean): string {
  checkOut(out, force);
  const dir = resolve(out);
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    for (const e of readdirSync(dir)) rmSync(resolve(dir, e), { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface EdgeBuildResult {
  build: BrowserBuildReport | DeviceBuildReport;
  memory?: MemoryReport;
}

export interface EdgeBuildOptions {
  platform: EdgePlatform;
  out: string;
  /** Replace the contents of a non-empty `out`. */
  force?: boolean;
  maxMemoryMb?: number;
  webgpu?: boolean;
  threads?: number;
  name?: string;
  requests?: string[];
  port?: number;
  host?: string;
}

/** The whole build as a library call (the CLI and the tests use it). The memory budget is checked before anything is written. */
export async function buildEdge(model: string, o: EdgeBuildOptions): Promise<EdgeBuildResult> {
  const browser = o.platform === 'browser';
  checkOut(o.out, o.force ?? false);
  const sources = await loadModelSources(model, { name: o.name, requests: o.requests, allowMany: !browser });
  // Every check runs before --out is touched: a refused build leaves the folder as it was.
  const browserCheck = browser ? await checkBrowserModel(sources[0]) : undefined;
  const deviceCheck = browser ? undefined : await checkDeviceModels(sources);
  let memory: MemoryReport | undefined;
  if (o.maxMemoryMb !== undefined) memory = await checkMemoryBudget(sources, { platform: o.platform, maxMemoryMb: o.maxMemoryMb, threads: o.threads });
  const outDir = prepareOut(o.out, o.force ?? false);
  const build = browser
    ? await buildBrowserBundle({ source: sources[0], outDir, webgpu: o.webgpu ?? false, threads: o.threads ?? 1, check: browserCheck })
    : await buildDeviceBundle({ sources, outDir, platform: o.platform as DevicePlatform, threads: o.threads, port: o.port ?? 8080, host: o.host, maxMemoryMb: o.maxMemoryMb, metadata: deviceCheck });
  return { build, memory };
}
