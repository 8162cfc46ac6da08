// dais as a KServe serving runtime: a ServingRuntime / ClusterServingRuntime (one image, any ONNX or Keras model
// from storageUri), an InferenceService that uses it, a plain Deployment of the same container for clusters without
// KServe, and two working autoscaling examples on queue pressure (an HPA through the Prometheus adapter, a KEDA
// ScaledObject). Pure functions of their options; the Kubernetes parts typed with kubernetes-types.
import type { Deployment } from 'kubernetes-types/apps/v1.js';
import type { HorizontalPodAutoscaler } from 'kubernetes-types/autoscaling/v2.js';
import type { ConfigMap, Container, ContainerPort, Probe, ResourceRequirements, SecurityContext } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import { stringify } from 'yaml';
import { KSERVE_MODEL_DIR } from '../container/bundle.ts';
import { deploymentHpa, KSERVE_CONTAINER, type ManifestFile } from '../container/k8s.ts';
import type { MemoryResources } from '../container/memory.ts';

export interface KServeOptions {
  /** DNS-1123 name of the InferenceService, Deployment and autoscalers (e.g. dais-digits). */
  name: string;
  /** Name of the ServingRuntime / ClusterServingRuntime (default dais). */
  runtimeName: string;
  /** The server image (the runtime's container). */
  image: string;
  /** The model's name as served (KServe passes the InferenceService's name as --model_name; ours is set to it). */
  modelName: string;
  /** onnx, or keras (a .h5/.keras file converted to ONNX at load). */
  modelFormat: 'onnx' | 'keras';
  storageUri: string;
  httpPort: number;
  grpcPort: number;
  memory: MemoryResources;
  cpu: number;
  minReplicas: number;
  maxReplicas: number;
  /** Requests in flight per pod that KServe's autoscaler (scaleMetric concurrency) keeps. */
  scaleTarget: number;
  canaryTrafficPercent: number;
  /** Where KServe's logger sends a CloudEvent per request and response. */
  loggerUrl: string;
  /** Mean requests waiting per pod (Little's law over the queue-time histogram) at which the HPA / KEDA scale out. */
  queueTarget: number;
  /** Prometheus that KEDA queries. */
  prometheusUrl: string;
  /** --memory-budget of the server, MiB (several models in one pod); absent: every model loads at start. */
  memoryBudgetMb?: number;
  drainTimeoutS: number;
}

export const KSERVE_DEFAULTS = {
  runtimeName: 'dais',
  httpPort: 8080,
  grpcPort: 8081,
  cpu: 1,
  minReplicas: 1,
  maxReplicas: 10,
  scaleTarget: 4,
  canaryTrafficPercent: 100,
  // KServe's documentation's own example of a logger sink.
  loggerUrl: 'http://message-dumper.default/',
  queueTarget: 0.5,
  prometheusUrl: 'http://prometheus-operated.monitoring.svc:9090',
  drainTimeoutS: 30,
};

/** The adapter rule's and KEDA query's metric: mean requests waiting = queue seconds accrued per second. */
export const QUEUE_LENGTH_METRIC = 'dais_inference_queue_length';
const QUEUE_SECONDS_SERIES = 'dais_inference_queue_duration_seconds_sum';

/** The model formats the runtime serves, with the versions KServe matches an InferenceService's modelFormat to. */
export const SUPPORTED_MODEL_FORMATS = [
  // ONNX IR versions onnxruntime reads; "1" is the format name KServe's own runtimes use for ONNX.
  { name: 'onnx', version: '1', autoSelect: true, priority: 2 },
  // Keras files are converted to ONNX as they load (src/formats/keras: Keras 2 / tf.keras HDF5 .h5, Keras 3 .keras);
  // the runtime image bundles the HDF5 reader for it. One entry per major version, as KServe matches them.
  { name: 'keras', version: '2', autoSelect: true, priority: 1 },
  { name: 'keras', version: '3', autoSelect: true, priority: 1 },
];

/** serving.kserve.io/v1alpha1 ServingRuntime / ClusterServingRuntime, the fields dais writes. */
export interface ServingRuntime {
  apiVersion: 'serving.kserve.io/v1alpha1';
  kind: 'ServingRuntime' | 'ClusterServingRuntime';
  metadata: ObjectMeta;
  spec: {
    annotations: Record<string, string>;
    supportedModelFormats: { name: string; version: string; autoSelect: boolean; priority: number }[];
    protocolVersions: string[];
    multiModel: boolean;
    containers: Container[];
  };
}

export interface KServeInferenceService {
  apiVersion: 'serving.kserve.io/v1beta1';
  kind: 'InferenceService';
  metadata: ObjectMeta;
  spec: {
    predictor: {
      minReplicas: number;
      maxReplicas: number;
      scaleMetric: 'concurrency';
      scaleTarget: number;
      canaryTrafficPercent: number;
      terminationGracePeriodSeconds: number;
      logger: { mode: 'all'; url: string };
      model: {
        modelFormat: { name: string; version: string };
        runtime: string;
        protocolVersion: 'v2';
        storageUri: string;
        resources: ResourceRequirements;
      };
    };
  };
}

function labels(o: KServeOptions): Record<string, string> {
  return { 'app.kubernetes.io/name': o.name, 'app.kubernetes.io/component': 'model-server', 'app.kubernetes.io/part-of': 'dais' };
}

/**
 * HTTP probes, by design. A gRPC probe (`grpc: { port: 8081 }`, Kubernetes 1.27+) would call
 * grpc.health.v1.Health/Check, which the server answers on its gRPC port; but that port opens only once the models
 * are loaded, while the HTTP port listens from the start (live at once, ready after load and warmup), so the HTTP
 * probes tell "loading" from "hung". Swap `httpGet` for `grpc` in the generated YAML for a gRPC-only cluster.
 */
function probe(path: string, port: number | string, periodSeconds: number, failureThreshold: number): Probe {
  return { httpGet: { path, port }, periodSeconds, timeoutSeconds: 2, failureThreshold };
}

function resources(o: KServeOptions): ResourceRequirements {
  // No CPU limit: a limit throttles inference in bursts; the request is what scheduling and autoscaling use.
  return { requests: { cpu: String(o.cpu), memory: o.memory.request }, limits: { memory: o.memory.limit } };
}

function security(): SecurityContext {
  return { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } };
}

/** The server's flags: KServe's contract (model from /mnt/models, HTTP on $PORT, gRPC beside it) plus our own. */
function serverArgs(o: KServeOptions, modelName: string): string[] {
  const args = [`--model_name=${modelName}`, `--port=${o.httpPort}`, `--grpc-port=${o.grpcPort}`];
  if (o.memoryBudgetMb) args.push(`--memory-budget=${o.memoryBudgetMb}`);
  return args;
}

function ports(o: KServeOptions): ContainerPort[] {
  // KServe routes gRPC to the port named h2c (HTTP/2 cleartext). Knative (KServe's Serverless mode) takes one port
  // per container: there, keep the one protocol the InferenceService uses; RawDeployment serves both.
  return [
    { name: 'http', containerPort: o.httpPort, protocol: 'TCP' },
    { name: 'h2c', containerPort: o.grpcPort, protocol: 'TCP' },
  ];
}

function prometheusAnnotations(o: KServeOptions): Record<string, string> {
  return { 'prometheus.kserve.io/port': String(o.httpPort), 'prometheus.kserve.io/path': '/metrics' };
}

export function servingRuntime(o: KServeOptions, kind: 'ServingRuntime' | 'ClusterServingRuntime'): ServingRuntime {
  return {
    apiVersion: 'serving.kserve.io/v1alpha1',
    kind,
    metadata: { name: o.runtimeName, labels: { 'app.kubernetes.io/part-of': 'dais' }, annotations: { 'serving.kserve.io/server-type': 'dais' } },
    spec: {
      annotations: prometheusAnnotations(o),
      supportedModelFormats: SUPPORTED_MODEL_FORMATS,
      protocolVersions: ['v2', 'grpc-v2'],
      multiModel: false,
      containers: [
        {
          name: KSERVE_CONTAINER,
          image: o.image,
          // KServe fills {{.Name}} with the InferenceService's name: the model is served under it.
          args: serverArgs(o, '{{.Name}}'),
          env: [{ name: 'PORT', value: String(o.httpPort) }],
          ports: ports(o),
          resources: resources(o),
          startupProbe: probe('/v2/health/ready', o.httpPort, 2, 60),
          readinessProbe: probe('/v2/health/ready', o.httpPort, 5, 2),
          livenessProbe: probe('/v2/health/live', o.httpPort, 10, 3),
          securityContext: security(),
        },
      ],
    },
  };
}

export function kserveInferenceService(o: KServeOptions): KServeInferenceService {
  return {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: o.name, labels: labels(o), annotations: { 'serving.kserve.io/enable-prometheus-scraping': 'true' } },
    spec: {
      predictor: {
        minReplicas: o.minReplicas,
        maxReplicas: o.maxReplicas,
        scaleMetric: 'concurrency',
        scaleTarget: o.scaleTarget,
        canaryTrafficPercent: o.canaryTrafficPercent,
        terminationGracePeriodSeconds: o.drainTimeoutS + 15,
        logger: { mode: 'all', url: o.loggerUrl },
        model: {
          modelFormat: { name: o.modelFormat, version: o.modelFormat === 'onnx' ? '1' : '2' },
          runtime: o.runtimeName,
          protocolVersion: 'v2',
          storageUri: o.storageUri,
          resources: resources(o),
        },
      },
    },
  };
}

/**
 * The same server without KServe: a Deployment whose pod mounts the model at /mnt/models from a volume (a
 * PersistentVolumeClaim named <name>-models; swap in any volume), scaled by the HPA or KEDA example below.
 */
export function runtimeDeployment(o: KServeOptions): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: o.name, labels: labels(o) },
    spec: {
      selector: { matchLabels: { 'app.kubernetes.io/name': o.name } },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: labels(o), annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(o.httpPort), 'prometheus.io/path': '/metrics' } },
        spec: {
          terminationGracePeriodSeconds: o.drainTimeoutS + 15,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: KSERVE_CONTAINER,
              image: o.image,
              imagePullPolicy: 'IfNotPresent',
              args: serverArgs(o, o.modelName),
              env: [{ name: 'PORT', value: String(o.httpPort) }],
              ports: ports(o),
              resources: resources(o),
              startupProbe: probe('/v2/health/ready', 'http', 2, 60),
              readinessProbe: probe('/v2/health/ready', 'http', 5, 2),
              livenessProbe: probe('/v2/health/live', 'http', 10, 3),
              securityContext: security(),
              volumeMounts: [{ name: 'models', mountPath: KSERVE_MODEL_DIR, readOnly: true }],
            },
          ],
          volumes: [{ name: 'models', persistentVolumeClaim: { claimName: `${o.name}-models`, readOnly: true } }],
        },
      },
    },
  };
}

/** An HPA on a custom metric: mean requests waiting per pod, served to Kubernetes by the Prometheus adapter. */
export function queueHpa(o: KServeOptions): HorizontalPodAutoscaler {
  return deploymentHpa(
    { ...o, labels: labels(o) },
    [{ type: 'Pods', pods: { metric: { name: QUEUE_LENGTH_METRIC }, target: { type: 'AverageValue', averageValue: quantity(o.queueTarget) } } }],
    // Out fast on a queue, in slowly: a model's replica costs a load and a warmup to come back.
    { scaleUp: { stabilizationWindowSeconds: 0 }, scaleDown: { stabilizationWindowSeconds: 300 } },
  );
}

/** Kubernetes quantity of a fraction: 0.5 → 500m. */
function quantity(x: number): string {
  return Number.isInteger(x) ? String(x) : `${Math.round(x * 1000)}m`;
}

/** prometheus-adapter's rule that turns the queue-time histogram into the HPA's per-pod metric. */
export function prometheusAdapterRules(o: KServeOptions): ConfigMap {
  const rule = {
    seriesQuery: `${QUEUE_SECONDS_SERIES}{namespace!="",pod!=""}`,
    resources: { overrides: { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } } },
    name: { matches: `^${QUEUE_SECONDS_SERIES}$`, as: QUEUE_LENGTH_METRIC },
    // Seconds spent queueing per second of wall time = the mean number of requests waiting (Little's law).
    metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)',
  };
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: `${o.name}-prometheus-adapter-rules`, labels: labels(o) },
    data: { 'config.yaml': `# Merge into prometheus-adapter's rules (its --config file).\n${stringify({ rules: [rule] }, { lineWidth: 0 })}` },
  };
}

/** KEDA's ScaledObject with a prometheus trigger on the same signal (no adapter needed). */
export function kedaScaledObject(o: KServeOptions): object {
  return {
    apiVersion: 'keda.sh/v1alpha1',
    kind: 'ScaledObject',
    metadata: { name: o.name, labels: labels(o) },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: o.name },
      minReplicaCount: o.minReplicas,
      maxReplicaCount: o.maxReplicas,
      cooldownPeriod: 300,
      triggers: [
        {
          type: 'prometheus',
          metadata: {
            serverAddress: o.prometheusUrl,
            // Total requests waiting across the Deployment's pods; KEDA divides by the threshold for the replica count.
            query: `sum(rate(${QUEUE_SECONDS_SERIES}{pod=~"${o.name}-.*"}[1m]))`,
            threshold: String(o.queueTarget),
          },
        },
      ],
    },
  };
}

export function kserveManifests(o: KServeOptions): ManifestFile[] {
  return [
    { path: 'kserve/servingruntime.yaml', objects: [servingRuntime(o, 'ServingRuntime')] },
    { path: 'kserve/clusterservingruntime.yaml', objects: [servingRuntime(o, 'ClusterServingRuntime')] },
    { path: 'kserve/inferenceservice.yaml', objects: [kserveInferenceService(o)] },
    { path: 'kserve/deployment.yaml', objects: [runtimeDeployment(o)] },
    { path: 'kserve/hpa-queue.yaml', objects: [queueHpa(o), prometheusAdapterRules(o)] },
    { path: 'kserve/keda-scaledobject.yaml', objects: [kedaScaledObject(o)] },
  ];
}
