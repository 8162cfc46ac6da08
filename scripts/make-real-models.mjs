#!/usr/bin/env node
// Makes the real-scale example models into a cache folder, reproducibly, with the reference outputs the tests compare
// the served outputs with. They are too big for the repository (ResNet-50 alone is ~100 MB), so only this recipe is
// committed; `.ci/run` runs it before the tests, and tests skip (fail in CI) naming this script when it has not run.
//
//   node scripts/make-real-models.mjs [model ...]      (default: every model; DAIS_REAL_MODELS picks the folder)
//
// <cache>/repository is a model repository that `dais serve` serves as it is (<name>/1/model.onnx);
// <cache>/reference/<name>/ holds manifest.json (cases: named inputs and outputs with datatype, shape and a raw
// little-endian file) and the tensors. Where each reference comes from:
//   mobilenetv2, resnet50 (torchvision architectures), bert-mini (torch.nn.TransformerEncoder): torch's own eager
//     forward pass on fixed inputs (scripts/real-models/torch_models.py, Debian's /usr/bin/python3). No weights can
//     be downloaded here: the weights are torch's initialisation under a fixed seed.
//   silero-vad-v5, silero-vad-legacy (npm @ricky0123/vad-web), isnet (npm @imgly/background-removal-data, the
//     quint8 "small" model reassembled from its 4 MiB chunks): pre-trained files nobody here trained, so the
//     reference is onnxruntime-node run on them directly (no dais code in between), on fixed inputs made below.
//
// Idempotent: a model is rebuilt only when its recipe changed or a file no longer matches the sha256 recorded when it
// was made. Downloaded files are checked against pinned sha256 sums before use.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import '../bin/typescript.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const CACHE = resolve(process.env.DAIS_REAL_MODELS ?? join(homedir(), '.cache', 'dais', 'real-models'));
const PYTHON = process.env.DAIS_PYTHON ?? '/usr/bin/python3';
const TORCH_SCRIPT = join(ROOT, 'scripts', 'real-models', 'torch_models.py');

const VAD = { spec: '@ricky0123/vad-web@0.0.31', tarball: 'ricky0123-vad-web-0.0.31.tgz' };
const ISNET = { spec: '@imgly/background-removal-data@1.4.5', tarball: 'imgly-background-removal-data-1.4.5.tgz' };
// sha256 of the model files as published in those package versions (checked after extraction / reassembly).
const PINNED = {
  'silero-vad-v5': '2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f',
  'silero-vad-legacy': 'a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28',
  isnet: '7001d60734fdc112dd9c062635fb59cd401fb82a9d4213134bce4dbd655c803a',
};

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const log = (msg) => process.stderr.write(`make-real-models: ${msg}\n`);

// The project's seeded generator (mulberry32, src/bench/random.ts): the same inputs on every machine. This script
// runs under plain Node, so the TypeScript loader dais' CLI uses is registered (imported above) to import it.
const { seeded: random } = await import('../src/bench/random.ts');

/** `n` samples of a 16 kHz voice-like signal: two tones with a slow envelope plus seeded noise. */
function audio(n, seed, offset = 0) {
  const r = random(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const t = (i + offset) / 16000;
    const env = 0.5 + 0.5 * Math.sin(2 * Math.PI * 3 * t);
    out[i] = 0.3 * env * (Math.sin(2 * Math.PI * 220 * t) + 0.5 * Math.sin(2 * Math.PI * 660 * t)) + 0.02 * (r() - 0.5);
  }
  return out;
}

/** An RGB picture normalised as ISNet expects (mean 0.5, std 1): a bright disc on a graded background, plus noise. */
function picture(size, seed) {
  const r = random(seed);
  const out = new Float32Array(3 * size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const inDisc = (x - size * 0.5) ** 2 + (y - size * 0.45) ** 2 < (size * 0.28) ** 2;
      for (let c = 0; c < 3; c++) {
        const v = inDisc ? 0.85 - 0.1 * c : 0.15 + (0.5 * x) / size + 0.05 * c;
        out[c * size * size + y * size + x] = v + 0.04 * (r() - 0.5) - 0.5;
      }
    }
  }
  return out;
}

const DATATYPES = { float32: 'FP32', int64: 'INT64' };

function tensorBytes(data) {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Runs onnxruntime-node on each case and writes manifest.json and the tensors (the reference for pre-trained files). */
async function onnxruntimeReference(model, out, name, source, cases, outputNames) {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(model);
  const ref = join(out, 'reference');
  mkdirSync(ref, { recursive: true });
  const manifest = { model: name, source, cases: [] };
  const previous = {};
  for (const c of cases) {
    const inputs = c.inputs(previous);
    const feeds = Object.fromEntries(Object.entries(inputs).map(([n, t]) => [n, new ort.Tensor(t.type, t.data, t.dims)]));
    const results = await session.run(feeds, outputNames ?? session.outputNames);
    Object.assign(previous, results);
    const entry = { name: c.name, inputs: [], outputs: [] };
    for (const [n, t] of Object.entries(inputs)) {
      writeFileSync(join(ref, `${c.name}.${n}.bin`), tensorBytes(t.data));
      entry.inputs.push({ name: n, datatype: DATATYPES[t.type], shape: t.dims, file: `${c.name}.${n}.bin` });
    }
    for (const n of outputNames ?? session.outputNames) {
      const t = results[n];
      writeFileSync(join(ref, `${c.name}.out.${n}.bin`), tensorBytes(t.data));
      entry.outputs.push({ name: n, datatype: DATATYPES[t.type], shape: [...t.dims], file: `${c.name}.out.${n}.bin` });
    }
    manifest.cases.push(entry);
  }
  await session.release?.();
  writeFileSync(join(ref, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
}

/** `npm pack` into the downloads folder (npm checks the tarball against the registry's integrity); returns its path. */
function npmPack({ spec, tarball }) {
  const dir = join(CACHE, 'downloads');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, tarball);
  if (!existsSync(file)) {
    log(`npm pack ${spec}`);
    execFileSync('npm', ['pack', spec, '--silent', '--pack-destination', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return file;
}

function extract(tarball, members, into) {
  mkdirSync(into, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', into, ...members.map((m) => `package/${m}`)]);
}

function checkPinned(name, bytes) {
  const got = sha256(bytes);
  if (PINNED[name] && got !== PINNED[name]) throw new Error(`${name}: sha256 ${got}, expected ${PINNED[name]} (the published file changed?)`);
  return got;
}

const state = (dims, seedless = 0) => ({ type: 'float32', data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(seedless), dims });
const sr = { type: 'int64', data: BigInt64Array.from([16000n]), dims: [] };

function sileroCases(v5) {
  const frame = v5 ? 512 : 1536; // the frame sizes vad-web feeds each model at 16 kHz
  const stateInputs = (n, prev, first) =>
    v5 ? { state: first ? state([2, n, 128]) : prev.stateN } : { h: first ? state([2, n, 64]) : prev.hn, c: first ? state([2, n, 64]) : prev.cn };
  const batch = (n, seed, offset) => {
    const data = new Float32Array(n * frame);
    for (let i = 0; i < n; i++) data.set(audio(frame, seed + i, offset), i * frame);
    return { type: 'float32', data, dims: [n, frame] };
  };
  return [
    { name: 'frame-1', inputs: () => ({ input: batch(1, 1, 0), ...stateInputs(1, {}, true), sr }) },
    // The next frame with the state the first one returned: the stateful use the model is made for.
    { name: 'frame-2', inputs: (prev) => ({ input: batch(1, 1, frame), ...stateInputs(1, prev, false), sr }) },
    { name: 'batch-2', inputs: () => ({ input: batch(2, 7, 0), ...stateInputs(2, {}, true), sr }) },
  ];
}

const RECIPES = {
  mobilenetv2: torchRecipe('mobilenetv2'),
  resnet50: torchRecipe('resnet50'),
  'bert-mini': torchRecipe('bert-mini'),
  'silero-vad-v5': sileroRecipe('silero-vad-v5', 'silero_vad_v5.onnx', true),
  'silero-vad-legacy': sileroRecipe('silero-vad-legacy', 'silero_vad_legacy.onnx', false),
  isnet: {
    key: () => `${ISNET.spec} models/small ${PINNED.isnet} ${sha256(readFileSync(fileURLToPath(import.meta.url)))}`,
    async make(out) {
      const tarball = npmPack(ISNET);
      const tmp = join(out, '.package');
      extract(tarball, ['dist'], tmp);
      const dist = join(tmp, 'package', 'dist');
      const resource = JSON.parse(readFileSync(join(dist, 'resources.json'), 'utf8'))['/models/small'];
      const model = Buffer.alloc(resource.size);
      for (const chunk of resource.chunks) {
        const bytes = readFileSync(join(dist, chunk.hash));
        if (sha256(bytes) !== chunk.hash) throw new Error(`isnet: chunk ${chunk.hash} does not match its sha256`);
        if (bytes.length !== chunk.offsets[1] - chunk.offsets[0]) throw new Error(`isnet: chunk ${chunk.hash} has ${bytes.length} bytes`);
        bytes.copy(model, chunk.offsets[0]);
      }
      checkPinned('isnet', model);
      rmSync(tmp, { recursive: true, force: true });
      writeFileSync(join(out, 'model.onnx'), model);
      await onnxruntimeReference(join(out, 'model.onnx'), out, 'isnet', `onnxruntime-node on ${ISNET.spec} dist/ models/small (quint8)`, [
        { name: 'batch-1', inputs: () => ({ input: { type: 'float32', data: picture(1024, 3), dims: [1, 3, 1024, 1024] } }) },
        // The mask; the twelve other outputs (side outputs of the decoder stages, 130 MB) are not kept.
      ], ['output']);
    },
  },
};

function torchRecipe(name) {
  return {
    key: () => `${name} ${sha256(readFileSync(TORCH_SCRIPT))}`,
    async make(out) {
      execFileSync(PYTHON, [TORCH_SCRIPT, name, out], { stdio: ['ignore', 'inherit', 'inherit'] });
    },
  };
}

function sileroRecipe(name, file, v5) {
  return {
    key: () => `${VAD.spec} ${file} ${PINNED[name]} ${sha256(readFileSync(fileURLToPath(import.meta.url)))}`,
    async make(out) {
      const tmp = join(out, '.package');
      extract(npmPack(VAD), [`dist/${file}`], tmp);
      const bytes = readFileSync(join(tmp, 'package', 'dist', file));
      checkPinned(name, bytes);
      rmSync(tmp, { recursive: true, force: true });
      writeFileSync(join(out, 'model.onnx'), bytes);
      await onnxruntimeReference(join(out, 'model.onnx'), out, name, `onnxruntime-node on ${VAD.spec} dist/${file}`, sileroCases(v5));
    },
  };
}

function filesUnder(dir) {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

/** The files a made model consists of, with their sha256. */
function checksums(name) {
  const sums = { [`repository/${name}/1/model.onnx`]: sha256(readFileSync(join(CACHE, 'repository', name, '1', 'model.onnx'))) };
  const ref = join(CACHE, 'reference', name);
  for (const f of filesUnder(ref)) sums[relative(CACHE, join(ref, f))] = sha256(readFileSync(join(ref, f)));
  return sums;
}

function upToDate(name, key) {
  const stampFile = join(CACHE, 'stamps', `${name}.json`);
  if (!existsSync(stampFile)) return false;
  const stamp = JSON.parse(readFileSync(stampFile, 'utf8'));
  if (stamp.key !== key) return false;
  for (const [file, sum] of Object.entries(stamp.files)) {
    if (!existsSync(join(CACHE, file)) || sha256(readFileSync(join(CACHE, file))) !== sum) return false;
  }
  return true;
}

async function make(name) {
  const recipe = RECIPES[name];
  const key = recipe.key();
  if (upToDate(name, key)) {
    log(`${name}: cached`);
    return;
  }
  log(`${name}: making`);
  const t0 = Date.now();
  const staging = join(CACHE, `.staging-${name}-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    await recipe.make(staging);
    // Moved into place only when complete, so a crash never leaves a half-written model that looks made.
    rmSync(join(CACHE, 'repository', name), { recursive: true, force: true });
    rmSync(join(CACHE, 'reference', name), { recursive: true, force: true });
    mkdirSync(join(CACHE, 'repository', name, '1'), { recursive: true });
    mkdirSync(join(CACHE, 'reference'), { recursive: true });
    renameSync(join(staging, 'model.onnx'), join(CACHE, 'repository', name, '1', 'model.onnx'));
    renameSync(join(staging, 'reference'), join(CACHE, 'reference', name));
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  mkdirSync(join(CACHE, 'stamps'), { recursive: true });
  writeFileSync(join(CACHE, 'stamps', `${name}.json`), JSON.stringify({ key, files: checksums(name) }, null, 1) + '\n');
  const mb = statSync(join(CACHE, 'repository', name, '1', 'model.onnx')).size / 1e6;
  log(`${name}: made in ${((Date.now() - t0) / 1000).toFixed(1)} s (model.onnx ${mb.toFixed(1)} MB)`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2);
  for (const n of names) if (!RECIPES[n]) throw new Error(`unknown model '${n}': ${Object.keys(RECIPES).join(', ')}`);
  for (const n of names.length ? names : Object.keys(RECIPES)) await make(n);
  // The downloads are only needed to make the models; the largest (ISNet's package) is 136 MB.
  rmSync(join(CACHE, 'downloads'), { recursive: true, force: true });
  log(`ready: dais serve ${join(CACHE, 'repository')}`);
}
