// Where the goal checks find the repository and its examples. Their own, so that they import nothing from test/.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const EXAMPLES_DIR = join(REPO_ROOT, 'examples');

export interface ExampleRequests {
  name: string;
  /** examples/<name>/1/model.onnx */
  model: string;
  /** Its requests/*.json, by file name. */
  requests: { file: string; body: { inputs: { name: string; shape: number[]; datatype: string; data: unknown[] }[] } }[];
}

/** Every example with a model, requests and saved predictions (expected.json): those the end-to-end tests run. */
export function exampleRequests(): ExampleRequests[] {
  const out: ExampleRequests[] = [];
  for (const name of existsSync(EXAMPLES_DIR) ? readdirSync(EXAMPLES_DIR).sort() : []) {
    const dir = join(EXAMPLES_DIR, name);
    const model = join(dir, '1', 'model.onnx');
    if (!existsSync(model) || !existsSync(join(dir, 'expected.json')) || !existsSync(join(dir, 'requests'))) continue;
    const files = readdirSync(join(dir, 'requests')).filter((f) => f.endsWith('.json')).sort();
    if (files.length) out.push({ name, model, requests: files.map((file) => ({ file, body: JSON.parse(readFileSync(join(dir, 'requests', file), 'utf8')) })) });
  }
  return out;
}
