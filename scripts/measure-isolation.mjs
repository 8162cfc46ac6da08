// What `dais serve --isolation process` costs (issue 22): per-request latency and CPU, and resident memory, against
// the default (`--isolation none`, and `--run-on worker` so the thread hand-off is priced apart), on the MLP example
// (JSON requests) and MobileNetV2 from scripts/make-real-models.mjs (binary requests). Sequential requests, one
// client; CPU is the server's and its children's (utime + stime from /proc), per request.
//   node scripts/measure-isolation.mjs [requests=300]
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = new URL('..', import.meta.url).pathname;
const N = Number(process.argv[2] ?? 300);
const TICK_MS = 10; // USER_HZ = 100 on Linux
const MODELS = [
  { name: 'mlp', file: join(ROOT, 'examples/mlp/1/model.onnx'), body: () => ({ body: readFileSync(join(ROOT, 'examples/mlp/requests/single.json')), headers: { 'content-type': 'application/json' } }) },
  {
    name: 'mobilenetv2',
    file: join(homedir(), '.cache/dais/real-models/repository/mobilenetv2/1/model.onnx'),
    body: (input) => {
      const data = new Float32Array(3 * 224 * 224).map((_, i) => ((i * 7919) % 255) / 255);
      const header = Buffer.from(JSON.stringify({ inputs: [{ name: input, shape: [1, 3, 224, 224], datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }] }));
      return { body: Buffer.concat([header, Buffer.from(data.buffer)]), headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) } };
    },
  },
];
const CONFIGS = [['--isolation', 'none'], ['--isolation', 'none', '--run-on', 'worker'], ['--isolation', 'process']];

function children(pid) {
  const out = [];
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(p));
    } catch {}
  }
  return out;
}
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').slice(readFileSync(`/proc/${pid}/stat`, 'utf8').lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
};
const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

for (const m of MODELS) {
  for (const config of CONFIGS) {
    const child = spawn(process.execPath, [join(ROOT, 'bin/dais.js'), 'serve', m.file, '--port', '0', '--json', '--no-monitor', '--log-level', 'error', ...config], { stdio: ['ignore', 'pipe', 'inherit'] });
    const { url } = JSON.parse(await new Promise((r) => createInterface({ input: child.stdout }).once('line', r)));
    const meta = await (await fetch(`${url}/v2/models/model`)).json();
    const { body, headers } = m.body(meta.inputs[0].name);
    const one = async () => {
      const r = await fetch(`${url}/v2/models/model/infer`, { method: 'POST', body, headers });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    };
    for (let i = 0; i < 30; i++) await one();
    const pids = [child.pid, ...children(child.pid).filter((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('-e'); } catch { return false; } })];
    const cpu0 = pids.reduce((s, p) => s + cpuMs(p), 0);
    const lat = [];
    for (let i = 0; i < N; i++) {
      const t = performance.now();
      await one();
      lat.push(performance.now() - t);
    }
    const cpu = (pids.reduce((s, p) => s + cpuMs(p), 0) - cpu0) / N;
    lat.sort((a, b) => a - b);
    const rss = pids.map(rssMiB);
    console.log(
      `${m.name.padEnd(12)} ${config.join(' ').padEnd(36)} p50 ${lat[N >> 1].toFixed(2)} ms  mean ${(lat.reduce((a, b) => a + b) / N).toFixed(2)} ms  ` +
        `CPU ${cpu.toFixed(2)} ms/request  RSS server ${rss[0].toFixed(0)} MiB${rss.length > 1 ? ` + child ${rss.slice(1).map((x) => x.toFixed(0)).join(', ')} MiB` : ''}`,
    );
    child.kill('SIGTERM');
    await new Promise((r) => child.on('exit', r));
  }
}
