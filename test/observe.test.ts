// Tracing, payload logging and dais as a CloudEvents sink, on real servers (127.0.0.1, port 0): an OTLP/HTTP
// receiver gets one trace per request with the stage spans under the client's trace; a CloudEvents sink gets each
// request/response pair as served, and a sink that is down or never answers changes no response; events recorded
// from one dais and replayed into another give the same drift report as serving the traffic did; KServe's per-step
// histograms count every request.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { HTTP } from 'cloudevents';
import { Monitor } from '../src/monitor/monitor.ts';
import { createV2App } from '../src/core/index.ts';
import { onnxruntimeNode } from '../src/runtime/onnxruntime-node.ts';
import { serve, serverMetadata, ModelRepository } from '../src/serve/index.ts';
import { createLambdaHandler } from '../src/targets/lambda/handler.ts';
import { httpEvent } from '../src/targets/lambda/sample-events.ts';
import { PayloadLogger, REQUEST_EVENT, RESPONSE_EVENT } from '../src/serve/payload-logger.ts';
import { InferTracer } from '../src/node/tracing.ts';
import { tracingFromEnv } from '../src/node/tracing-env.ts';
import { FIXTURES, maintenanceRepository, maintenanceRequest, rowsOf } from './support/monitor.ts';
import { parsePrometheusText } from './support/prometheus.ts';
import * as grpc from '@grpc/grpc-js';
import { serveWithGrpc, sleep } from './support/serving.ts';

const shifted = rowsOf(join(FIXTURES, 'maintenance-shifted.csv'));

interface Received {
  headers: Record<string, string>;
  body: Buffer;
}

/** An HTTP receiver on 127.0.0.1 keeping every POST; `hold` leaves requests unanswered (a sink that hangs). */
async function receiver(options: { hold?: boolean } = {}) {
  const received: Received[] = [];
  const held: IncomingMessage[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks) });
      if (options.hold) held.push(req);
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function infer(url: string, rows: number[][], headers: Record<string, string> = {}) {
  const res = await fetch(url + '/v2/models/maintenance/infer', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(maintenanceRequest(rows)) });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return { id: res.headers.get('x-request-id')!, text };
}

/**
 * forceFlush exports what is buffered, but an export the batch timer started just before may still be on its way to
 * the receiver: wait (up to 5 s) for `n` spans rather than for a fixed time.
 */
async function spansArrived(otlp: { received: { body: Buffer }[] }, n: number): Promise<void> {
  const count = () => otlp.received.reduce((t, r) => t + (JSON.parse(r.body.toString()) as { resourceSpans: { scopeSpans: { spans: unknown[] }[] }[] }).resourceSpans.reduce((m, rs) => m + rs.scopeSpans.reduce((k, ss) => k + ss.spans.length, 0), 0), 0);
  for (let i = 0; i < 100 && count() < n; i++) await new Promise((r) => setTimeout(r, 50));
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');

describe('OpenTelemetry tracing', () => {
  it('the OTEL_* variables turn tracing on as the spec says', () => {
    assert.equal(tracingFromEnv({}), undefined);
    assert.deepEqual(tracingFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/', OTEL_SERVICE_NAME: 's' }), { url: 'http://c:4318/v1/traces', serviceName: 's' });
    assert.equal(tracingFromEnv({ OTEL_TRACES_EXPORTER: 'otlp' })?.url, 'http://localhost:4318/v1/traces');
    assert.equal(tracingFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c/x', OTEL_SDK_DISABLED: 'true' }), undefined);
  });

  it('an OTLP receiver gets one trace per request: the server span under the client\'s, with decode, queue, compute, encode', async () => {
    const otlp = await receiver();
    const repo = await maintenanceRepository(['1'], { profile: false });
    const tracer = new InferTracer({ url: `${otlp.url}/v1/traces`, serviceName: 'dais-test', scheduledDelayMs: 50 });
    const server = await serve({ model: repo.root, port: 0, warmUp: false, observers: [tracer] });
    try {
      const clients = Array.from({ length: 5 }, (_, i) => ({ traceId: hex(0xabc0 + i, 32), spanId: hex(0x1230 + i, 16) }));
      for (const [i, c] of clients.entries()) await infer(server.url, shifted.slice(i, i + 2), { traceparent: `00-${c.traceId}-${c.spanId}-01` });
      await infer(server.url, shifted.slice(0, 1)); // no traceparent: a trace of its own
      await tracer.flush();
      await spansArrived(otlp, 6 * 5);
      assert.ok(otlp.received.every((r) => r.headers['content-type'] === 'application/json'), 'OTLP/HTTP JSON');
      type Span = { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; startTimeUnixNano: string; endTimeUnixNano: string };
      const spans: Span[] = [];
      let service: unknown;
      for (const r of otlp.received) {
        for (const rs of JSON.parse(r.body.toString()).resourceSpans) {
          service = rs.resource.attributes.find((a: { key: string }) => a.key === 'service.name')?.value.stringValue;
          for (const ss of rs.scopeSpans) spans.push(...ss.spans);
        }
      }
      assert.equal(service, 'dais-test');
      const traces = new Map<string, Span[]>();
      for (const s of spans) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
      assert.equal(traces.size, 6, 'one trace per request');
      for (const c of clients) {
        const t = traces.get(c.traceId);
        assert.ok(t, `trace ${c.traceId} of the client`);
        const root = t.find((s) => s.parentSpanId === c.spanId)!;
        assert.ok(root, 'the server span is a child of the client span');
        assert.equal(root.kind, 2, 'SERVER');
        const children = t.filter((s) => s.parentSpanId === root.spanId);
        assert.deepEqual(children.map((s) => s.name).sort(), ['compute', 'decode', 'encode', 'queue']);
        for (const s of children) {
          assert.ok(BigInt(s.startTimeUnixNano) >= BigInt(root.startTimeUnixNano) && BigInt(s.endTimeUnixNano) <= BigInt(root.endTimeUnixNano), `${s.name} within the request`);
        }
        assert.equal(t.length, 5);
      }
    } finally {
      await server.close({ timeoutMs: 1000 });
      await otlp.close();
      repo.remove();
    }
  });
});

describe('OpenTelemetry tracing over gRPC', () => {
  it('a ModelInfer with traceparent metadata joins the client\'s trace', async () => {
    const otlp = await receiver();
    const repo = await maintenanceRepository(['1'], { profile: false });
    const tracer = new InferTracer({ url: `${otlp.url}/v1/traces`, scheduledDelayMs: 3_600_000 });
    type Client = grpc.Client & { ModelInfer(req: unknown, md: grpc.Metadata, cb: (e: grpc.ServiceError | null, r: { model_version: string }) => void): void };
    const { server, client } = await serveWithGrpc<Client>({ model: repo.root, warmUp: false, observers: [tracer] });
    try {
      const traceId = hex(0xbeef, 32);
      const md = new grpc.Metadata();
      md.set('traceparent', `00-${traceId}-${hex(9, 16)}-01`);
      const req = { model_name: 'maintenance', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 6], contents: { fp32_contents: shifted[0] } }] };
      const r = await new Promise<{ model_version: string }>((resolve, reject) => client.ModelInfer(req, md, (e, res) => (e ? reject(e) : resolve(res))));
      assert.equal(r.model_version, '1');
      await tracer.flush();
      await spansArrived(otlp, 5);
      const spans = otlp.received.flatMap((x) => JSON.parse(x.body.toString()).resourceSpans.flatMap((rs: { scopeSpans: { spans: { traceId: string; parentSpanId?: string }[] }[] }) => rs.scopeSpans.flatMap((ss) => ss.spans)));
      assert.equal(spans.length, 5);
      assert.ok(spans.every((sp) => sp.traceId === traceId));
      assert.equal(spans.filter((sp) => sp.parentSpanId === hex(9, 16)).length, 1);
    } finally {
      client.close();
      await server.close({ timeoutMs: 1000 });
      await tracer.close();
      await otlp.close();
      repo.remove();
    }
  });
});

describe('OpenTelemetry tracing in the Lambda handler', () => {
  it('each invocation exports its trace (under the caller\'s traceparent) before it returns', async () => {
    const otlp = await receiver();
    const repo = await maintenanceRepository(['1'], { profile: false });
    const repository = await ModelRepository.open(repo.root, { backend: onnxruntimeNode, warmUp: false });
    // An hour's batching delay: only the handler's flush can have sent the spans.
    const tracer = new InferTracer({ url: `${otlp.url}/v1/traces`, scheduledDelayMs: 3_600_000 });
    const handler = createLambdaHandler(createV2App({ registry: repository, server: serverMetadata(), onInfer: (e) => tracer.onInfer(e) }), { afterInvoke: () => tracer.flush() });
    try {
      const traceId = hex(0xfeed, 32);
      const event = httpEvent('function-url', {
        method: 'POST',
        path: '/v2/models/maintenance/infer',
        headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-${hex(7, 16)}-01` },
        body: JSON.stringify(maintenanceRequest(shifted.slice(0, 2))),
      });
      const result = (await handler(event, { awsRequestId: 'lambda-1' })) as { statusCode: number };
      assert.equal(result.statusCode, 200);
      const spans = otlp.received.flatMap((r) => JSON.parse(r.body.toString()).resourceSpans.flatMap((rs: { scopeSpans: { spans: { traceId: string; name: string }[] }[] }) => rs.scopeSpans.flatMap((ss) => ss.spans)));
      assert.deepEqual(spans.map((sp) => sp.traceId), Array(5).fill(traceId));
      assert.deepEqual(spans.map((sp) => sp.name).sort(), ['POST /v2/models/{model}/infer', 'compute', 'decode', 'encode', 'queue']);
    } finally {
      await tracer.close();
      await repository.close();
      await otlp.close();
      repo.remove();
    }
  });
});

describe('payload logging (CloudEvents, as KServe\'s logger)', () => {
  it('the sink receives each request/response pair as served, with KServe\'s event types and attributes', async () => {
    const sink = await receiver();
    const repo = await maintenanceRepository(['1'], { profile: false });
    const logger = new PayloadLogger({ url: sink.url, namespace: 'ns' });
    const server = await serve({ model: repo.root, port: 0, warmUp: false, observers: [logger] });
    try {
      const served = new Map<string, { rows: number[][]; text: string }>();
      for (let i = 0; i < 10; i++) {
        const rows = shifted.slice(i * 3, i * 3 + 3);
        const r = await infer(server.url, rows, { 'x-request-id': `pay-${i}` });
        served.set(r.id, { rows, text: r.text });
      }
      await logger.flush();
      assert.equal(sink.received.length, 20);
      const events = sink.received.map((r) => HTTP.toEvent({ headers: r.headers, body: r.body }) as ReturnType<typeof HTTP.toEvent> & Record<string, unknown>);
      for (const [id, s] of served) {
        const pair = events.filter((e) => (e as { id: string }).id === id) as unknown as { type: string; source: string; data: Buffer; inferenceservicename: string; namespace: string; component: string; endpoint: string }[];
        assert.deepEqual(pair.map((e) => e.type), [REQUEST_EVENT, RESPONSE_EVENT]);
        for (const e of pair) {
          assert.deepEqual([e.inferenceservicename, e.namespace, e.component, e.endpoint], ['maintenance', 'ns', 'predictor', 'default']);
          assert.equal(e.source, 'http://localhost/');
        }
        assert.deepEqual(JSON.parse(pair[0].data.toString()).inputs[0].data, s.rows.flat().map((x) => Math.fround(x)));
        assert.deepEqual(JSON.parse(pair[1].data.toString()), JSON.parse(s.text));
      }
      // Binary content mode, as KServe's logger sends: the ce-* headers and the payload as the body.
      assert.equal(sink.received[0].headers['ce-type'], REQUEST_EVENT);
      assert.equal(sink.received[0].headers['content-type'], 'application/json');
    } finally {
      await server.close({ timeoutMs: 1000 });
      await sink.close();
      repo.remove();
    }
  });

  it('a sink that is down, or never answers, changes no response; a full queue drops events and counts them', async () => {
    const repo = await maintenanceRepository(['1'], { profile: false });
    const hanging = await receiver({ hold: true });
    const closed = await receiver();
    const downUrl = closed.url;
    await closed.close();
    const plain = await serve({ model: repo.root, port: 0, warmUp: false });
    const down = new PayloadLogger({ url: downUrl });
    const slow = new PayloadLogger({ url: hanging.url, maxQueue: 5, concurrency: 1, timeoutMs: 60_000 });
    const withDown = await serve({ model: repo.root, port: 0, warmUp: false, observers: [down] });
    const withSlow = await serve({ model: repo.root, port: 0, warmUp: false, observers: [slow] });
    try {
      for (let i = 0; i < 30; i++) {
        const rows = shifted.slice(i, i + 2);
        const h = { 'x-request-id': `same-${i}` };
        const expected = (await infer(plain.url, rows, h)).text;
        assert.equal((await infer(withDown.url, rows, h)).text, expected);
        assert.equal((await infer(withSlow.url, rows, h)).text, expected);
      }
      await down.flush();
      assert.equal(down.counts.failed, 60);
      assert.equal(down.counts.delivered, 0);
      assert.ok(slow.counts.dropped > 0, JSON.stringify(slow.counts));
      assert.equal(slow.counts.delivered, 0);
    } finally {
      await Promise.all([plain.close({ timeoutMs: 1000 }), withDown.close({ timeoutMs: 1000 })]);
      await hanging.close(); // the hung sends fail now, so the last server's drain finishes
      await withSlow.close({ timeoutMs: 1000 });
      repo.remove();
    }
  });
});

describe('dais as the CloudEvents sink', () => {
  it('events recorded from one dais and replayed into another flag the same drift as serving the traffic did', async () => {
    const recorder = await receiver();
    const repo = await maintenanceRepository(['1']);
    const monitorA = new Monitor({ evaluateIntervalMs: 3_600_000 });
    const logger = new PayloadLogger({ url: recorder.url });
    const a = await serve({ model: repo.root, port: 0, warmUp: false, monitor: monitorA, observers: [logger] });
    const monitorB = new Monitor({ evaluateIntervalMs: 3_600_000 });
    const b = await serve({ model: repo.root, port: 0, warmUp: false, monitor: monitorB });
    let servedReport: Record<string, unknown>;
    try {
      for (let i = 0; i < shifted.length; i += 10) await infer(a.url, shifted.slice(i, i + 10));
      await logger.flush();
      const { generatedAt: _a, ...ra } = (await (await fetch(a.url + '/v2/models/maintenance/drift')).json()) as Record<string, unknown>;
      servedReport = ra;
      assert.equal(servedReport.status, 'drift');
      assert.equal(recorder.received.length, (shifted.length / 10) * 2);
      // Replay: responses first for half of them (pairing does not depend on order); every other one in structured mode.
      const order = [...recorder.received.entries()].sort(([i], [j]) => (i % 4 === 0 ? -1 : 0) - (j % 4 === 0 ? -1 : 0));
      for (const [i, r] of order) {
        let init: { headers: Record<string, string>; body: string };
        if (i % 3 === 0) {
          const ce = HTTP.toEvent({ headers: r.headers, body: r.body }) as Parameters<typeof HTTP.structured>[0];
          const s = HTTP.structured(ce);
          init = { headers: s.headers as Record<string, string>, body: s.body as string };
        } else init = { headers: Object.fromEntries(Object.entries(r.headers).filter(([k]) => k.startsWith('ce-') || k === 'content-type')), body: r.body.toString() };
        const res = await fetch(b.url + '/v2/monitor/events', { method: 'POST', headers: init.headers, body: init.body });
        assert.equal(res.status, 202, await res.text());
      }
      const { generatedAt: _b, ...rb } = (await (await fetch(b.url + '/v2/models/maintenance/drift')).json()) as Record<string, unknown>;
      assert.deepEqual(rb, servedReport);
      // Not a CloudEvent: refused with the code, the server keeps running.
      const bad = await fetch(b.url + '/v2/monitor/events', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(bad.status, 400);
      assert.equal(((await bad.json()) as { code: string }).code, 'INVALID_CLOUD_EVENT');
      // KServe's per-step histograms on A counted every request it served.
      const metrics = parsePrometheusText(await (await fetch(a.url + '/metrics')).text());
      for (const step of ['request_preprocess_seconds', 'request_predict_seconds', 'request_postprocess_seconds']) {
        const count = metrics.get(step)!.samples.find((s) => s.name === `${step}_count`)!;
        assert.deepEqual(count.labels, { model_name: 'maintenance' });
        assert.equal(count.value, shifted.length / 10);
      }
    } finally {
      await Promise.all([a.close({ timeoutMs: 1000 }), b.close({ timeoutMs: 1000 })]);
      await recorder.close();
      repo.remove();
    }
    await sleep(0);
  });
});
