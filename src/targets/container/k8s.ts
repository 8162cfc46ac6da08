// Kubernetes manifests for the image: Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget (plain
// Kubernetes, applied with kustomize), and a KServe InferenceService with a custom predictor speaking v2.
// Pure functions of their options; typed with kubernetes-types so a misspelt field does not compile.
import type { Deployment } from 'kubernetes-types/apps/v1.js';
import type { HorizontalPodAutoscaler } from 'kubernetes-types/autoscaling/v2.js';
import type { Container, Probe, SecurityContext, Service } from 'kubernetes-types/core/v1.js';
import type { ObjectMeta } from 'kubernetes-types/meta/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import { stringify } from 'yaml';
import type { MemoryResources } from './memory.ts';

export interface K8sOptions {
  /** DNS-1123 name of every object, e.g. dais-digits. */
  name: string;
  /** The image reference the cluster pulls. */
  image: string;
  port: number;
  memory: MemoryResources;
  /** CPU request per pod, in cores (the HPA's utilisation is measured against it). */
  cpu: number;
  minReplicas: number;
  maxReplicas: number;
  /** Average CPU utilisation the HPA keeps, in % of the request. */
  targetCpuPercent: number;
  /** The server's drain timeout on SIGTERM (dais serve --drain-timeout-s, default 30). */
  drainTimeoutS: number;
  models: string[];
}

/** KServe's InferenceService, the part dais writes (serving.kserve.io/v1beta1). */
export interface InferenceService {
  apiVersion: 'serving.kserve.io/v1beta1';
  kind: 'InferenceService';
  metadata: ObjectMeta;
  spec: {
    predictor: {
      minReplicas?: number;
      maxReplicas?: number;
      scaleMetric?: 'cpu' | 'memory' | 'concurrency' | 'rps';
      scaleTarget?: number;
      terminationGracePeriodSeconds?: number;
      containers: Container[];
    };
  };
}

export const DEFAULT_K8S = { cpu: 1, minReplicas: 2, maxReplicas: 10, targetCpuPercent: 70, drainTimeoutS: 30 };
/** KServe finds a custom predictor's server in the container of this name, and reads PROTOCOL from its env. */
export const KSERVE_CONTAINER = 'kserve-container';

/** A Kubernetes object name (RFC 1123 label) from an image name: dais-digits from registry/dais-digits:1. */
export function k8sName(imageName: string): string {
  const last = imageName.split('/').pop()!.split(':')[0];
  const name = last.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
  return name || 'dais-model';
}

function labels(o: K8sOptions): Record<string, string> {
  return { 'app.kubernetes.io/name': o.name, 'app.kubernetes.io/component': 'model-server', 'app.kubernetes.io/part-of': 'dais' };
}

function selector(o: K8sOptions): Record<string, string> {
  return { 'app.kubernetes.io/name': o.name };
}

function annotations(o: K8sOptions): Record<string, string> {
  return {
    'dais.dev/models': o.models.join(','),
    'dais.dev/measured-peak-rss': `${Math.ceil(o.memory.measuredPeakRssBytes / (1024 * 1024))}Mi`,
  };
}

function httpProbe(path: string, port: number | string, periodSeconds: number, failureThreshold: number): Probe {
  return { httpGet: { path, port }, periodSeconds, timeoutSeconds: 2, failureThreshold };
}

/** Nothing to write, nothing to gain: the server needs no privilege and no writable root (tested under runc). */
function containerSecurity(): SecurityContext {
  return { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] } };
}

function resources(o: K8sOptions): Container['resources'] {
  // No CPU limit: a limit throttles inference in bursts; the request is what scheduling and the HPA use.
  return { requests: { cpu: String(o.cpu), memory: o.memory.request }, limits: { memory: o.memory.limit } };
}

/** Readiness probe: every 5 s, two failures mark the pod unready. */
const READINESS_PERIOD_S = 5;
const READINESS_FAILURES = 2;
/**
 * On SIGTERM the server answers readiness 503 at once but keeps accepting for this long (--drain-grace-ms): the
 * readiness probe needs up to period × failures to see it, and endpoint removal takes a few seconds to reach every
 * kube-proxy and ingress. Requests routed meanwhile are served (with connection: close), not refused.
 */
const DRAIN_GRACE_S = READINESS_PERIOD_S * READINESS_FAILURES;

/** What `dais serve` is given in the pod: the drain the grace period below is sized for. */
function serveArgs(o: K8sOptions): string[] {
  return ['--drain-grace-ms', String(DRAIN_GRACE_S * 1000), '--drain-timeout-s', String(o.drainTimeoutS)];
}

/**
 * The grace period outlasts the server's whole drain (accepting for DRAIN_GRACE_S, then finishing in-flight requests
 * for up to drainTimeoutS), so Kubernetes never SIGKILLs a pod still finishing requests.
 */
function gracePeriod(o: K8sOptions): number {
  return DRAIN_GRACE_S + o.drainTimeoutS + 5;
}

export function deployment(o: K8sOptions): Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: o.name, labels: labels(o) },
    spec: {
      // No replicas: the HorizontalPodAutoscaler owns the count, so re-applying this file never resets it.
      selector: { matchLabels: selector(o) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: { labels: labels(o), annotations: annotations(o) },
        spec: {
          terminationGracePeriodSeconds: gracePeriod(o),
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'server',
              image: o.image,
              imagePullPolicy: 'IfNotPresent',
              ports: [{ name: 'http', containerPort: o.port, protocol: 'TCP' }],
              args: serveArgs(o),
              env: [{ name: 'PORT', value: String(o.port) }],
              resources: resources(o),
              // Loading (and warming up) models can take a while: the startup probe covers it, up to 2 minutes.
              startupProbe: httpProbe('/v2/health/ready', 'http', 2, 60),
              readinessProbe: httpProbe('/v2/health/ready', 'http', READINESS_PERIOD_S, READINESS_FAILURES),
              livenessProbe: httpProbe('/v2/health/live', 'http', 10, 3),
              securityContext: containerSecurity(),
            },
          ],
        },
      },
    },
  };
}

export function service(o: K8sOptions): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: o.name, labels: labels(o) },
    spec: { type: 'ClusterIP', selector: selector(o), ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }] },
  };
}

/** An autoscaling/v2 HPA of the Deployment of the same name, on the given metrics (shared with the KServe target). */
export function deploymentHpa(
  d: { name: string; labels: Record<string, string>; minReplicas: number; maxReplicas: number },
  metrics: NonNullable<HorizontalPodAutoscaler['spec']>['metrics'],
  behavior?: NonNullable<HorizontalPodAutoscaler['spec']>['behavior'],
): HorizontalPodAutoscaler {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name: d.name, labels: d.labels },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: d.name },
      minReplicas: d.minReplicas,
      maxReplicas: d.maxReplicas,
      metrics,
      ...(behavior ? { behavior } : {}),
    },
  };
}

export function horizontalPodAutoscaler(o: K8sOptions): HorizontalPodAutoscaler {
  return deploymentHpa({ ...o, labels: labels(o) }, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: o.targetCpuPercent } } }]);
}

export function podDisruptionBudget(o: K8sOptions): PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: o.name, labels: labels(o) },
    // One pod at a time during node drains; with minReplicas ≥ 2 the service stays up.
    spec: { maxUnavailable: 1, selector: { matchLabels: selector(o) } },
  };
}

export function inferenceService(o: K8sOptions): InferenceService {
  return {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name: o.name, labels: labels(o), annotations: annotations(o) },
    spec: {
      predictor: {
        minReplicas: o.minReplicas,
        maxReplicas: o.maxReplicas,
        scaleMetric: 'cpu',
        scaleTarget: o.targetCpuPercent,
        terminationGracePeriodSeconds: gracePeriod(o),
        containers: [
          {
            name: KSERVE_CONTAINER,
            image: o.image,
            imagePullPolicy: 'IfNotPresent',
            // Knative allows one port; KServe routes /v2/... to it.
            ports: [{ containerPort: o.port, protocol: 'TCP' }],
            args: serveArgs(o),
            env: [
              { name: 'PROTOCOL', value: 'v2' },
              { name: 'PORT', value: String(o.port) },
            ],
            resources: resources(o),
            readinessProbe: httpProbe('/v2/health/ready', o.port, READINESS_PERIOD_S, READINESS_FAILURES),
            livenessProbe: httpProbe('/v2/health/live', o.port, 10, 3),
            securityContext: containerSecurity(),
          },
        ],
      },
    },
  };
}

export interface ManifestFile {
  path: string;
  objects: object[];
}

function kustomization(o: K8sOptions, files: string[]): object {
  const [imageName, tag] = splitImage(o.image);
  return {
    apiVersion: 'kustomize.config.k8s.io/v1beta1',
    kind: 'Kustomization',
    resources: files,
    // `kustomize edit set image <name>=<registry>/<name>:<tag>` points the Deployment at a pushed image.
    images: [{ name: imageName, newTag: tag }],
  };
}

function splitImage(ref: string): [string, string] {
  const i = ref.lastIndexOf(':');
  return i > ref.lastIndexOf('/') ? [ref.slice(0, i), ref.slice(i + 1)] : [ref, 'latest'];
}

/** Every manifest file dais writes, relative to the output folder. */
export function manifests(o: K8sOptions): ManifestFile[] {
  const plain: ManifestFile[] = [
    { path: 'k8s/deployment.yaml', objects: [deployment(o)] },
    { path: 'k8s/service.yaml', objects: [service(o)] },
    { path: 'k8s/hpa.yaml', objects: [horizontalPodAutoscaler(o)] },
    { path: 'k8s/pdb.yaml', objects: [podDisruptionBudget(o)] },
  ];
  return [
    ...plain,
    { path: 'k8s/kustomization.yaml', objects: [kustomization(o, plain.map((f) => f.path.slice('k8s/'.length)))] },
    { path: 'kserve/inferenceservice.yaml', objects: [inferenceService(o)] },
  ];
}

export function toYaml(objects: object[]): string {
  return objects.map((x) => stringify(x, { lineWidth: 0 })).join('---\n');
}
