// The demo page (index.html loads it as demo.js): builds an input form from the model's v2 metadata, runs the
// request in the page through the SDK and shows the outputs and the latency. It uses only the SDK's public API,
// so it doubles as an example of calling it.
import { bundle, load, type EdgeModel, type JsonInferenceResponse } from './sdk.ts';
import type { TensorMetadata } from '../../../core/index.ts';
import { processingOf } from '../../../core/processing/file-request.ts';

interface DemoState {
  model?: EdgeModel;
  lastResponse?: JsonInferenceResponse;
  lastLatencyMs?: number;
  error?: string;
}

const state: DemoState = {};
(globalThis as { daisDemo?: DemoState }).daisDemo = state;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const $ = (id: string) => document.getElementById(id)!;

function defaultShape(t: TensorMetadata): number[] {
  return t.shape.length ? t.shape.map((d) => (d < 0 ? 1 : d)) : [1];
}

function zeros(t: TensorMetadata, shape: number[]): unknown[] {
  const n = shape.reduce((a, b) => a * b, 1);
  return new Array(n).fill(t.datatype === 'BYTES' ? '' : t.datatype === 'BOOL' ? false : 0);
}

function buildForm(model: EdgeModel): void {
  const form = $('inputs');
  form.replaceChildren();
  const file = processingOf(model.metadata())?.input;
  for (const t of model.metadata().inputs) {
    if (file && t.name === file.name) {
      // Declared preprocessing: the page takes the file (or text) itself, as the server's root page does.
      const box = el('fieldset', { 'data-input': t.name, 'data-kind': file.kind });
      box.append(el('legend', {}, `${t.name}  ${file.kind === 'text' ? 'text' : `${file.kind} file`}`));
      box.append(file.kind === 'text' ? el('textarea', { name: `${t.name}.text`, rows: '3', cols: '80', 'aria-label': `${t.name} text` }) : el('input', { type: 'file', name: `${t.name}.file`, accept: file.kind === 'image' ? 'image/*' : 'audio/wav', 'aria-label': `${t.name} file` }));
      form.append(box);
      continue;
    }
    const box = el('fieldset', { 'data-input': t.name });
    box.append(el('legend', {}, `${t.name}  ${t.datatype}  [${t.shape.join(', ')}]`));
    const shape = el('input', { name: `${t.name}.shape`, value: JSON.stringify(defaultShape(t)), size: '24', 'aria-label': `${t.name} shape` });
    const data = el('textarea', { name: `${t.name}.data`, rows: '4', cols: '80', 'aria-label': `${t.name} data` });
    data.value = JSON.stringify(zeros(t, defaultShape(t)));
    box.append(el('label', {}, 'shape '), shape, el('br'), el('label', {}, 'data (flat, row-major) '), el('br'), data);
    form.append(box);
  }
}

function fillFrom(request: { inputs?: { name: string; shape: number[]; data: unknown[] }[] }): void {
  for (const i of request.inputs ?? []) {
    const shape = document.querySelector<HTMLInputElement>(`[name="${CSS.escape(i.name)}.shape"]`);
    const data = document.querySelector<HTMLTextAreaElement>(`[name="${CSS.escape(i.name)}.data"]`);
    if (shape) shape.value = JSON.stringify(i.shape);
    if (data) data.value = JSON.stringify(i.data);
  }
}

function readForm(model: EdgeModel): unknown {
  const file = processingOf(model.metadata())?.input;
  if (file) {
    const picked = document.querySelector<HTMLInputElement>(`[name="${CSS.escape(`${file.name}.file`)}"]`)?.files?.[0];
    const text = document.querySelector<HTMLTextAreaElement>(`[name="${CSS.escape(`${file.name}.text`)}"]`)?.value;
    if (picked) return picked;
    if (text) return text;
  }
  const inputs = model.metadata().inputs.map((t) => {
    const parse = (field: string) => {
      const v = document.querySelector<HTMLInputElement | HTMLTextAreaElement>(`[name="${CSS.escape(`${t.name}.${field}`)}"]`)!.value;
      try {
        return JSON.parse(v) as unknown;
      } catch {
        throw new Error(`${t.name} ${field} is not valid JSON`);
      }
    };
    return { name: t.name, datatype: t.datatype, shape: parse('shape'), data: parse('data') };
  });
  return { id: 'demo', inputs };
}

function argmaxRows(o: JsonInferenceResponse['outputs'][number]): string | undefined {
  if (o.shape.length !== 2 || !o.datatype.startsWith('FP')) return undefined;
  const [n, c] = o.shape;
  const d = (o.data as unknown[]).flat(Infinity as 1) as number[];
  const best: number[] = [];
  for (let r = 0; r < n; r++) {
    let b = 0;
    for (let j = 1; j < c; j++) if (d[r * c + j] > d[r * c + b]) b = j;
    best.push(b);
  }
  return best.join(', ');
}

function showResponse(r: JsonInferenceResponse, ms: number): void {
  $('latency').textContent = `${ms.toFixed(2)} ms in the page`;
  const table = el('table');
  const head = el('tr');
  head.append(el('th', {}, 'output'), el('th', {}, 'datatype'), el('th', {}, 'shape'), el('th', {}, 'argmax per row'), el('th', {}, 'data'));
  table.append(head);
  for (const o of r.outputs) {
    const row = el('tr', { 'data-output': o.name });
    const data = JSON.stringify(o.data);
    row.append(
      el('td', {}, o.name),
      el('td', {}, o.datatype),
      el('td', {}, `[${o.shape.join(', ')}]`),
      el('td', {}, argmaxRows(o) ?? ''),
      el('td', { class: 'data' }, data.length > 400 ? `${data.slice(0, 400)}…` : data),
    );
    table.append(row);
  }
  $('outputs').replaceChildren(table);
}

function showError(e: unknown): void {
  const err = e as Error & { code?: string };
  state.error = `${err.code ? `${err.code}: ` : ''}${err.message}`;
  $('error').textContent = state.error;
}

async function main(): Promise<void> {
  $('status').textContent = `loading ${bundle.name}…`;
  let model: EdgeModel;
  try {
    model = await load();
  } catch (e) {
    $('status').textContent = 'the model did not load';
    showError(e);
    return;
  }
  state.model = model;
  const rt = model.runtime;
  $('status').textContent =
    `${model.name} v${model.version} ready in ${rt.loadMs.toFixed(0)} ms: onnxruntime-web ${rt.onnxruntimeWeb}, ` +
    `${rt.executionProviders.join(' + ')}, ${rt.threads} thread${rt.threads === 1 ? '' : 's'}`;
  buildForm(model);
  const picker = $('sample') as HTMLSelectElement;
  for (const r of bundle.requests) picker.append(el('option', { value: r }, r));
  const loadSample = async () => {
    if (!picker.value) return;
    const res = await fetch(new URL(picker.value, document.baseURI));
    fillFrom((await res.json()) as Parameters<typeof fillFrom>[0]);
  };
  picker.addEventListener('change', () => void loadSample().catch(showError));
  await loadSample().catch(showError);
  $('run').addEventListener('click', async () => {
    $('error').textContent = '';
    state.error = undefined;
    try {
      const request = readForm(model);
      const t0 = performance.now();
      const response = await model.infer(request);
      const ms = performance.now() - t0;
      state.lastResponse = response;
      state.lastLatencyMs = ms;
      showResponse(response, ms);
    } catch (e) {
      showError(e);
    }
  });
  ($('run') as HTMLButtonElement).disabled = false;
  document.body.dataset.ready = 'true';
}

void main();
