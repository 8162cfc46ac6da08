// Dispatch: `dais <command> ...`. Each command lives in its own file and is imported only when used,
// so `dais inspect` never pays for loading the server or the bundlers.
import { CliError, type Command } from './command.ts';
import { DAIS_VERSION } from '../core/version.ts';
import { UserError } from '../core/errors.ts';

/** Summaries kept here so `dais --help` loads no command; test/cli-help.test.ts checks each equals its command's own. */
export const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  inspect: { summary: 'Show a model\'s inputs, outputs, opsets, operators, parameters, size and sha256', load: () => import('./inspect.ts') },
  convert: { summary: 'Convert a Keras model (.h5, .keras) to ONNX', load: () => import('./convert.ts') },
  build: { summary: 'Build a deployable artefact: --target container | kserve | lambda | edge', load: () => import('./build.ts') },
  optimize: { summary: 'Quantize (int8, fp16) or prune a model, gated by measured accuracy', load: () => import('./optimize.ts') },
  serve: { summary: 'Serve a model or a model repository over the Open Inference Protocol (v2)', load: () => import('./serve.ts') },
  invoke: { summary: 'Run a built Lambda function locally (Runtime API emulator): REPORT lines, cold/warm timings', load: () => import('./invoke.ts') },
  bench: { summary: 'Benchmark every target side by side (server, limit, peer, Lambda, edge) into JSON, Markdown and HTML', load: () => import('./bench.ts') },
  cost: { summary: 'Monthly cost per target from measured latency and memory, with sourced, dated prices and break-even volumes', load: () => import('./cost.ts') },
  profile: { summary: 'Profile reference data (and the model\'s outputs on it) for drift monitoring: profile.json', load: () => import('./profile.ts') },
  log: { summary: 'Export the prediction log (SQLite) to JSON Lines or CSV', load: () => import('./log.ts') },
  monitor: { summary: 'Open the monitoring dashboard (throughput, latency, drift, live accuracy) of a running server', load: () => import('./monitor.ts') },
};

const VERSION = DAIS_VERSION;

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(width)}  ${v.summary}`);
  return `dais ${VERSION}: deploy a trained model as a container, a Lambda or an edge bundle, behind the Open Inference Protocol.

Usage: dais <command> [options]      (dais <command> --help for its options)

Commands:
${lines.join('\n')}
`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 1;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`dais: unknown command '${name}'. Run 'dais --help' for the list.\n`);
    return 1;
  }
  const { command } = await entry.load();
  try {
    if (rest.includes('--help') || rest.includes('-h')) {
      const help = (await command.helpFor?.(rest)) ?? command.help;
      process.stdout.write(help.endsWith('\n') ? help : help + '\n');
      return 0;
    }
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UserError) {
      process.stderr.write(`dais ${name}: ${e.message}\n`);
      return e.exitCode;
    }
    const err = e as Error & { code?: string };
    process.stderr.write(`dais ${name}: ${err.code ? `${err.code}: ` : ''}${err.message}\n`);
    if (process.env.DAIS_DEBUG) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}
