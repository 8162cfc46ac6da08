// gRPC goes through the same monitoring and routing as REST: a ModelInfer call lands in the prediction log and the
// dashboard series and takes feedback by its x-request-id; canary splits and shadow versions apply to gRPC calls that
// name no version; ModelStreamInfer answers each message (good ones with the example's numbers, bad ones with an
// error_message), reports each to the monitor under its own id, and ends cleanly.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { DatabaseSync as Database } from '@photostructure/sqlite';
import { Monitor } from '../src/monitor/monitor.ts';
import { splitByHash } from '../src/serve/traffic.ts';
import type { RunningServer } from '../src/serve/index.ts';
import { assertResponseMatches, exampleCases, type ExampleCase } from './support/examples.ts';
import { maintenanceRepository } from './support/monitor.ts';
import { serveWithGrpc } from './support/serving.ts';
import { waitFor } from './support/wait.ts';

/* eslint-disable @typescript-eslint/no-explicit-any */
type Client = grpc.Client & Record<string, any>;

const tmp = mkdtempSync(join(tmpdir(), 'dais-grpc-monitor-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const cases = exampleCases('maintenance');
const caseOf = (file: string) => cases.find((c) => c.requestFile === file)!;
const single = caseOf('single.json');
const batch8 = caseOf('batch-8.json');

/** Serves `repo` with `monitor` over REST and gRPC, runs `body`, then closes the client, the server and the repository. */
async function withServer(repo: { root: string; remove(): void }, monitor: Monitor, body: (server: RunningServer, client: Client) => Promise<void>): Promise<void> {
  const { server, client } = await serveWithGrpc<Client>({ model: repo.root, monitor, warmUp: false });
  try {
    await body(server, client);
  } finally {
    client.close();
    await server.close({ timeoutMs: 1000 });
    repo.remove();
  }
}

/** A ModelInferRequest with typed contents for an example request. */
function grpcRequest(c: ExampleCase, extra: Record<string, unknown> = {}) {
  const input = c.request.inputs[0];
  return {
    model_name: 'maintenance',
    id: c.request.id ?? '',
    inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape, contents: { fp32_contents: input.data } }],
    ...extra,
  };
}

/** ModelInfer; resolves with the response and the x-request-id the server sent back in its metadata. */
function modelInfer(client: Client, req: unknown, requestId?: string): Promise<{ response: any; requestId: string }> {
  const md = new grpc.Metadata();
  if (requestId) md.set('x-request-id', requestId);
  return new Promise((resolve, reject) => {
    let id: string | undefined;
    const call = client.ModelInfer(req, md, (e: grpc.ServiceError | null, r: any) => (e ? reject(e) : resolve({ response: r, requestId: id! })));
    call.on('metadata', (m: grpc.Metadata) => (id = m.get('x-request-id')[0] as string));
  });
}

/** The raw outputs of a ModelInferResponse as v2 tensors (INT64 label, FP32 probabilities). */
function outputsOf(r: any) {
  return r.outputs.map((o: { name: string; datatype: string; shape: string[] }, i: number) => {
    const bytes = new Uint8Array(r.raw_output_contents[i]); // a copy, aligned
    const data = o.datatype === 'INT64' ? new BigInt64Array(bytes.buffer) : o.datatype === 'FP32' ? new Float32Array(bytes.buffer) : assert.fail(`unexpected datatype ${o.datatype}`);
    return { name: o.name, datatype: o.datatype, shape: o.shape.map(Number), data };
  });
}

const labelsOf = (r: any): number[] => Array.from(outputsOf(r).find((o: { name: string }) => o.name === 'label')!.data as BigInt64Array, Number);

async function feedback(server: RunningServer, body: unknown) {
  const res = await fetch(server.url + '/v2/models/maintenance/feedback', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

interface SeriesVersion {
  model: string;
  version: string;
  throughput: { rps: number; errors: number }[];
  latency: { p50: number }[];
  shadow?: { requests: number; against: string };
}

async function seriesOf(server: RunningServer, version: string): Promise<SeriesVersion | undefined> {
  const series = (await (await fetch(server.url + '/v2/monitor/series')).json()) as { bucketMs: number; versions: SeriesVersion[] };
  const v = series.versions.find((s) => s.model === 'maintenance' && s.version === version);
  if (!v) return undefined;
  // Requests per bucket back from rates.
  return { ...v, throughput: v.throughput.map((b) => ({ ...b, rps: Math.round((b.rps * series.bucketMs) / 1000) })) };
}
const countOf = (v: SeriesVersion | undefined) => (v ? v.throughput.reduce((a, b) => a + b.rps, 0) : 0);
const errorsOf = (v: SeriesVersion | undefined) => (v ? v.throughput.reduce((a, b) => a + b.errors, 0) : 0);

function logRows(file: string) {
  const sqlite = new Database(file, { readOnly: true });
  const predictions = sqlite.prepare('SELECT model, version, request_id, role, inputs, outputs, error FROM predictions ORDER BY id').all() as unknown as {
    model: string;
    version: string;
    request_id: string;
    role: string;
    inputs: string;
    outputs: string | null;
    error: string | null;
  }[];
  const feedbackRows = sqlite.prepare('SELECT version, request_id, truth FROM feedback ORDER BY id').all() as unknown as { version: string; request_id: string; truth: string }[];
  sqlite.close();
  return { predictions, feedback: feedbackRows };
}

describe('gRPC and the monitor', () => {
  it('a ModelInfer call is counted: prediction log, series, and feedback by its x-request-id', async () => {
    const repo = await maintenanceRepository(['1'], { profile: false });
    const db = join(tmp, 'unary.sqlite');
    const monitor = await new Monitor({ log: { file: db } }).open();
    let generatedId = '';
    let badId: string | undefined;
    await withServer(repo, monitor, async (server, client) => {
      // The server makes up the id of a call that sends none, and returns it in the metadata.
      const a = await modelInfer(client, grpcRequest(batch8));
      generatedId = a.requestId;
      assert.match(generatedId, /^[0-9a-f-]{36}$/);
      assertResponseMatches(outputsOf(a.response), batch8.expected, 'gRPC batch-8');
      // A client's own id is kept.
      const b = await modelInfer(client, grpcRequest(single), 'grpc-known-1');
      assert.equal(b.requestId, 'grpc-known-1');
      assertResponseMatches(outputsOf(b.response), single.expected, 'gRPC single');
      // A request that decodes but fails at the model is counted as an error (as over REST).
      const bad = { ...grpcRequest(single), inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5], contents: { fp32_contents: [1, 2, 3, 4, 5] } }] };
      await assert.rejects(
        new Promise((resolve, reject) => {
          const md = new grpc.Metadata();
          md.set('x-request-id', 'grpc-bad-1');
          client.ModelInfer(bad, md, (e: grpc.ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r)));
        }),
        (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /shape \[1, 5\]/.test(e.details),
      );
      badId = 'grpc-bad-1';

      const v1 = await seriesOf(server, '1');
      assert.equal(countOf(v1), 3, JSON.stringify(v1?.throughput));
      assert.equal(errorsOf(v1), 1);
      assert.ok(v1!.latency.some((l) => l.p50 > 0), 'durations recorded');

      // Feedback names the gRPC call by its x-request-id: all 8 rows right, then one wrong.
      let fb = await feedback(server, { id: generatedId, truth: batch8.expected.label.data });
      assert.equal(fb.status, 200, JSON.stringify(fb.body));
      assert.equal(fb.body.version, '1');
      assert.equal(fb.body.rows, 8);
      assert.equal(fb.body.correct, 8);
      fb = await feedback(server, { id: 'grpc-known-1', truth: (single.expected.label.data[0] + 1) % 3 });
      assert.equal(fb.status, 200, JSON.stringify(fb.body));
      assert.equal(fb.body.correct, 0);
      assert.equal(fb.body.performance.feedback, 9);
      assert.equal(fb.body.performance.accuracy, 8 / 9);
      fb = await feedback(server, { id: generatedId, truth: batch8.expected.label.data });
      assert.equal(fb.status, 400);
      assert.match(fb.body.error, /already recorded/);
    });
    const log = logRows(db);
    assert.deepEqual(
      log.predictions.map((r) => [r.model, r.version, r.role, r.request_id]),
      [
        ['maintenance', '1', 'primary', generatedId],
        ['maintenance', '1', 'primary', 'grpc-known-1'],
        ['maintenance', '1', 'primary', badId],
      ],
    );
    assert.deepEqual(JSON.parse(log.predictions[0].outputs!).label.data, batch8.expected.label.data);
    assert.deepEqual(JSON.parse(log.predictions[1].inputs).input.data, single.request.inputs[0].data.map((x) => Math.fround(x as number)));
    assert.equal(log.predictions[2].outputs, null);
    assert.match(log.predictions[2].error!, /input 'input' has shape \[1, 5\]/);
    assert.deepEqual(
      log.feedback.map((f) => [f.version, f.request_id]),
      [
        ['1', generatedId],
        ['1', 'grpc-known-1'],
      ],
    );
  });

  it('a canary split applies to gRPC calls that name no version; a named version is that version', async () => {
    // Version 2 is what the repository serves by default, so the split is weighted towards version 1: without the
    // router every call below would be answered by version 2.
    const repo = await maintenanceRepository(['1', '2'], { profile: false });
    writeFileSync(join(repo.root, 'maintenance', 'config.json'), JSON.stringify({ traffic: { '1': 3, '2': 1 } }));
    const monitor = new Monitor();
    await withServer(repo, monitor, async (server, client) => {
      await monitor.ready();
      const versions: string[] = [];
      const ids = Array.from({ length: 8 }, (_, i) => `canary-${i}`);
      for (const id of ids) {
        const { response } = await modelInfer(client, grpcRequest(single), id);
        assert.deepEqual(labelsOf(response), single.expected.label.data);
        versions.push(response.model_version);
      }
      // The split goes by a hash of the x-request-id, so the same ids get the same versions in any process.
      const weights = [{ key: '1', weight: 3 }, { key: '2', weight: 1 }];
      assert.deepEqual(versions, ids.map((id) => splitByHash(id, weights)));
      assert.deepEqual(new Set(versions), new Set(['1', '2']));
      for (let i = 0; i < 4; i++) assert.equal((await modelInfer(client, grpcRequest(single, { model_version: '2' }))).response.model_version, '2');
      assert.equal(countOf(await seriesOf(server, '1')), versions.filter((v) => v === '1').length);
      assert.equal(countOf(await seriesOf(server, '2')), versions.filter((v) => v === '2').length + 4);
    });
  });

  it('a shadow version runs beside gRPC calls, logged under their x-request-id, and never answers them', async () => {
    const repo = await maintenanceRepository(['1', '2'], { profile: false });
    writeFileSync(join(repo.root, 'maintenance', 'config.json'), JSON.stringify({ traffic: { '1': 1 }, shadow: '2' }));
    const db = join(tmp, 'shadow.sqlite');
    const monitor = await new Monitor({ log: { file: db } }).open();
    const ids: string[] = [];
    await withServer(repo, monitor, async (server, client) => {
      await monitor.ready();
      for (let i = 0; i < 5; i++) {
        const r = await modelInfer(client, grpcRequest(batch8), `grpc-shadowed-${i}`);
        assert.equal(r.response.model_version, '1');
        ids.push(r.requestId);
      }
      // Shadow runs finish after the client's answer: wait until the monitor has seen all 5.
      const v2 = await waitFor(async () => {
        const v = await seriesOf(server, '2');
        return v?.shadow?.requests === 5 ? v : undefined;
      }, { what: '5 shadow runs' });
      assert.equal(v2?.shadow?.requests, 5);
      assert.equal(v2?.shadow?.against, '1');
    });
    const rows = logRows(db).predictions;
    assert.deepEqual(rows.filter((r) => r.role === 'primary').map((r) => [r.version, r.request_id]), ids.map((id) => ['1', id]));
    assert.deepEqual(rows.filter((r) => r.role === 'shadow').map((r) => [r.version, r.request_id]).sort(), ids.map((id) => ['2', id]).sort());
  });
});

describe('gRPC ModelStreamInfer', () => {
  it('answers each message in one stream (errors as error_message), reports each to the monitor, and ends cleanly', async () => {
    const repo = await maintenanceRepository(['1'], { profile: false });
    const db = join(tmp, 'stream.sqlite');
    const monitor = await new Monitor({ log: { file: db } }).open();
    await withServer(repo, monitor, async (server, client) => {
      const md = new grpc.Metadata();
      md.set('x-request-id', 'stream-1');
      const stream: grpc.ClientDuplexStream<unknown, any> = client.ModelStreamInfer(md);
      const responses: any[] = [];
      let headerId: string | undefined;
      stream.on('metadata', (m: grpc.Metadata) => (headerId = m.get('x-request-id')[0] as string));
      stream.on('data', (r: any) => responses.push(r));
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      const ended = new Promise<void>((resolve, reject) => {
        stream.on('end', resolve);
        stream.on('error', reject);
      });
      const raw = (c: ExampleCase) => Buffer.from(new Float32Array(c.request.inputs[0].data as number[]).buffer);
      const messages = [
        grpcRequest(single, { id: 'm0' }),
        grpcRequest(batch8, { id: 'm1' }),
        { ...grpcRequest(single, { id: 'm2' }), inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5], contents: { fp32_contents: [1, 2, 3, 4, 5] } }] },
        grpcRequest(single, { id: 'm3', model_name: 'nope' }),
        { model_name: 'maintenance', id: 'm4', inputs: [{ name: 'input', datatype: 'FP32', shape: batch8.request.inputs[0].shape }], raw_input_contents: [raw(batch8)] },
        grpcRequest(single, { id: 'm5', model_version: '1' }),
      ];
      for (const m of messages) stream.write(m);
      stream.end();
      await ended;
      assert.equal((await status).code, grpc.status.OK);
      assert.equal(headerId, 'stream-1');
      assert.equal(responses.length, messages.length);

      const answered = new Map<string, any>();
      const errors: string[] = [];
      for (const r of responses) {
        if (r.error_message) {
          // As Triton: the failed request's id comes back with its error.
          assert.ok(['m2', 'm3'].includes(r.infer_response.id), r.infer_response.id);
          errors.push(r.error_message);
        } else answered.set(r.infer_response.id, r.infer_response);
      }
      assert.deepEqual([...answered.keys()].sort(), ['m0', 'm1', 'm4', 'm5']);
      for (const [id, c] of [['m0', single], ['m1', batch8], ['m4', batch8], ['m5', single]] as const) {
        assert.equal(answered.get(id).model_name, 'maintenance');
        assert.equal(answered.get(id).model_version, '1');
        assertResponseMatches(outputsOf(answered.get(id)), c.expected, `stream ${id}`);
      }
      errors.sort();
      assert.equal(errors.length, 2);
      assert.match(errors[0], /^input 'input' has shape \[1, 5\] but model 'maintenance' expects \[-1, 6\]/);
      assert.match(errors[1], /^model 'nope' is not in the repository/);

      // Each message is its own request for the monitor: <stream id>.<n>, n in the order sent. The unknown model
      // (message 3) is refused before any model runs, as over REST, and is not counted.
      const v1 = await seriesOf(server, '1');
      assert.equal(countOf(v1), 5);
      assert.equal(errorsOf(v1), 1);
      const fb = await feedback(server, { id: 'stream-1.4', truth: batch8.expected.label.data });
      assert.equal(fb.status, 200, JSON.stringify(fb.body));
      assert.equal(fb.body.correct, 8);
      // The request's own id works as over REST.
      const byOwnId = await feedback(server, { id: 'm0', truth: single.expected.label.data });
      assert.equal(byOwnId.status, 200, JSON.stringify(byOwnId.body));
      assert.equal(byOwnId.body.correct, 1);

      // A second stream on the same connection gets its own id when it sends none.
      const second: grpc.ClientDuplexStream<unknown, any> = client.ModelStreamInfer(new grpc.Metadata());
      const secondId = new Promise<string>((resolve) => second.on('metadata', (m: grpc.Metadata) => resolve(m.get('x-request-id')[0] as string)));
      const secondResponses: any[] = [];
      second.on('data', (r: any) => secondResponses.push(r));
      const secondEnded = new Promise<void>((resolve, reject) => {
        second.on('end', resolve);
        second.on('error', reject);
      });
      second.write(grpcRequest(single));
      second.end();
      await secondEnded;
      assert.equal(secondResponses.length, 1);
      assert.deepEqual(labelsOf(secondResponses[0].infer_response), single.expected.label.data);
      const id2 = await secondId;
      assert.match(id2, /^[0-9a-f-]{36}$/);
      assert.equal((await feedback(server, { id: `${id2}.0`, truth: single.expected.label.data })).status, 200);
    });
    const rows = logRows(db).predictions;
    const byId = new Map(rows.map((r) => [r.request_id, r]));
    assert.equal(rows.length, 6);
    for (const n of [0, 1, 2, 4, 5]) assert.ok(byId.has(`stream-1.${n}`), `stream-1.${n} logged`);
    assert.ok(!byId.has('stream-1.3'));
    assert.deepEqual(JSON.parse(byId.get('stream-1.1')!.outputs!).label.data, batch8.expected.label.data);
    assert.match(byId.get('stream-1.2')!.error!, /shape \[1, 5\]/);
  });
});
