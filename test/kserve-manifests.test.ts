// The KServe runtime's manifests: ServingRuntime, ClusterServingRuntime and InferenceService validated against
// KServe's published CRD schemas (../shared/specs/kserve-crds, the openAPIV3Schema Kubernetes itself checks), the
// Kubernetes objects against kubernetes-models' schemas, and the fields KServe's contract needs checked by name.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { memoryResources } from '../src/targets/container/memory.ts';
import { KSERVE_DEFAULTS, kserveManifests, QUEUE_LENGTH_METRIC, type KServeOptions } from '../src/targets/kserve/manifests.ts';
import { toYaml } from '../src/targets/container/k8s.ts';
import { requireShared } from './support/env.ts';

const options: KServeOptions = {
  ...KSERVE_DEFAULTS,
  name: 'digits',
  image: 'registry.example/dais-kserve:1',
  modelName: 'digits',
  modelFormat: 'onnx',
  storageUri: 'oci://registry.example/dais-digits-modelcar:1',
  memory: memoryResources(100 * 1024 * 1024),
};

function crdValidator(dir: string, file: string, version: string) {
  const crd = parse(readFileSync(join(dir, file), 'utf8')) as { spec: { versions: { name: string; schema: { openAPIV3Schema: object } }[] } };
  const schema = crd.spec.versions.find((v) => v.name === version)!.schema.openAPIV3Schema;
  // Kubernetes' structural schemas carry x-kubernetes-* keywords and formats (int32, …) Ajv need not know.
  return new Ajv({ strict: false, validateFormats: false, allErrors: true }).compile(schema);
}

/** Every object of every manifest, as the YAML a user applies (so what is checked is what is written). */
function objects(): { path: string; obj: Record<string, any> }[] {
  return kserveManifests(options).flatMap((f) => parseAllDocuments(toYaml(f.objects)).map((d) => ({ path: f.path, obj: d.toJS() as Record<string, any> })));
}

describe('KServe runtime manifests', () => {
  it('validate against KServe\'s CRD schemas and the Kubernetes object schemas', (t) => {
    const dir = requireShared(t, 'specs/kserve-crds');
    if (!dir) return;
    const validators: Record<string, ReturnType<typeof crdValidator>> = {
      ServingRuntime: crdValidator(dir, 'serving.kserve.io_servingruntimes.yaml', 'v1alpha1'),
      ClusterServingRuntime: crdValidator(dir, 'serving.kserve.io_clusterservingruntimes.yaml', 'v1alpha1'),
      InferenceService: crdValidator(dir, 'serving.kserve.io_inferenceservices.yaml', 'v1beta1'),
    };
    const seen = new Set<string>();
    for (const { path, obj } of objects()) {
      seen.add(obj.kind);
      const v = validators[obj.kind];
      if (v) assert.ok(v(obj), `${path} ${obj.kind}: ${JSON.stringify(v.errors, null, 1)}`);
      else if (obj.kind === 'Deployment') new Deployment(obj as never).validate();
      else if (obj.kind === 'HorizontalPodAutoscaler') new HorizontalPodAutoscaler(obj as never).validate();
      else if (obj.kind === 'ConfigMap') new ConfigMap(obj as never).validate();
      else assert.equal(obj.kind, 'ScaledObject', `${path}: unexpected kind ${obj.kind}`);
    }
    assert.deepEqual([...seen].sort(), ['ClusterServingRuntime', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'InferenceService', 'ScaledObject', 'ServingRuntime']);
  });

  it('a schema check can fail: a misspelt field and a wrong type are refused', (t) => {
    const dir = requireShared(t, 'specs/kserve-crds');
    if (!dir) return;
    const v = crdValidator(dir, 'serving.kserve.io_inferenceservices.yaml', 'v1beta1');
    const isvc = objects().find((o) => o.obj.kind === 'InferenceService')!.obj;
    assert.equal(v({ ...isvc, spec: { predictor: { ...isvc.spec.predictor, minReplicas: 'two' } } }), false);
    const sr = crdValidator(dir, 'serving.kserve.io_servingruntimes.yaml', 'v1alpha1');
    const runtime = objects().find((o) => o.obj.kind === 'ServingRuntime')!.obj;
    assert.equal(sr({ ...runtime, spec: { ...runtime.spec, protocolVersions: 'v2' } }), false);
  });

  it('the runtime follows KServe\'s contract: formats, protocols, kserve-container, --model_name, ports, probes, scraping', () => {
    for (const kind of ['ServingRuntime', 'ClusterServingRuntime']) {
      const r = objects().find((o) => o.obj.kind === kind)!.obj;
      assert.deepEqual(r.spec.supportedModelFormats.map((f: { name: string; version: string; autoSelect: boolean }) => [f.name, f.version, f.autoSelect]), [
        ['onnx', '1', true],
        ['keras', '2', true],
        ['keras', '3', true],
      ]);
      assert.deepEqual(r.spec.protocolVersions, ['v2', 'grpc-v2']);
      const c = r.spec.containers[0];
      assert.equal(c.name, 'kserve-container');
      assert.ok(c.args.includes('--model_name={{.Name}}'));
      assert.ok(c.args.includes('--grpc-port=8081'));
      assert.deepEqual(c.ports, [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { name: 'h2c', containerPort: 8081, protocol: 'TCP' }]);
      assert.equal(c.readinessProbe.httpGet.path, '/v2/health/ready');
      assert.equal(c.livenessProbe.httpGet.path, '/v2/health/live');
      assert.equal(r.spec.annotations['prometheus.kserve.io/path'], '/metrics');
      assert.equal(r.spec.annotations['prometheus.kserve.io/port'], '8080');
    }
    const isvc = objects().find((o) => o.obj.kind === 'InferenceService')!.obj;
    const p = isvc.spec.predictor;
    assert.deepEqual(p.model.modelFormat, { name: 'onnx', version: '1' });
    assert.equal(p.model.runtime, 'dais');
    assert.equal(p.model.protocolVersion, 'v2');
    assert.equal(p.model.storageUri, options.storageUri);
    assert.equal(p.canaryTrafficPercent, 100);
    assert.equal(p.logger.mode, 'all');
    assert.equal(p.scaleMetric, 'concurrency');
  });

  it('carries one autoscaling example per mechanism on the same queue signal', () => {
    const all = objects();
    const hpa = all.find((o) => o.obj.kind === 'HorizontalPodAutoscaler')!.obj;
    assert.deepEqual(hpa.spec.metrics[0].pods.metric, { name: QUEUE_LENGTH_METRIC });
    assert.equal(hpa.spec.metrics[0].pods.target.averageValue, '500m');
    const rules = parse(all.find((o) => o.obj.kind === 'ConfigMap')!.obj.data['config.yaml']) as { rules: { name: { as: string }; metricsQuery: string; seriesQuery: string }[] };
    assert.equal(rules.rules[0].name.as, QUEUE_LENGTH_METRIC);
    assert.match(rules.rules[0].seriesQuery, /^dais_inference_queue_duration_seconds_sum\{/);
    assert.match(rules.rules[0].metricsQuery, /rate\(<<\.Series>>/);
    const keda = all.find((o) => o.obj.kind === 'ScaledObject')!.obj;
    assert.equal(keda.apiVersion, 'keda.sh/v1alpha1');
    assert.equal(keda.spec.scaleTargetRef.name, 'digits');
    assert.equal(keda.spec.triggers[0].type, 'prometheus');
    assert.match(keda.spec.triggers[0].metadata.query, /rate\(dais_inference_queue_duration_seconds_sum\{pod=~"digits-\.\*"\}\[1m\]\)/);
    assert.equal(keda.spec.triggers[0].metadata.threshold, '0.5');
    const dep = all.find((o) => o.obj.kind === 'Deployment')!.obj;
    assert.equal(dep.spec.template.spec.containers[0].volumeMounts[0].mountPath, '/mnt/models');
    assert.equal(hpa.spec.scaleTargetRef.name, dep.metadata.name);
  });
});
