// The onnxruntime-web backend in Node: every example model answers every request with the training framework's
// predictions, its metadata matches onnxruntime-node's, and failures come back as protocol errors.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { InferenceError, requestFromJson, toJsonData } from '../src/core/index.ts';
import { ServedModelVersion } from '../src/runtime/served-model.ts';
import { onnxruntimeNode } from '../src/runtime/onnxruntime-node.ts';
import { onnxruntimeWeb, ONNXRUNTIME_WEB_VERSION } from '../src/runtime/onnxruntime-web.ts';
import { assertMatchesExpected, examples } from './edge-support.ts';

const loaded: ServedModelVersion[] = [];
after(async () => {
  for (const m of loaded) await m.dispose();
});

describe('onnxruntime-web backend (Node)', () => {
  it('names its version', () => {
    assert.match(ONNXRUNTIME_WEB_VERSION, /^\d+\.\d+\.\d+/);
  });

  for (const ex of examples()) {
    it(`${ex.name}: every request gives the framework's predictions; metadata equals onnxruntime-node's`, async () => {
      const bytes = new Uint8Array(readFileSync(ex.model));
      const web = await ServedModelVersion.load(bytes, { name: ex.name, version: '1', backend: onnxruntimeWeb });
      const native = await ServedModelVersion.load(bytes, { name: ex.name, version: '1', backend: onnxruntimeNode });
      loaded.push(web, native);
      assert.deepEqual(web.metadata(), native.metadata());
      for (const r of ex.requests) {
        const response = await web.infer(requestFromJson(r.body));
        assert.equal(response.id, r.body.id);
        const outputs = response.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, data: toJsonData(t) }));
        assertMatchesExpected(outputs, r.expected, `${ex.name}/${r.file}`);
      }
    });
  }

  it('reports a model it cannot load as UNSUPPORTED, naming onnxruntime-web', async () => {
    await assert.rejects(
      onnxruntimeWeb.createSession(new TextEncoder().encode('not an onnx model')),
      (e: unknown) => e instanceof InferenceError && e.code === 'UNSUPPORTED' && /onnxruntime-web could not load the model/.test(e.message),
    );
  });

  it('rejects a request that does not fit the model before it reaches the runtime', async () => {
    const ex = examples()[0];
    const model = await ServedModelVersion.load(new Uint8Array(readFileSync(ex.model)), { name: ex.name, version: '1', backend: onnxruntimeWeb });
    loaded.push(model);
    const input = model.metadata().inputs[0];
    const bad = requestFromJson({ inputs: [{ name: input.name, datatype: input.datatype, shape: [1, 3], data: [1, 2, 3] }] });
    await assert.rejects(model.infer(bad), (e: unknown) => e instanceof InferenceError && e.code === 'SHAPE_MISMATCH');
  });
});
