import { CliError, intFlag, parseFlags, type Command } from './command.ts';

const help = `Usage: dais serve <model.onnx | model.h5 | repository-dir> [options]

Serves models over the Open Inference Protocol (v2) REST API, as KServe and Triton speak it.
A repository folder is laid out as <repo>/<model>/<version>/model.onnx; a single file is served as
model '<file name>' version 1.

Options:
  --port <n>          TCP port (default: $PORT or 8080; 0 picks a free port)
  --host <addr>       address to listen on (default: 127.0.0.1; use 0.0.0.0 to accept remote clients)
  --max-body-mb <n>   largest request body accepted, in MiB (default: 64); larger → 413
  --threads <n>       onnxruntime intra-op threads per model (default: onnxruntime's choice)
  --json              print the listening address and models as one JSON line once ready
  -h, --help          show this help

Endpoints: GET /v2/health/live, /v2/health/ready, /v2, /v2/models/{m}[/versions/{v}][/ready];
POST /v2/models/{m}[/versions/{v}]/infer (JSON, or binary tensors with Inference-Header-Content-Length).
`;

export const command: Command = {
  name: 'serve',
  summary: 'Serve a model or a model repository over the Open Inference Protocol (v2)',
  help,
  async run(argv) {
    const { values, positionals } = parseFlags('serve', argv, {
      port: { type: 'string' },
      host: { type: 'string' },
      'max-body-mb': { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length !== 1) throw new CliError('give exactly one model file or repository folder (see dais serve --help)');
    const port = intFlag('port', values.port ?? process.env.PORT, 8080, 0, 65535);
    const maxBodyMb = intFlag('max-body-mb', values['max-body-mb'], 64, 1, 4096);
    const threads = intFlag('threads', values.threads, 0, 0, 256);
    const { serve } = await import('../serve/index.ts');
    const log = (s: string) => {
      if (!values.json) process.stderr.write(s + '\n');
    };
    let running;
    try {
      running = await serve({
        model: positionals[0],
        host: values.host ?? '127.0.0.1',
        port,
        maxBodyBytes: maxBodyMb * 1024 * 1024,
        sessionOptions: threads ? { intraOpThreads: threads } : undefined,
        onLoad: (e) => {
          log(`loaded ${e.name} v${e.version} from ${e.path} in ${e.ms.toFixed(0)} ms`);
          for (const n of e.notes) log(`  note: ${n}`);
        },
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EADDRINUSE') throw new CliError(`port ${port} is already in use: pick another with --port`);
      throw new CliError((e as Error).message);
    }
    const models = running.repository.names().map((n) => ({ name: n, versions: running.repository.versionsOf(n) }));
    if (values.json) process.stdout.write(JSON.stringify({ url: running.url, port: running.port, models }) + '\n');
    else {
      log(`dais serving ${models.length} model${models.length === 1 ? '' : 's'} on ${running.url}`);
      log(`  try: curl ${running.url}/v2/models/${models[0]?.name}`);
    }
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        log(`${sig}: shutting down`);
        running.close().then(resolve, resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  },
};
