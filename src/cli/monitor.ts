// `dais monitor <url>`: the monitoring dashboard for a server that runs elsewhere, served from this machine. The page
// and Chart.js come from here; the data is fetched from the server's /v2/monitor/series through this process, so
// the server needs no CORS and its bearer token never reaches the browser.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CliError, flags, intFlag, parseFlags, type Command } from './command.ts';

const HELP = `Usage: dais monitor <server-url> [options]

Serves the live monitoring dashboard of a running 'dais serve' (throughput, latency percentiles, per-feature
drift over time, live accuracy from feedback, shadow agreement) on this machine, reading the server's
/v2/monitor/series. The same page is at <server-url>/dashboard when the server runs with --dashboard.

Options:
  --port <n>           local port for the page (default: 8090; 0 picks a free port)
  --host <addr>        local address (default: 127.0.0.1)
  --auth-token <t>     bearer token of the server (default: $DAIS_AUTH_TOKEN)
  --refresh-ms <ms>    how often the page refreshes (default: 3000)
  --json               print {"url": ...} as one JSON line once listening
  -h, --help           show this help
`;

export const command: Command = {
  name: 'monitor',
  summary: 'Open the monitoring dashboard (throughput, latency, drift, live accuracy) of a running server',
  help: HELP,
  async run(argv) {
    const { values, positionals } = parseFlags('monitor', argv, flags({ string: ['port', 'host', 'auth-token', 'refresh-ms'], boolean: ['json'] }));
    if (positionals.length !== 1) throw new CliError(`give the server's URL, e.g. dais monitor http://127.0.0.1:8080 (see 'dais monitor --help')`);
    let base: URL;
    try {
      base = new URL(positionals[0]);
    } catch {
      throw new CliError(`'${positionals[0]}' is not a URL: give the server's address, e.g. http://127.0.0.1:8080`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new CliError(`the server URL must start with http:// or https://, got '${positionals[0]}'`);
    const port = intFlag('port', values.port, 8090, 0, 65535);
    const refreshMs = intFlag('refresh-ms', values['refresh-ms'], 3000, 250, 3_600_000);
    const token = values['auth-token'] ?? process.env.DAIS_AUTH_TOKEN;
    const seriesUrl = new URL('/v2/monitor/series', base).toString();
    const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
    const probe = await fetch(seriesUrl, { headers }).catch((e: Error) => {
      throw new CliError(`cannot reach ${base.origin}: ${(e.cause as Error | undefined)?.message ?? e.message}`);
    });
    if (probe.status === 401) throw new CliError(`${base.origin} wants a bearer token: give --auth-token (or DAIS_AUTH_TOKEN)`);
    if (probe.status === 404) throw new CliError(`${base.origin} has no /v2/monitor/series: is it 'dais serve' with monitoring on (not --no-monitor)?`);
    if (!probe.ok) throw new CliError(`${seriesUrl} answered ${probe.status}: ${(await probe.text()).slice(0, 200)}`);
    await probe.arrayBuffer();
    const { dashboardAsset, dashboardHtml } = await import('../monitor/dashboard.ts');
    const title = `dais — ${base.host}`;
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET') return void res.writeHead(405).end();
      if (path === '/' || path === '/dashboard' || path === '/dashboard/') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(dashboardHtml({ seriesUrl: '/v2/monitor/series', title, refreshMs }));
      } else if (path === '/dashboard/chart.umd.min.js') {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(dashboardAsset('chart.umd.min.js'));
      } else if (path === '/v2/monitor/series') {
        fetch(seriesUrl, { headers, signal: AbortSignal.timeout(10_000) }).then(
          async (r) => res.writeHead(r.status, { 'content-type': 'application/json' }).end(Buffer.from(await r.arrayBuffer())),
          (e: Error) => res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `cannot reach ${base.origin}: ${e.message}` })),
        );
      } else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `no page at ${path}; the dashboard is at /` }));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EADDRINUSE' ? new CliError(`port ${port} is already in use: pick another with --port`) : e));
      server.listen(port, values.host ?? '127.0.0.1', () => resolve());
    });
    const addr = server.address() as AddressInfo;
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const url = `http://${host}:${addr.port}/`;
    if (values.json) process.stdout.write(JSON.stringify({ url, server: base.origin }) + '\n');
    else process.stdout.write(`dashboard for ${base.origin}: ${url}  (Ctrl-C to stop)\n`);
    return await new Promise<number>((resolve) => {
      const stop = () => server.close(() => resolve(0));
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
  },
};
