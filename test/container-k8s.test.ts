// Kubernetes and KServe manifests: validated against the Kubernetes object schemas (kubernetes-models' compiled
// validators for apps/v1, v1, autoscaling/v2, policy/v1; the InferenceService envelope against a JSON Schema of
// the KServe v1beta1 fields dais writes, its predictor against the core/v1 PodSpec), checked for consistency
// (selectors, ports, probes, grace period), compared whole with expected files, and built end to end by the CLI
// with the memory measured from the running server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { Pod } from 'kubernetes-models/v1/Pod';
import { Service } from 'kubernetes-models/v1/Service';
import {
  DEFAULT_K8S,
  deployment,
  horizontalPodAutoscaler,
  inferenceService,
  k8sName,
  KSERVE_CONTAINER,
  manifests,
  podDisruptionBudget,
  service,
  toYaml,
  type K8sOptions,
} from '../src/targets/container/k8s.ts';
import { LIMIT_FACTOR, memoryResources, REQUEST_FACTOR } from '../src/targets/container/memory.ts';
import type { ContainerBuildReport } from '../src/targets/container/index.ts';
import { EXAMPLES_DIR, REPO_ROOT } from './support/env.ts';

const MiB = 1024 * 1024;
const GOLDEN = join(REPO_ROOT, 'test', 'fixtures', 'container', 'k8s');

const options: K8sOptions = {
  ...DEFAULT_K8S,
  name: 'dais-digits',
  image: 'registry.example/dais-digits:1',
  port: 8080,
  memory: memoryResources(140 * MiB),
  models: ['digits'],
};

/** Throws with every schema error when a Kubernetes object does not validate. */
function validateK8s(obj: { kind?: string }): void {
  const o = obj as never;
  switch (obj.kind) {
    case 'Deployment':
      return new Deployment(o).validate();
    case 'Service':
      return new Service(o).validate();
    case 'HorizontalPodAutoscaler':
      return new HorizontalPodAutoscaler(o).validate();
    case 'PodDisruptionBudget':
      return new PodDisruptionBudget(o).validate();
    case 'InferenceService':
      return validateInferenceService(obj);
    case 'Kustomization':
      return;
    default:
      throw new Error(`no schema for kind ${obj.kind}`);
  }
}

const PREDICTOR_EXTENSION = ['minReplicas', 'maxReplicas', 'scaleMetric', 'scaleTarget'];

/** KServe v1beta1 InferenceService, the fields dais writes (from KServe's CRD: serving.kserve.io_inferenceservices). */
const isvcSchema = {
  type: 'object',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  additionalProperties: false,
  properties: {
    apiVersion: { const: 'serving.kserve.io/v1beta1' },
    kind: { const: 'InferenceService' },
    metadata: {
      type: 'object',
      required: ['name'],
      properties: {
        name: { type: 'string', pattern: '^[a-z]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        annotations: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    spec: {
      type: 'object',
      required: ['predictor'],
      additionalProperties: false,
      properties: {
        predictor: {
          type: 'object',
          required: ['containers'],
          properties: {
            minReplicas: { type: 'integer', minimum: 0 },
            maxReplicas: { type: 'integer', minimum: 1 },
            scaleMetric: { enum: ['cpu', 'memory', 'concurrency', 'rps'] },
            scaleTarget: { type: 'integer', minimum: 1 },
            containers: {
              type: 'array',
              minItems: 1,
              maxItems: 1,
              items: {
                type: 'object',
                required: ['name', 'image', 'env'],
                properties: {
                  name: { const: KSERVE_CONTAINER },
                  image: { type: 'string', minLength: 1 },
                  // KServe reads the custom predictor's protocol from this variable (v1 unless it says v2).
                  env: {
                    type: 'array',
                    contains: { type: 'object', properties: { name: { const: 'PROTOCOL' }, value: { const: 'v2' } }, required: ['name', 'value'] },
                  },
                  ports: { type: 'array', maxItems: 1 },
                },
              },
            },
          },
        },
      },
    },
  },
};
const ajv = new Ajv({ allErrors: true, strict: true });
const checkIsvc = ajv.compile(isvcSchema);

function validateInferenceService(obj: unknown): void {
  if (!checkIsvc(obj)) throw new Error(`InferenceService: ${ajv.errorsText(checkIsvc.errors)}`);
  // The predictor is a PodSpec plus KServe's extension fields: the PodSpec part must be a valid core/v1 PodSpec.
  const predictor = { ...(obj as { spec: { predictor: Record<string, unknown> } }).spec.predictor };
  for (const k of PREDICTOR_EXTENSION) delete predictor[k];
  new Pod({ metadata: { name: 'predictor' }, spec: predictor as never }).validate();
}

describe('Kubernetes manifests', () => {
  it('every object validates against its Kubernetes (or KServe) schema', () => {
    for (const f of manifests(options)) for (const obj of f.objects) assert.doesNotThrow(() => validateK8s(obj as { kind?: string }), `${f.path}`);
  });

  it('the validators reject broken objects (so passing means something)', () => {
    const d = deployment(options);
    (d.spec!.template.spec!.containers[0].ports![0] as { containerPort: unknown }).containerPort = 'http';
    assert.throws(() => validateK8s(d), /containerPort must be integer/);
    const h = horizontalPodAutoscaler(options);
    delete (h.spec as { maxReplicas?: number }).maxReplicas;
    assert.throws(() => validateK8s(h), /maxReplicas/);
    const p = podDisruptionBudget(options);
    (p.spec as Record<string, unknown>).maxUnavailable = { nope: 1 };
    assert.throws(() => validateK8s(p), /maxUnavailable/);
    const i = inferenceService(options);
    i.spec.predictor.containers[0].env = [{ name: 'PROTOCOL', value: 'v1' }];
    assert.throws(() => validateK8s(i), /env must contain at least 1 valid item/);
    const i2 = inferenceService(options);
    (i2.spec.predictor.containers[0] as { resources: unknown }).resources = { limits: 'lots' };
    assert.throws(() => validateK8s(i2), /resources/);
  });

  it('wires the objects together: selectors, ports, probes, autoscaling target, grace period', () => {
    const d = deployment(options);
    const pod = d.spec!.template;
    const c = pod.spec!.containers[0];
    for (const [k, v] of Object.entries(d.spec!.selector.matchLabels!)) assert.equal(pod.metadata!.labels![k], v, 'selector matches the pods');
    const s = service(options);
    for (const [k, v] of Object.entries(s.spec!.selector!)) assert.equal(pod.metadata!.labels![k], v, 'service selects the pods');
    assert.equal(s.spec!.ports![0].targetPort, c.ports![0].name);
    assert.equal(c.ports![0].containerPort, 8080);
    assert.deepEqual(c.env, [{ name: 'PORT', value: '8080' }]);
    assert.equal(c.readinessProbe!.httpGet!.path, '/v2/health/ready');
    assert.equal(c.startupProbe!.httpGet!.path, '/v2/health/ready');
    assert.equal(c.livenessProbe!.httpGet!.path, '/v2/health/live');
    assert.ok(pod.spec!.terminationGracePeriodSeconds! > options.drainTimeoutS, 'SIGKILL only after the server\'s drain');
    // The drain keeps accepting until the readiness probe has seen 503 (period × failures), and SIGKILL comes only
    // after that and the drain timeout.
    const graceMs = Number(c.args![c.args!.indexOf('--drain-grace-ms') + 1]);
    assert.ok(graceMs >= c.readinessProbe!.periodSeconds! * c.readinessProbe!.failureThreshold! * 1000, String(c.args));
    assert.ok(pod.spec!.terminationGracePeriodSeconds! > graceMs / 1000 + options.drainTimeoutS);
    assert.equal(d.spec!.replicas, undefined, 'the HPA owns the replica count');
    const h = horizontalPodAutoscaler(options);
    assert.deepEqual(h.spec!.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata!.name });
    assert.ok(h.spec!.minReplicas! >= 2, 'two pods, so the PDB lets a node drain without downtime');
    const pdb = podDisruptionBudget(options);
    assert.deepEqual(pdb.spec!.selector!.matchLabels, d.spec!.selector.matchLabels);
    const isvc = inferenceService(options);
    const ic = isvc.spec.predictor.containers[0];
    assert.equal(ic.readinessProbe!.httpGet!.port, ic.ports![0].containerPort);
    assert.deepEqual(ic.resources, c.resources);
    assert.equal(c.securityContext!.readOnlyRootFilesystem, true);
    assert.equal(pod.spec!.securityContext!.runAsNonRoot, true);
  });

  it('sizes memory from the measured peak: request 1.25×, limit 2×, rounded up to 16 MiB', () => {
    const r = memoryResources(140 * MiB);
    assert.equal(r.request, '176Mi'); // 175 MiB → 176
    assert.equal(r.limit, '288Mi'); // 280 MiB → 288
    assert.ok(r.requestBytes >= 140 * MiB * REQUEST_FACTOR && r.limitBytes >= 140 * MiB * LIMIT_FACTOR);
    const c = deployment(options).spec!.template.spec!.containers[0];
    assert.deepEqual(c.resources, { requests: { cpu: '1', memory: '176Mi' }, limits: { memory: '288Mi' } });
  });

  it('names objects as Kubernetes allows', () => {
    assert.equal(k8sName('registry.example:5000/team/Dais_Digits:1'), 'dais-digits');
    assert.equal(k8sName('dais-examples:latest'), 'dais-examples');
    assert.match(k8sName('x'.repeat(80)), /^x{63}$/);
  });

  it('writes the expected YAML (test/fixtures/container/k8s/; DAIS_UPDATE_GOLDEN=1 rewrites it)', () => {
    for (const f of manifests(options)) {
      const file = join(GOLDEN, f.path.replace('/', '-'));
      const text = toYaml(f.objects);
      if (process.env.DAIS_UPDATE_GOLDEN === '1') {
        mkdirSync(GOLDEN, { recursive: true });
        writeFileSync(file, text);
      }
      assert.ok(existsSync(file), `${file}: run with DAIS_UPDATE_GOLDEN=1 once and review it`);
      assert.equal(text, readFileSync(file, 'utf8'), f.path);
    }
  });

  it('dais build --k8s measures the running server\'s memory and writes valid manifests', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dais-k8s-'));
    try {
      const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'dais.js'), 'build', join(EXAMPLES_DIR, 'mlp'), '--target', 'container', '--out', dir, '--k8s', '--max-replicas', '4', '--cpu', '0.5', '--json'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const report = JSON.parse(r.stdout) as ContainerBuildReport;
      const k = report.k8s!;
      // A Node process with onnxruntime and one small model: tens to a few hundred MiB, never nothing.
      assert.ok(k.memory.measuredPeakRssBytes > 40 * MiB && k.memory.measuredPeakRssBytes < 2048 * MiB, `measured ${k.memory.measuredPeakRssBytes} B`);
      assert.deepEqual(k.memory, memoryResources(k.memory.measuredPeakRssBytes));
      assert.equal(k.name, 'dais-mlp');
      for (const f of ['k8s/deployment.yaml', 'k8s/service.yaml', 'k8s/hpa.yaml', 'k8s/pdb.yaml', 'k8s/kustomization.yaml', 'kserve/inferenceservice.yaml']) {
        assert.ok(k.files.includes(f), f);
        for (const doc of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
          const obj = doc.toJS() as { kind?: string };
          assert.doesNotThrow(() => validateK8s(obj), f);
          if (obj.kind === 'Deployment') {
            const c = (obj as unknown as ReturnType<typeof deployment>).spec!.template.spec!.containers[0];
            assert.equal(c.image, 'dais-mlp:latest');
            assert.deepEqual(c.resources, { requests: { cpu: '0.5', memory: k.memory.request }, limits: { memory: k.memory.limit } });
          }
          if (obj.kind === 'HorizontalPodAutoscaler') assert.equal((obj as unknown as ReturnType<typeof horizontalPodAutoscaler>).spec!.maxReplicas, 4);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
