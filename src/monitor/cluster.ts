// The two halves of monitoring under `dais serve --workers N` (the IPC is src/serve/cluster-monitor.ts):
// - in each worker, a ServeMonitor that holds no state: it forwards each request's record and each shadow run to
//   the primary, and answers the monitoring routes by asking the primary;
// - in the primary, the one Monitor, fed those records. It serves no model, so a small catalog stands in for the
//   repository: the outputs each version declared (workers send them with a version's first record).
import { InferenceError, type InferEvent, type ModelMetadata, type TensorMetadata } from '../core/index.ts';
import type { ServeMonitor } from '../serve/index.ts';
import type { LoadEvent, ModelRepository } from '../serve/repository.ts';
import { hostMonitor, reviveEvent, type MonitorWorkerLink } from '../serve/cluster-monitor.ts';
import type { Monitor, MonitorCatalog } from './monitor.ts';
import { monitorRoutes } from './routes.ts';
import type { Registry } from 'prom-client';
import type { Logger } from '../node/logger.ts';

/** A worker's monitor: nothing kept here, everything forwarded. */
export function workerMonitor(link: MonitorWorkerLink, options: { dashboard: boolean }): ServeMonitor {
  const described = new Set<string>();
  let repository: ModelRepository | undefined;
  const outputsOf = (e: InferEvent) => {
    const version = e.response?.model_version ?? e.version;
    const key = `${e.model}\u0000${version}`;
    if (described.has(key)) return undefined;
    try {
      const outputs = repository!.resolve(e.model, version).metadata().outputs;
      described.add(key);
      return outputs.map((o) => ({ name: o.name, datatype: o.datatype, shape: o.shape }));
    } catch {
      return undefined; // unloaded meanwhile; the next record of the version tries again
    }
  };
  return {
    onLoad(e: LoadEvent) {
      described.delete(`${e.name}\u0000${e.version}`);
      link.load({ name: e.name, version: e.version, path: e.path });
    },
    attach(server) {
      repository = server.repository;
      const routes = monitorRoutes(
        {
          report: async (model, version) => {
            // The default version and the protocol's 404s are this worker's to decide: it holds the repository.
            const v = version ?? server.repository.resolve(model).version;
            server.repository.resolve(model, v);
            return link.ask({ what: 'report', model, version: v });
          },
          feedback: (model, version, body) => link.ask({ what: 'feedback', model, version, body }),
          series: () => link.ask({ what: 'series' }),
          // Request and response events may reach different workers: the primary pairs them.
          events: (headers, body) => link.ask({ what: 'events', headers, body }),
        },
        options.dashboard,
      );
      return { routes, onInfer: (e) => link.infer(e, outputsOf(e)), onShadow: (r) => link.shadow(r) };
    },
    async close() {
      link.flush();
    },
  };
}

/** What the primary knows of the models: the outputs each version declared. */
class ForwardedCatalog implements MonitorCatalog {
  private readonly outputs = new Map<string, TensorMetadata[]>();
  describe(model: string, version: string, outputs: TensorMetadata[]): void {
    this.outputs.set(`${model}\u0000${version}`, outputs);
  }
  resolve(name: string, version?: string): { version: string; metadata(): ModelMetadata } {
    if (version === undefined) throw new InferenceError('MODEL_NOT_FOUND', `model '${name}': the worker names the version`);
    const outputs = this.outputs.get(`${name}\u0000${version}`);
    return {
      version,
      metadata: () => {
        if (!outputs) throw new InferenceError('VERSION_NOT_FOUND', `no request of ${name} version ${version} seen yet`);
        return { name, versions: [version], platform: '', inputs: [], outputs };
      },
    };
  }
}

/** Runs `monitor` in the cluster primary, fed by the workers. Call before the primary forks them. */
export function hostClusterMonitor(monitor: Monitor, registry: Registry, logger: Logger): void {
  const catalog = new ForwardedCatalog();
  monitor.attach({ repository: catalog, registry, logger });
  hostMonitor({
    records(records) {
      for (const r of records) {
        if (r.kind === 'shadow') monitor.onShadow(r.result);
        else {
          if (r.outputs) catalog.describe(r.event.model, r.event.response?.model_version ?? r.event.version, r.outputs as TensorMetadata[]);
          monitor.observe(reviveEvent(r.event));
        }
      }
    },
    load: (load) => monitor.onLoad(load),
    answer: async (q) => {
      if (q.what === 'report') return monitor.report(q.model, q.version);
      if (q.what === 'feedback') return monitor.feedback(q.model, q.version, q.body);
      if (q.what === 'events') return monitor.ingest(q.headers, q.body);
      return monitor.series();
    },
  });
}
