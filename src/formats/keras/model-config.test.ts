// The model-config shapes Keras has written over the years, as one graph.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { graphFromConfig, parseModelConfig } from './model-config.ts';
import { KerasImportError } from './errors.ts';
import { toSnakeCase } from './weights.ts';

const dense = (name: string, extra: Record<string, unknown> = {}) => ({ class_name: 'Dense', config: { name, units: 2, ...extra } });

test('Keras 2.0 Sequential (a bare layer list): the implicit input is named <first layer>_input', () => {
  const g = graphFromConfig({ class_name: 'Sequential', config: [dense('dense_1', { batch_input_shape: [null, 3], dtype: 'float32' }), dense('dense_2')] });
  assert.deepEqual(g.layers.map((l) => [l.name, l.className]), [['dense_1_input', 'InputLayer'], ['dense_1', 'Dense'], ['dense_2', 'Dense']]);
  assert.deepEqual(g.inputs, [{ layer: 'dense_1_input', node: 0, tensor: 0 }]);
  assert.deepEqual(g.outputs, [{ layer: 'dense_2', node: 0, tensor: 0 }]);
  assert.deepEqual(g.layers[2].calls, [[{ layer: 'dense_1', node: 0, tensor: 0 }]]);
});

test('tf.keras Sequential built with model.build(): the input shape comes from build_input_shape', () => {
  const g = graphFromConfig({ class_name: 'Sequential', config: { name: 's', layers: [dense('dense')], build_input_shape: [null, 5] } });
  assert.deepEqual(g.layers[0].config.batch_input_shape, [null, 5]);
  assert.throws(
    () => graphFromConfig({ class_name: 'Sequential', config: { name: 's', layers: [dense('dense')] } }),
    (e: unknown) => e instanceof KerasImportError && e.reason === 'UNSUPPORTED_FORMAT' && /declares no input shape/.test(e.message),
  );
});

test('Keras 3 Functional: keras_history tensors in args (nested lists for merges), single-tensor input_layers', () => {
  const t = (layer: string) => ({ class_name: '__keras_tensor__', config: { shape: [null, 2], dtype: 'float32', keras_history: [layer, 0, 0] } });
  const g = graphFromConfig({
    class_name: 'Functional',
    config: {
      name: 'f',
      layers: [
        { class_name: 'InputLayer', config: { name: 'in', batch_shape: [null, 2] }, name: 'in', inbound_nodes: [] },
        { class_name: 'Dense', config: { name: 'a' }, name: 'a', inbound_nodes: [{ args: [t('in')], kwargs: {} }] },
        { class_name: 'Add', config: { name: 'sum' }, name: 'sum', inbound_nodes: [{ args: [[t('a'), t('in')]], kwargs: {} }] },
      ],
      input_layers: ['in', 0, 0],
      output_layers: [['sum', 0, 0]],
    },
  });
  assert.deepEqual(g.inputs, [{ layer: 'in', node: 0, tensor: 0 }]);
  assert.deepEqual(g.layers[2].calls, [[{ layer: 'a', node: 0, tensor: 0 }, { layer: 'in', node: 0, tensor: 0 }]]);
});

test('a subclassed model and malformed JSON are refused with what to do', () => {
  assert.throws(() => graphFromConfig({ class_name: 'MyModel', config: {} }), /only Sequential and Functional models can be converted .*Functional API/);
  assert.throws(() => parseModelConfig('{"class_name": "Sequential", '), (e: unknown) => e instanceof KerasImportError && e.reason === 'CORRUPT_FILE');
});

test('Keras 3 weight groups are named after the class in snake_case', () => {
  assert.deepEqual(['Conv2D', 'BatchNormalization', 'DepthwiseConv2D', 'LSTM', 'GRU', 'Conv2DTranspose', 'PReLU'].map(toSnakeCase), [
    'conv2d',
    'batch_normalization',
    'depthwise_conv2d',
    'lstm',
    'gru',
    'conv2d_transpose',
    'p_re_lu',
  ]);
});
