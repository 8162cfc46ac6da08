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
  /** Its requests/*.json that expected.json has predictions for, by file name. */
  requests: { file: string; body: { inputs: { name: string; shape: number[]; datatype: string; data: unknown[] }[] } }[];
}

/** Every example with a model, requests and expected.json: the same set the end-to-end tests run. */
export function exampleRequests(): ExampleRequests[] {
  if (!existsSync(EXAMPLES_DIR)) return [];
  return readdirSync(EXAMPLES_DIR)
    .sort()
    .flatMap((name) => {
      const dir = join(EXAMPLES_DIR, name);
      const model = join(dir, '1', 'model.onnx');
      const expectedFile = join(dir, 'expected.json');
      if (!existsSync(model) || !existsSync(expectedFile) || !existsSync(join(dir, 'requests'))) return [];
      const expected = JSON.parse(readFileSync(expectedFile, 'utf8')) as Record<string, unknown>;
      const requests = readdirSync(join(dir, 'requests'))
        .filter((f) => f.endsWith('.json') && expected[f])
        .sort()
        .map((file) => ({ file, body: JSON.parse(readFileSync(join(dir, 'requests', file), 'utf8')) }));
      return requests.length ? [{ name, model, requests }] : [];
    });
}
