// The memory a pod asks Kubernetes for comes from a measurement, not a guess: the very server the image runs
// (app/server.mjs from the build context, with this machine's onnxruntime-node) is started on the context's
// models in a child process; once it says it is ready (every model loaded and warmed up with zeros) it answers
// each model's largest sample request, then its peak resident set size is read from /proc (VmHWM, worker threads
// included). Requests and limits add headroom.
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ZEROS_LADDER, zerosRequest } from '../samples.ts';
import { contextDecodesImages, DAIS_ROOT, IMAGE_DECODER_PACKAGE } from './bundle.ts';
import { SERVER_FILE } from './dockerfile.ts';
import { onnxruntimeNodeDir, packageDir } from './oci/runtime-files.ts';

const MiB = 1024 * 1024;

export interface MemoryMeasurement {
  /** The whole run's peak: the larger of loadPeakRssBytes and answerPeakRssBytes. */
  peakRssBytes: number;
  /** VmHWM once ready: loading the models and their warm-up runs. */
  loadPeakRssBytes: number;
  /** VmRSS once ready, before the sample requests. */
  readyRssBytes: number;
  /**
   * The peak while the sample requests were answered, alone: VmHWM reset to the resident size once ready (writing 5
   * to /proc/<pid>/clear_refs), read after the answers. Undefined where the kernel refused the reset.
   */
  answerPeakRssBytes?: number;
  /** From spawning the process to its ready line. */
  readyMs: number;
  models: string[];
  /** The requests answered before the peak was read: a model's largest sample (requests/), else zeros at batch 1. */
  answered: { model: string; request: string; status: number; responseBytes: number }[];
}

/** A model's largest sample request file, per model name; models without one get a request of zeros. */
export type SampleFiles = ReadonlyMap<string, string>;

export interface MemoryResources {
  measuredPeakRssBytes: number;
  /** Kubernetes quantities, e.g. "320Mi". */
  request: string;
  limit: string;
  requestBytes: number;
  limitBytes: number;
}

/**
 * Request = 1.25 × peak (scheduling room for request bodies and output tensors), limit = 2 × peak (batches
 * and bursts before the kernel's OOM killer steps in), both rounded up to 16 MiB.
 */
export const REQUEST_FACTOR = 1.25;
export const LIMIT_FACTOR = 2;

export function memoryResources(peakRssBytes: number): MemoryResources {
  const round = (b: number) => Math.ceil(b / (16 * MiB)) * 16 * MiB;
  const requestBytes = round(peakRssBytes * REQUEST_FACTOR);
  const limitBytes = round(peakRssBytes * LIMIT_FACTOR);
  return { measuredPeakRssBytes: peakRssBytes, request: `${requestBytes / MiB}Mi`, limit: `${limitBytes / MiB}Mi`, requestBytes, limitBytes };
}

/** VmHWM ("high water mark") and VmRSS of a live process, in bytes. */
async function rssOf(pid: number): Promise<{ peak: number; now: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => {
    throw new Error('measuring memory reads /proc/<pid>/status: build the Kubernetes manifests on Linux');
  });
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+)\\s+kB$`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${key} line`);
    return Number(m[1]) * 1024;
  };
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

/** Resets a process's VmHWM to its resident size (Linux's clear_refs, value 5); false where that is refused. */
function resetPeak(pid: number): Promise<boolean> {
  return writeFile(`/proc/${pid}/clear_refs`, '5').then(
    () => true,
    () => false,
  );
}

/** Runs the context's server bundle on its models and returns its peak RSS once it is ready. */
export async function measureServingMemory(context: string, timeoutMs = 180_000, samples: SampleFiles = new Map()): Promise<MemoryMeasurement> {
  // The bundle finds onnxruntime-node beside itself, as in the image: a scratch app/ with node_modules links.
  const work = await mkdtemp(join(tmpdir(), 'dais-memory-'));
  try {
    await mkdir(join(work, 'app'));
    for (const f of await readdir(join(context, 'app'))) await copyFile(join(context, 'app', f), join(work, 'app', f));
    await mkdir(join(work, 'node_modules'));
    const ort = onnxruntimeNodeDir();
    await symlink(ort, join(work, 'node_modules', 'onnxruntime-node'));
    await symlink(packageDir(join(ort, 'package.json'), 'onnxruntime-common'), join(work, 'node_modules', 'onnxruntime-common'));
    // sharp's own requires (libvips, its dependencies) resolve from its real folder in dais' node_modules.
    if (contextDecodesImages(context)) await symlink(packageDir(join(DAIS_ROOT, 'package.json'), IMAGE_DECODER_PACKAGE), join(work, 'node_modules', IMAGE_DECODER_PACKAGE));
    return await runAndMeasure(join(work, 'app', SERVER_FILE), join(context, 'models'), timeoutMs, samples);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Sends each model its sample request and reads the whole answer: the peak a pod must hold includes decoding the
 * largest request and encoding its answer (all outputs, as JSON), not only the models at rest.
 */
async function answerSamples(url: string, models: string[], samples: SampleFiles): Promise<MemoryMeasurement['answered']> {
  const answered: MemoryMeasurement['answered'] = [];
  for (const model of models) {
    const file = samples.get(model);
    const post = (body: string) => fetch(`${url}/v2/models/${encodeURIComponent(model)}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    let res: Response;
    let request = file ?? 'zeros at batch 1';
    if (file) res = await post(await readFile(file, 'utf8'));
    else {
      const meta = await fetch(`${url}/v2/models/${encodeURIComponent(model)}`).then((r) => r.json() as Promise<{ inputs: { name: string; datatype: string; shape: number[] }[] }>);
      // Zeros of length 1 are refused by models that pad or window their input: longer ones are tried.
      for (const k of ZEROS_LADDER) {
        res = await post(JSON.stringify(zerosRequest(meta.inputs, k)));
        request = k === 1 ? 'zeros at batch 1' : `zeros, dynamic dimensions ${k}`;
        if (res.status === 200 || k === ZEROS_LADDER[ZEROS_LADDER.length - 1]) break;
        await res.arrayBuffer();
      }
    }
    const responseBytes = (await res!.arrayBuffer()).byteLength;
    answered.push({ model, request, status: res!.status, responseBytes });
  }
  return answered;
}

/**
 * The load's peak and resident size once ready, then the samples answered with VmHWM reset first: the answers' own
 * peak is measured alone (a load that left more garbage behind than an answer needs would otherwise hide it).
 */
async function measureAnswers(pid: number, url: string, models: string[], samples: SampleFiles): Promise<Omit<MemoryMeasurement, 'readyMs' | 'models'>> {
  const load = await rssOf(pid);
  const reset = await resetPeak(pid);
  const answered = await answerSamples(url, models, samples).catch((e: Error) => {
    throw new Error(`measuring memory: a sample request failed: ${e.message}`);
  });
  const end = await rssOf(pid);
  return { peakRssBytes: Math.max(load.peak, end.peak), loadPeakRssBytes: load.peak, readyRssBytes: load.now, answerPeakRssBytes: reset ? end.peak : undefined, answered };
}

function runAndMeasure(server: string, models: string, timeoutMs: number, samples: SampleFiles): Promise<MemoryMeasurement> {
  const t0 = performance.now();
  const p = spawn(process.execPath, [server, '--host', '127.0.0.1', '--port', '0', '--json', '--log-level', 'error'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', DAIS_MODEL_REPOSITORY: models },
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    let measured: MemoryMeasurement | undefined;
    let failure: Error | undefined;
    const stop = () => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    };
    const timer = setTimeout(() => {
      failure = new Error(`measuring memory: the server did not get ready on ${models} within ${timeoutMs / 1000} s`);
      p.kill('SIGKILL');
    }, timeoutMs);
    p.stderr.on('data', (d) => (err += d));
    p.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line || measured || failure) return;
      const ready = JSON.parse(line) as { url: string; models: Array<{ name: string }> };
      const readyMs = performance.now() - t0;
      const names = ready.models.map((m) => m.name);
      measureAnswers(p.pid!, ready.url, names, samples)
        .then((m) => (measured = { ...m, readyMs, models: names }))
        .catch((e: Error) => (failure = e))
        .finally(stop);
    });
    p.on('error', (e) => (failure ??= e));
    // Settled once the child is gone, so no server outlives the build.
    p.on('close', (code) => {
      clearTimeout(timer);
      if (measured) resolve(measured);
      else reject(failure ?? new Error(`measuring memory: the server exited (${code}) before it was ready: ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}
