// `dais build <model> --target <container|lambda|edge|kserve> ...`: each target owns its flags and its builder
// (src/cli/build-<target>.ts exports `FLAGS`, `help` and `runBuild(model, argv)`), so this file only dispatches.
import { existsSync } from 'node:fs';
import { booleanFlags, CliError, type Command } from './command.ts';

type Flags = Readonly<Record<string, { type: string }>>;
type Target = { runBuild(model: string, argv: string[]): Promise<number>; help: string; FLAGS: Flags };

/**
 * The model argument among a target's flags, wherever it stands: a word that is not the value of a flag
 * (`--out dist model.onnx` and `model.onnx --out dist` both work). Prefers a word naming an existing path.
 * The target's flag table says which flags take no value; any other flag (--quantize too) takes the next word.
 */
export function findModelArg(argv: readonly string[], flags: Flags): string | undefined {
  const noValue = booleanFlags(flags);
  const candidates: string[] = [];
  for (let j = 0; j < argv.length; j++) {
    const a = argv[j];
    if (a.startsWith('-')) {
      const name = a.replace(/^-+/, '');
      if (!a.includes('=') && !noValue.has(name) && name !== 'help' && name !== 'h') j++; // skip the flag's value
      continue;
    }
    candidates.push(a);
  }
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

const TARGETS: Record<string, { summary: string; load: () => Promise<Target> }> = {
  // Each target adds its line here when it lands.
  lambda: { summary: 'AWS Lambda function: bundled handler + model + one arch\'s onnxruntime → function.zip, SAM template, Dockerfile', load: () => import('./build-lambda.ts') },
  edge: { summary: 'Browser static site (onnxruntime-web, SDK, demo page) or Linux device bundle (server, systemd unit)', load: () => import('./build-edge.ts') },
  kserve: { summary: 'KServe serving runtime: ServingRuntime/ClusterServingRuntime, InferenceService, HPA/KEDA on queue length, runtime image, modelcar', load: () => import('./build-kserve.ts') },
  container: { summary: 'Dockerfile build context, OCI image archive (no Docker needed), Kubernetes/KServe manifests', load: () => import('./build-container.ts') },
};

function help(): string {
  const lines = Object.entries(TARGETS).map(([k, v]) => `  ${k.padEnd(10)} ${v.summary}`);
  return `Usage: dais build <model.onnx | model.h5 | repository-dir> --target <target> --out <dir> [target options]

Builds a deployable artefact from one model (or a model repository).

Targets:
${lines.join('\n') || '  (none yet)'}

Run 'dais build --target <target> --help' for a target's options.

Every target also takes --quantize int8-weights|int8-dynamic|fp16 or --prune-trees <n|auto>, with
[--eval <data.json>] [--max-drop 0.01]: the model is optimized first (as 'dais optimize' does) and nothing is
built when the accuracy gate refuses it.
`;
}

export const command: Command = {
  name: 'build',
  summary: 'Build a deployable artefact: --target container | kserve | lambda | edge',
  get help() {
    return help();
  },
  // `dais build --target <t> --help` is the target's own help.
  async helpFor(argv) {
    return argv.some((a) => a === '--target' || a.startsWith('--target=')) ? (await target(argv)).mod.help : undefined;
  },
  async run(argv) {
    const { mod, rest } = await target(argv);
    const model = findModelArg(rest, mod.FLAGS);
    if (!model) throw new CliError('give the model file or repository folder to build (see dais build --help)');
    if (rest.some((a) => /^--(quantize|prune-trees)(=|$)/.test(a))) {
      // dais build --quantize: optimize first (src/optimize/build-step.ts), then build from the optimized copy.
      const { quantizeForBuild } = await import('../optimize/build-step.ts');
      const q = await quantizeForBuild(model, withoutModel(rest, model));
      for (const n of q.notes ?? []) process.stderr.write(`dais build: ${n}\n`);
      try {
        return await mod.runBuild(q.model, q.argv);
      } finally {
        await q.cleanup();
      }
    }
    return mod.runBuild(model, withoutModel(rest, model));
  },
};

/** The --target's module, and the arguments without --target. */
async function target(argv: readonly string[]): Promise<{ mod: Target; rest: string[] }> {
  const i = argv.findIndex((a) => a === '--target' || a.startsWith('--target='));
  if (i === -1) throw new CliError(`--target is required: one of ${Object.keys(TARGETS).join(', ') || '(none yet)'}`);
  const name = argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
  const rest = argv.filter((_, j) => j !== i && !(j === i + 1 && !argv[i].includes('=')));
  const entry = name ? TARGETS[name] : undefined;
  if (!entry) throw new CliError(`unknown --target '${name ?? ''}': use one of ${Object.keys(TARGETS).join(', ')}`);
  return { mod: await entry.load(), rest };
}

function withoutModel(argv: readonly string[], model: string): string[] {
  const i = argv.indexOf(model);
  return argv.filter((_, j) => j !== i);
}
