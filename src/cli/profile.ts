// `dais profile <model> --data <file>`: the reference profile live drift is measured against.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { byVersion, isVersionFolder } from '../layout/repository.ts';
import { CliError, flags, intFlag, parseFlags, type Command } from './command.ts';

const HELP = `Usage: dais profile <model> --data <file.csv | file.jsonl | file.npy | heldout.json> [options]

Profiles reference data (usually training or held-out data) for drift monitoring: per input feature its type
(numeric or categorical), quantile bins with their counts, an equal-width histogram, mean, standard deviation,
missing rate and a sorted sample for the Kolmogorov–Smirnov test; then runs the model on the same rows and
profiles every output the same way. With a label column it also records how the model scored (accuracy, or
MAE for regression), which the drift report shows beside live accuracy from feedback.

<model> is a model file, a version folder (<repo>/<model>/<version>) or a model folder (its highest version).
The profile is written beside the model file (<repo>/<model>/<version>/profile.json) unless --out says
otherwise; 'dais serve' picks it up from there and compares live traffic with it.

Data:
  .csv     header row; one column per element of the input row, in order (a one-input model), or one
           column per input named after it. A column named label/target/y (or --label) is the ground truth.
  .jsonl   one row per line: [values...] for a one-input model, or {"<input>": row, ..., "label": y}.
  .npy     an array [rows, ...row shape] for a one-input model (float32/64, int, uint8, bool).
  .json    the examples' held-out format: {"input": "<name>", "x": [row, ...], "y": [label, ...]}.

Options:
  --data <file>            reference data (required)
  --out <file>             where to write the profile (default: profile.json beside the model file)
  --label <column>         ground-truth column or key (default: label, target or y when present)
  --feature-names <names>  comma-separated names of the row's elements when the data has none (.npy, bare
                           JSONL arrays); default: the model's 'features' metadata property, if any
  --categorical <names>    comma-separated feature names to treat as categories (text columns, BYTES
                           inputs and integer features with ≤ 50 values are categories anyway)
  --task <t>               classification | regression, when the outputs do not say (default: from outputs)
  --version <v>            with a model folder: profile this version (default: the highest)
  --max-rows <n>           use at most the first n rows
  --max-features <n>       profile at most n elements per input/output row (default: 1024)
  --json                   print the profile's summary as JSON
  -h, --help               show this help
`;

function resolveModelFile(path: string, version: string | undefined): string {
  if (!existsSync(path)) throw new CliError(`model not found: ${path}`);
  if (statSync(path).isFile()) return path;
  const direct = join(path, 'model.onnx');
  if (existsSync(direct)) return direct;
  const versions = readdirSync(path)
    .filter((v) => isVersionFolder(v) && existsSync(join(path, v, 'model.onnx')))
    .sort(byVersion);
  if (version !== undefined) {
    if (!versions.includes(version)) throw new CliError(`${path} has no version ${version} with a model.onnx; versions: ${versions.join(', ') || '(none)'}`);
    return join(path, version, 'model.onnx');
  }
  if (!versions.length) throw new CliError(`${path} holds no model.onnx, directly or in a version folder`);
  return join(path, versions[versions.length - 1], 'model.onnx');
}

export const command: Command = {
  name: 'profile',
  summary: 'Profile reference data (and the model\'s outputs on it) for drift monitoring: profile.json',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('profile', argv, flags({ string: ['data', 'out', 'label', 'categorical', 'feature-names', 'task', 'version', 'max-rows', 'max-features'], boolean: ['json'] }));
    if (positionals.length !== 1) throw new CliError(`expected one model (file or folder), got ${positionals.length} (see 'dais profile --help')`);
    if (!values.data) throw new CliError('--data <file.csv|.jsonl|.npy> is required: the reference rows to profile');
    if (values.task !== undefined && values.task !== 'classification' && values.task !== 'regression') throw new CliError(`--task must be classification or regression, got '${values.task}'`);
    const maxRows = values['max-rows'] === undefined ? undefined : intFlag('max-rows', values['max-rows'], 0, 2);
    const maxFeatures = intFlag('max-features', values['max-features'], 1024, 1, 1 << 20);
    const modelFile = resolveModelFile(positionals[0], values.version);
    const { buildProfile, profilePathFor, writeProfile } = await import('../monitor/profile.ts');
    const profile = await buildProfile({
      model: modelFile,
      data: values.data,
      label: values.label,
      featureNames: values['feature-names']?.split(',').map((s) => s.trim()),
      categorical: values.categorical?.split(',').map((s) => s.trim()).filter(Boolean),
      task: values.task as 'classification' | 'regression' | undefined,
      maxRows,
      maxFeatures,
    });
    const out = values.out ?? profilePathFor(modelFile);
    await writeProfile(profile, out);
    const features = profile.inputs.flatMap((t) => t.features);
    const summary = {
      out,
      model: profile.model,
      version: profile.version,
      rows: profile.source.rows,
      features: features.map((f) => ({ name: f.name, kind: f.kind, missingRate: f.missingRate, ...(f.kind === 'numeric' ? { mean: f.mean, std: f.std } : { categories: Object.keys(f.categories).length }) })),
      outputs: profile.outputs.flatMap((t) => t.features.map((f) => ({ name: f.name, kind: f.kind }))),
      ...(profile.prediction ? { task: profile.prediction.task } : {}),
      ...(profile.reference ? { reference: profile.reference } : {}),
    };
    if (values.json) {
      process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
      return 0;
    }
    const lines = [`profiled ${profile.source.rows} rows of ${profile.source.file} for ${profile.model} version ${profile.version} → ${out}`];
    const width = Math.max(...features.map((f) => f.name.length), 7);
    for (const f of features.slice(0, 40)) {
      const stats = f.kind === 'numeric' ? `mean ${fmt(f.mean)}  std ${fmt(f.std)}  range ${fmt(f.min)}…${fmt(f.max)}` : `${Object.keys(f.categories).length} categories`;
      lines.push(`  ${f.name.padEnd(width)}  ${f.kind.padEnd(11)}  ${stats}${f.missing ? `  missing ${(f.missingRate * 100).toFixed(1)}%` : ''}`);
    }
    if (features.length > 40) lines.push(`  … and ${features.length - 40} more features`);
    lines.push(`  outputs: ${summary.outputs.map((o) => `${o.name} (${o.kind})`).join(', ')}`);
    if (profile.reference?.accuracy !== undefined) lines.push(`  model accuracy on these rows: ${(profile.reference.accuracy * 100).toFixed(1)}% (${profile.reference.rows} labelled)`);
    if (profile.reference?.mae !== undefined) lines.push(`  model MAE on these rows: ${fmt(profile.reference.mae)} (${profile.reference.rows} labelled)`);
    for (const t of [...profile.inputs, ...profile.outputs]) if (t.note) lines.push(`  note: ${t.name}: ${t.note}`);
    process.stdout.write(lines.join('\n') + '\n');
    return 0;
  },
};

function fmt(x: number): string {
  return Math.abs(x) >= 1000 || (Math.abs(x) < 0.01 && x !== 0) ? x.toPrecision(4) : String(Math.round(x * 1000) / 1000);
}
