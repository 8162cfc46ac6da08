// Big request buffers are freed the moment their last reader is done (src/runtime/give-back.ts, InferEvent.hold), not
// when V8 next collects. What could go wrong is a reader finding them freed (empty): the monitor reads a request's
// inputs 20 ms after its answer (the prediction log), the payload logger when it gets to its queue, a shadow run
// after the primary answered (and the monitor reads its result later still). A real `dais serve` with all of them
// gets big binary and JSON requests; each reader must see every value that was sent, and the answers must equal those
// of the same rows sent one at a time.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, it } from 'node:test';
import { DatabaseSync as Database } from '@photostructure/sqlite';
import { createModel, writeOnnx } from '../src/formats/onnx/onnx.ts';
import { node, tensor, valueInfo } from '../src/formats/onnx/graph.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';

const tmp = mkdtempSync(join(tmpdir(), 'dais-give-back-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `dais serve <repo> <args>` as a child process, once ready: its URL, and the child to stop. */
async function startDais(repo: string, args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'dais.js'), 'serve', repo, '--port', '0', '--json', '--log-level', 'warn', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', () => reject(new Error(`dais serve exited: ${stderr}`)));
  });
  const url = JSON.parse(first).url as string;
  for (let i = 0; i < 200 && (await fetch(url + '/v2/health/ready')).status !== 200; i++) await sleep(100);
  return { url, child };
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

/** y = x + 0 for [rows, 1024] FP32: 64 rows answer 256 KiB. */
function echoModel(): Uint8Array {
  return writeOnnx(
    createModel({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: { name: 'echo', node: [node('Add', ['x', 'zero'], ['y'])], initializer: [tensor('zero', [1], Float32Array.of(0))], input: [valueInfo('x', 1, [-1, 1024])], output: [valueInfo('y', 1, [-1, 1024])] },
    }),
  );
}

/** The payload log's sink: CloudEvents in binary mode, each event's body as sent. */
async function payloadSink(): Promise<{ logged: { type: string; id: string; body: string }[]; sink: import('node:http').Server }> {
  const logged: { type: string; id: string; body: string }[] = [];
  const sink = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      logged.push({ type: String(req.headers['ce-type']), id: String(req.headers['ce-id']), body });
      res.end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  return { logged, sink };
}

/** The prediction log's rows for request ids starting with `prefix`, once `count` are written (or 5 s have passed). */
async function predictionRows<T>(db: string, columns: string, prefix: string, count: number): Promise<T[]> {
  let rows: T[] = [];
  for (let i = 0; i < 100; i++) {
    await sleep(50);
    try {
      const sqlite = new Database(db, { readOnly: true });
      rows = sqlite.prepare(`SELECT ${columns} FROM predictions WHERE request_id LIKE '${prefix}%'`).all() as unknown as T[];
      sqlite.close();
    } catch {
      rows = []; // not written yet
    }
    if (rows.length === count) break;
  }
  return rows;
}

const ROWS = 30; // 30 × 784 FP32 = 94 KB: over the 64 KiB from which buffers are freed
const values = Float32Array.from({ length: ROWS * 784 }, (_, i) => Math.fround(((i * 7919) % 1000) / 1000));

function binaryRequest(rows: Float32Array, n: number): { body: Buffer; headerLength: number } {
  const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [n, 784], datatype: 'FP32', parameters: { binary_data_size: rows.byteLength } }] }));
  return { body: Buffer.concat([header, Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength)]), headerLength: header.length };
}

describe('big request buffers freed after their last reader', () => {
  it('the prediction log, the payload log and the answers see every value of big binary and JSON requests', async () => {
    const { logged, sink } = await payloadSink();
    const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`;
    const db = join(tmp, 'predictions.sqlite');
    // The MLP example as version 1, served, and the same network as version 2, shadowing it.
    const repo = join(tmp, 'repo');
    for (const v of ['1', '2']) {
      mkdirSync(join(repo, 'mlp', v), { recursive: true });
      copyFileSync(join(EXAMPLES_DIR, 'mlp', '1', 'model.onnx'), join(repo, 'mlp', v, 'model.onnx'));
    }
    writeFileSync(join(repo, 'mlp', 'config.json'), JSON.stringify({ traffic: { '1': 1 }, shadow: '2' }));
    const { url, child } = await startDais(repo, ['--log-db', db, '--log-url', sinkUrl]);
    try {
      const infer = `${url}/v2/models/mlp/infer`;

      // Each row alone (small requests: nothing freed), for the answers to compare with.
      const single: number[][] = [];
      for (let r = 0; r < ROWS; r++) {
        const res = await fetch(infer, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 784], datatype: 'FP32', data: Array.from(values.subarray(r * 784, (r + 1) * 784)) }] }) });
        assert.equal(res.status, 200);
        single.push(((await res.json()) as { outputs: { data: number[] }[] }).outputs[0].data);
      }

      const bin = binaryRequest(values, ROWS);
      const sent: { id: string; kind: string }[] = [];
      for (let k = 0; k < 6; k++) {
        const kind = k % 2 === 0 ? 'binary' : 'json';
        const id = `big-${k}`;
        const res =
          kind === 'binary'
            ? await fetch(infer, { method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(bin.headerLength), 'x-request-id': id }, body: new Uint8Array(bin.body) })
            : await fetch(infer, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': id }, body: JSON.stringify({ inputs: [{ name: 'input', shape: [ROWS, 784], datatype: 'FP32', data: Array.from(values) }] }) });
        assert.equal(res.status, 200, await res.clone().text());
        const out = ((await res.json()) as { outputs: { data: number[] }[] }).outputs[0].data;
        for (let r = 0; r < ROWS; r++) {
          for (let c = 0; c < 10; c++) assert.ok(Math.abs(out[r * 10 + c] - single[r][c]) <= 1e-6, `${kind} request ${id}: row ${r} answers as when sent alone`);
        }
        sent.push({ id, kind });
      }

      // The payload log: each big request's event carries every value.
      for (let i = 0; i < 100 && logged.filter((l) => l.id.startsWith('big-') && l.type.endsWith('request')).length < sent.length; i++) await sleep(50);
      for (const { id, kind } of sent) {
        const ev = logged.find((l) => l.id === id && l.type.endsWith('request'));
        assert.ok(ev, `payload log has request ${id}`);
        const data = (JSON.parse(ev.body) as { inputs: { data: number[] }[] }).inputs[0].data;
        assert.equal(data.length, values.length, `${kind} ${id}: every value logged`);
        assert.ok(data.every((v, i) => v === values[i]), `${kind} ${id}: the values sent`);
      }

      // The prediction log (written by the monitor's drain, after the answers): every value of every request.
      // The shadow's records too: the monitor reads the shadow's result after the primary's answer.
      const rows = await predictionRows<{ request_id: string; role: string; inputs: string }>(db, 'request_id, role, inputs', 'big-', 2 * sent.length);
      assert.equal(rows.filter((r) => r.role === 'primary').length, sent.length, 'every big request is in the prediction log');
      assert.equal(rows.filter((r) => r.role === 'shadow').length, sent.length, 'and its shadow run');
      for (const row of rows) {
        const data = (JSON.parse(row.inputs) as Record<string, { data: number[] }>).input.data;
        assert.equal(data.length, values.length);
        assert.ok(data.every((v, i) => v === values[i]), `prediction log ${row.role} ${row.request_id}: the values sent (a freed buffer reads as nulls)`);
      }
    } finally {
      await stop(child);
      sink.close();
    }
  });
});

describe('big answers freed after their last reader', () => {
  it('the answers, the payload log, the prediction log and a shadow comparison see every output value', async () => {
    // y = x + 0 for [rows, 1024] FP32, as version 1 (served) and version 2 (its shadow): 64 rows answer 256 KiB, an
    // output the server frees once the answer is encoded and every observer has let go (core/v2-app.ts); the shadow
    // comparison, which reads the primary's answer later, has its own copy (serve/traffic.ts).
    const model = echoModel();
    const repo = join(tmp, 'echo-shadow-repo');
    for (const v of ['1', '2']) {
      mkdirSync(join(repo, 'echo', v), { recursive: true });
      writeFileSync(join(repo, 'echo', v, 'model.onnx'), model);
    }
    writeFileSync(join(repo, 'echo', 'config.json'), JSON.stringify({ traffic: { '1': 1 }, shadow: '2' }));
    const { logged, sink } = await payloadSink();
    const db = join(tmp, 'answers.sqlite');
    const { url, child } = await startDais(repo, ['--log-db', db, '--log-url', `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`]);
    const rows = 64;
    const xOf = (k: number) => Float32Array.from({ length: rows * 1024 }, (_, i) => Math.fround(((i * 31 + k) % 1009) / 1009));
    try {
      const sent: { id: string; k: number }[] = [];
      for (let k = 0; k < 6; k++) {
        const x = xOf(k);
        const id = `answer-${k}`;
        let y: Float32Array;
        if (k % 2 === 0) {
          const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [rows, 1024], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], parameters: { binary_data_output: true } }));
          const res = await fetch(`${url}/v2/models/echo/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length), 'x-request-id': id },
            body: new Uint8Array(Buffer.concat([header, Buffer.from(x.buffer)])),
          });
          assert.equal(res.status, 200);
          const bytes = new Uint8Array(await res.arrayBuffer());
          y = new Float32Array(bytes.slice(Number(res.headers.get('inference-header-content-length'))).buffer);
        } else {
          const res = await fetch(`${url}/v2/models/echo/infer`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': id }, body: JSON.stringify({ inputs: [{ name: 'x', shape: [rows, 1024], datatype: 'FP32', data: Array.from(x) }] }) });
          assert.equal(res.status, 200);
          y = Float32Array.from(((await res.json()) as { outputs: { data: number[] }[] }).outputs[0].data);
        }
        assert.ok(y.length === x.length && y.every((v, i) => v === x[i]), `answer ${id}: every value sent back`);
        sent.push({ id, k });
      }

      // The payload log's response events, encoded from the outputs when its queue gets to them.
      for (let i = 0; i < 100 && logged.filter((l) => l.id.startsWith('answer-') && l.type.endsWith('response')).length < sent.length; i++) await sleep(50);
      for (const { id, k } of sent) {
        const ev = logged.find((l) => l.id === id && l.type.endsWith('response'));
        assert.ok(ev, `payload log has the response to ${id}`);
        const data = (JSON.parse(ev.body) as { outputs: { data: number[] }[] }).outputs[0].data;
        const x = xOf(k);
        // FP32 in JSON is written as the shortest decimal that reads back as the same float32 (json-float.ts).
        assert.ok(data.length === x.length && data.every((v, i) => Math.fround(v) === x[i]), `payload log ${id}: every output value`);
      }

      // The prediction log's outputs (the monitor's drain, after the answers), the primary's and the shadow's.
      const records = await predictionRows<{ request_id: string; role: string; outputs: string }>(db, 'request_id, role, outputs', 'answer-', 2 * sent.length);
      assert.equal(records.length, 2 * sent.length, 'every answer and its shadow run in the prediction log');
      for (const r of records) {
        const x = xOf(Number(r.request_id.slice('answer-'.length)));
        const data = (JSON.parse(r.outputs) as Record<string, { data: number[] }>).y.data;
        assert.ok(data.length === x.length && data.every((v, i) => Math.fround(v) === x[i]), `prediction log ${r.role} ${r.request_id}: every output value`);
      }

      // The shadow comparison reads the primary's answer after the request is done: the same network agrees on
      // every row (a freed answer would read as empty, and disagree).
      const series = (await (await fetch(`${url}/v2/monitor/series`)).json()) as { versions?: { model: string; version: string; shadow?: { rows: number; agreement?: number; absDiff: number } }[] };
      const shadow = JSON.stringify(series).includes('"shadow"') ? (series.versions ?? []).find((v) => v.model === 'echo' && v.version === '2')?.shadow : undefined;
      assert.ok(shadow && shadow.rows >= sent.length * rows, `the shadow compared every row: ${JSON.stringify(series).slice(0, 600)}`);
      // (Its outputs read as a classifier's scores: the argmax of each row, which differs from row to row here.)
      assert.equal(shadow.agreement, 1, `the shadow agrees with the primary's answers: ${JSON.stringify(shadow)}`);
    } finally {
      await stop(child);
      sink.close();
    }
  });
});

describe('a request that times out while its run goes on', () => {
  it('is logged with the inputs it sent, once the run has handed them back', async () => {
    // A model that takes a tenth of a second or more a run on a worker thread: 100 chained [rows, 1024] × [1024, 1024]
    // products (its 4 MiB of weights also keep it off the main thread).
    const w = new Float32Array(1024 * 1024).fill(1 / 1024);
    const chain = Array.from({ length: 100 }, (_, i) => node('MatMul', [i === 0 ? 'x' : `h${i}`, 'w'], [i === 99 ? 'y' : `h${i + 1}`]));
    const model = writeOnnx(
      createModel({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 13 }],
        graph: { name: 'slow', node: chain, initializer: [tensor('w', [1024, 1024], w)], input: [valueInfo('x', 1, [-1, 1024])], output: [valueInfo('y', 1, [-1, 1024])] },
      }),
    );
    const repo = join(tmp, 'slow-repo');
    mkdirSync(join(repo, 'slow', '1'), { recursive: true });
    writeFileSync(join(repo, 'slow', '1', 'model.onnx'), model);
    writeFileSync(join(repo, 'slow', 'config.json'), JSON.stringify({ run_on: 'worker', request_timeout_ms: 10 }));
    const db = join(tmp, 'timeouts.sqlite');
    const { url, child } = await startDais(repo, ['--log-db', db]);
    try {
      // 64 rows × 1024 FP32 = 256 KiB: moved to the worker thread for its run, not copied.
      const rows = 64;
      const x = Float32Array.from({ length: rows * 1024 }, (_, i) => Math.fround((i % 97) / 97));
      const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [rows, 1024], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }] }));
      const res = await fetch(`${url}/v2/models/slow/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length), 'x-request-id': 'late-1' },
        body: new Uint8Array(Buffer.concat([header, Buffer.from(x.buffer)])),
      });
      assert.equal(res.status, 504, (await res.clone().text()).slice(0, 300));
      assert.equal(((await res.json()) as { code: string }).code, 'TIMEOUT');
      let row: { inputs: string; error: string | null } | undefined;
      for (let i = 0; i < 100 && !row; i++) {
        await sleep(50);
        try {
          const sqlite = new Database(db, { readOnly: true });
          row = sqlite.prepare("SELECT inputs, error FROM predictions WHERE request_id = 'late-1'").get() as typeof row;
          sqlite.close();
        } catch {
          // not written yet
        }
      }
      assert.ok(row, 'the timed-out request is in the prediction log');
      assert.match(String(row.error), /request timeout/);
      const data = (JSON.parse(row.inputs) as Record<string, { data: number[] }>).x.data;
      assert.equal(data.length, x.length, 'every value logged (a buffer still on the worker thread reads as empty)');
      assert.ok(data.every((v, i) => v === x[i]), 'the values sent');
    } finally {
      await stop(child);
    }
  });
});

describe('a big binary answer', () => {
  it('arrives whole, every time, though its memory is given back once sent', async () => {
    const model = echoModel();
    const repo = join(tmp, 'echo-repo');
    mkdirSync(join(repo, 'echo', '1'), { recursive: true });
    writeFileSync(join(repo, 'echo', '1', 'model.onnx'), model);
    const { url, child } = await startDais(repo, []);
    try {
      const rows = 64;
      const ask = async (k: number) => {
        const x = Float32Array.from({ length: rows * 1024 }, (_, i) => Math.fround(((i * 31 + k) % 1009) / 1009));
        const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', shape: [rows, 1024], datatype: 'FP32', parameters: { binary_data_size: x.byteLength } }], parameters: { binary_data_output: true } }));
        const res = await fetch(`${url}/v2/models/echo/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
          body: new Uint8Array(Buffer.concat([header, Buffer.from(x.buffer)])),
        });
        assert.equal(res.status, 200);
        const bytes = new Uint8Array(await res.arrayBuffer());
        const headerLength = Number(res.headers.get('inference-header-content-length'));
        const y = new Float32Array(bytes.slice(headerLength).buffer);
        assert.equal(y.length, x.length, `answer ${k}: every value`);
        assert.ok(y.every((v, i) => v === x[i]), `answer ${k}: the values sent back`);
      };
      // One at a time, then eight at once (answers written while others are being freed).
      for (let k = 0; k < 4; k++) await ask(k);
      await Promise.all(Array.from({ length: 8 }, (_, k) => ask(100 + k)));
    } finally {
      await stop(child);
    }
  });
});
