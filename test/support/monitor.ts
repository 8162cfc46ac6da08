// Helpers for the monitoring suites: the maintenance example in a temporary repository with a profile, its
// fixture rows as v2 requests, and a local webhook receiver.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCsv, parseNpy } from '../../src/monitor/data-file.ts';
import { buildProfile, writeProfile } from '../../src/monitor/profile.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './env.ts';

export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'monitor');
export const MAINTENANCE_MODEL = join(EXAMPLES_DIR, 'maintenance', '1', 'model.onnx');

/** Rows of a fixture: .npy (float32) or a CSV with the six features first. */
export function rowsOf(file: string): number[][] {
  if (file.endsWith('.npy')) {
    const { shape, data } = parseNpy(new Uint8Array(readFileSync(file)), file);
    return Array.from({ length: shape[0] }, (_, r) => Array.from({ length: shape[1] }, (_, j) => Number(data[r * shape[1] + j])));
  }
  return parseCsv(readFileSync(file, 'utf8'))
    .slice(1)
    .map((r) => r.slice(0, 6).map(Number));
}

export const maintenanceRequest = (rows: number[][], id?: string) => ({
  ...(id ? { id } : {}),
  inputs: [{ name: 'input', shape: [rows.length, 6], datatype: 'FP32', data: rows.flat() }],
});

/** A repository holding maintenance at the given versions, each with a profile of the example's training rows. */
export async function maintenanceRepository(versions = ['1'], options: { profile?: boolean } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'dais-monitor-'));
  let profileText: string | undefined;
  for (const v of versions) {
    const dir = join(root, 'maintenance', v);
    mkdirSync(dir, { recursive: true });
    copyFileSync(MAINTENANCE_MODEL, join(dir, 'model.onnx'));
    if (options.profile !== false) {
      if (!profileText) {
        await writeProfile(await buildProfile({ model: join(dir, 'model.onnx'), data: join(FIXTURES, 'maintenance-train.npy') }), join(dir, 'profile.json'));
        profileText = readFileSync(join(dir, 'profile.json'), 'utf8');
      } else copyFileSync(join(root, 'maintenance', versions[0], 'profile.json'), join(dir, 'profile.json'));
    }
  }
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** Sends rows in requests of `batch` rows, in order; returns the x-request-id of each request. */
export async function sendRows(url: string, rows: number[][], batch = 50, path = '/v2/models/maintenance/infer'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < rows.length; i += batch) {
    const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(maintenanceRequest(rows.slice(i, i + batch))) });
    if (res.status !== 200) throw new Error(`infer answered ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
    ids.push(res.headers.get('x-request-id')!);
  }
  return ids;
}

/** A webhook receiver on 127.0.0.1 that answers each POST with the next status in `statuses` (then 200). */
export async function webhookReceiver(statuses: number[] = []) {
  const received: { body: Record<string, unknown>; status: number }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = statuses.shift() ?? 200;
      received.push({ body: JSON.parse(Buffer.concat(chunks).toString('utf8')), status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
