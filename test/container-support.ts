// Helpers shared by the container tests: the examples' requests and the framework's predictions, a v2 client
// that compares a server's answers with them, and a free-port finder.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { EXAMPLES_DIR } from './support/env.ts';

export interface ExampleCase {
  model: string;
  request: string;
  body: unknown;
  outputs: Record<string, { datatype: string; shape: number[]; data: number[] }>;
}

/** Every examples/<model>/requests/*.json with its expected.json entry. */
export function exampleCases(): ExampleCase[] {
  const cases: ExampleCase[] = [];
  for (const model of readdirSync(EXAMPLES_DIR).sort()) {
    const dir = join(EXAMPLES_DIR, model);
    if (!existsSync(join(dir, 'expected.json')) || !existsSync(join(dir, 'requests'))) continue;
    const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Record<string, { outputs: ExampleCase['outputs'] }>;
    for (const request of readdirSync(join(dir, 'requests')).filter((f) => f.endsWith('.json')).sort()) {
      if (!expected[request]) continue;
      cases.push({ model, request, body: JSON.parse(readFileSync(join(dir, 'requests', request), 'utf8')), outputs: expected[request].outputs });
    }
  }
  return cases;
}

function flat(data: unknown): number[] {
  return Array.isArray(data) ? data.flat(Infinity as 1).map(Number) : [Number(data)];
}

/** Sends every example request to a v2 server and compares with the framework's predictions (rel. 1e-4). */
export async function assertServesExamples(baseUrl: string, models?: string[]): Promise<number> {
  let checked = 0;
  for (const c of exampleCases()) {
    if (models && !models.includes(c.model)) continue;
    const res = await fetch(`${baseUrl}/v2/models/${c.model}/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(c.body) });
    const text = await res.text();
    assert.equal(res.status, 200, `${c.model}/${c.request}: HTTP ${res.status} ${text}`);
    const body = JSON.parse(text) as { model_name: string; outputs: Array<{ name: string; datatype: string; shape: number[]; data: unknown }> };
    assert.equal(body.model_name, c.model);
    for (const [name, want] of Object.entries(c.outputs)) {
      const got = body.outputs.find((o) => o.name === name);
      assert.ok(got, `${c.model}/${c.request}: output ${name}`);
      assert.equal(got.datatype, want.datatype, `${c.model}/${c.request}/${name}: datatype`);
      assert.deepEqual(got.shape, want.shape, `${c.model}/${c.request}/${name}: shape`);
      const values = flat(got.data);
      assert.equal(values.length, want.data.length);
      for (let i = 0; i < values.length; i++) {
        const tol = Math.max(1e-5, 1e-4 * Math.abs(want.data[i]));
        assert.ok(Math.abs(values[i] - want.data[i]) <= tol, `${c.model}/${c.request}/${name}[${i}]: served ${values[i]}, framework ${want.data[i]}`);
      }
    }
    checked++;
  }
  return checked;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Polls GET url until it answers 200 or the deadline passes; returns the last error otherwise. */
export async function waitForReady(url: string, ms: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error(`the server exited before ${url} answered`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (r.status === 200) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${url} not ready after ${ms} ms: ${last}`);
}
