// Webhook alerts on drift: one POST when a model version crosses into drift, one when it comes back, nothing while
// the state holds. A failed delivery (network error, non-2xx) is retried with backoff.
export interface WebhookOptions {
  url: string;
  /** Attempts after the first (default 3). */
  retries?: number;
  /** Wait before the first retry; doubles each time (default 500 ms). */
  backoffMs?: number;
  /** Per attempt (default 5 s). */
  timeoutMs?: number;
  headers?: Record<string, string>;
}

export interface AlertEvent {
  event: 'drift' | 'resolved';
  model: string;
  version: string;
  at: string;
  drifted: string[];
  features: { name: string; side: string; psi: number; pValue: number; status: string }[];
  window: { rows: number; size: number };
  report: string;
}

export interface DeliveryResult {
  event: AlertEvent;
  ok: boolean;
  attempts: number;
  status?: number;
  error?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class WebhookNotifier {
  private readonly state = new Map<string, 'ok' | 'drift'>();
  private pending = new Set<Promise<DeliveryResult>>();
  readonly deliveries: DeliveryResult[] = [];

  constructor(
    readonly options: WebhookOptions,
    private readonly onDelivery?: (r: DeliveryResult) => void,
  ) {}

  /** Feeds the latest status of a model version; sends when it differs from the last one notified. */
  update(status: 'ok' | 'drift', event: Omit<AlertEvent, 'event'>): Promise<DeliveryResult> | undefined {
    const key = `${event.model}\u0000${event.version}`;
    const was = this.state.get(key) ?? 'ok';
    if (was === status) return undefined;
    this.state.set(key, status);
    const p = this.deliver({ event: status === 'drift' ? 'drift' : 'resolved', ...event });
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
    return p;
  }

  private async deliver(event: AlertEvent): Promise<DeliveryResult> {
    const { url, retries = 3, backoffMs = 500, timeoutMs = 5000, headers = {} } = this.options;
    let last: DeliveryResult = { event, ok: false, attempts: 0 };
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt) await sleep(backoffMs * 2 ** (attempt - 1));
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'dais-monitor', ...headers },
          body: JSON.stringify(event),
          signal: AbortSignal.timeout(timeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        last = { event, ok: res.ok, attempts: attempt + 1, status: res.status };
        if (res.ok) break;
      } catch (e) {
        last = { event, ok: false, attempts: attempt + 1, error: (e as Error).message };
      }
    }
    this.deliveries.push(last);
    this.onDelivery?.(last);
    return last;
  }

  /** Waits for deliveries in progress (shutdown, tests). */
  async flush(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }
}
