// A budget of request and response bytes held in this process across all HTTP connections (issue 22, slow readers).
// Per connection, connection-guard.ts already reads one request at a time and no next one while an answer sits
// unread; but 50 connections each holding a 1.5 MB request and its answer still grew RSS to 2-3 × idle. Past the
// budget the server stops reading new requests (their sockets stay paused, so the kernel holds what clients send)
// and reads them, in arrival order, as answers drain.
//
// A request reserves its declared Content-Length before its body is read (a body without one is counted once read);
// its answer's bytes are added when it is sent; both are released when the response closes (flushed to the kernel,
// or the connection gone). A request is always let in when nothing is held, so one body up to --max-body-mb is
// served even where the budget is smaller.
//
// A connection's share: an answer its client does not read holds its bytes only while nobody waits for them. While a
// request waits for the budget, every `stallMs` the answers still unflushed are looked at; a connection whose unsent
// bytes did not go down since the previous look is closed (its client reads nothing, so nothing it would have read
// is lost to it). A client that reads, however slowly, makes progress and keeps its connection; reading clients are
// never starved by ones that do not read.
import type { Socket } from 'node:net';

interface Waiter {
  bytes: number;
  go: () => void;
}

interface Held {
  socket: Socket;
  bytes: number;
  /** Set once the answer is sent (until then the request is being read or run). */
  sent: boolean;
  /** The socket's unsent bytes at the previous stall check. */
  pending?: number;
}

/** One request's hold on the budget; `release` is idempotent. */
export interface BudgetHold {
  /** Adds bytes read or sent later (a body of no declared length, the answer). */
  grow(bytes: number, sent?: boolean): void;
  release(): void;
}

export interface InflightBudgetOptions {
  /** Most bytes held across connections before new requests wait. */
  maxBytes: number;
  /** While requests wait, how often unflushed answers are checked for progress (see the top of the file). */
  stallMs?: number;
}

export const DEFAULT_STALL_MS = 10_000;

export class InflightBudget {
  readonly maxBytes: number;
  private readonly stallMs: number;
  private used = 0;
  private readonly waiting: Waiter[] = [];
  private readonly held = new Set<Held>();
  private stallTimer: ReturnType<typeof setTimeout> | undefined;
  /** Connections closed because their unread answers held bytes others waited for (for tests and logs). */
  stalledClosed = 0;

  constructor(options: InflightBudgetOptions) {
    this.maxBytes = options.maxBytes;
    this.stallMs = options.stallMs ?? DEFAULT_STALL_MS;
  }

  /** Whether a new request would wait. */
  get spent(): boolean {
    return this.waiting.length > 0 || this.used >= this.maxBytes;
  }

  /** Bytes held now. */
  get heldBytes(): number {
    return this.used;
  }

  /**
   * Reserves `bytes` for a request on `socket`. Returns the hold, or a promise of it when the budget is spent
   * (meanwhile the caller reads nothing more from the socket).
   */
  take(socket: Socket, bytes: number): BudgetHold | Promise<BudgetHold> {
    const entry: Held = { socket, bytes: 0, sent: false };
    if (this.waiting.length === 0 && this.fits(bytes)) return this.hold(entry, bytes);
    return new Promise<BudgetHold>((resolve) => {
      this.waiting.push({ bytes, go: () => resolve(this.hold(entry, bytes)) });
      this.armStallCheck();
    });
  }

  /** A hold of nothing yet, taken without waiting (for an answer whose request was not counted). */
  holdNow(socket: Socket): BudgetHold {
    return this.hold({ socket, bytes: 0, sent: false }, 0);
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.maxBytes;
  }

  private hold(entry: Held, bytes: number): BudgetHold {
    entry.bytes = bytes;
    this.used += bytes;
    this.held.add(entry);
    let released = false;
    return {
      grow: (more, sent) => {
        if (released) return;
        entry.bytes += more;
        this.used += more;
        if (sent) entry.sent = true;
      },
      release: () => {
        if (released) return;
        released = true;
        this.used -= entry.bytes;
        this.held.delete(entry);
        this.admit();
      },
    };
  }

  /** Lets waiting requests in, in arrival order, while they fit. */
  private admit(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0].bytes)) this.waiting.shift()!.go();
    if (this.waiting.length === 0) {
      clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    }
  }

  private armStallCheck(): void {
    if (this.stallTimer) return;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      for (const h of this.held) {
        if (!h.sent || h.socket.destroyed) continue;
        const pending = h.socket.writableLength;
        if (h.pending !== undefined && pending > 0 && pending >= h.pending) {
          this.stalledClosed++;
          // Its response then closes, which releases its bytes and admits the waiting.
          h.socket.destroy();
        } else h.pending = pending;
      }
      if (this.waiting.length > 0) this.armStallCheck();
    }, this.stallMs);
    this.stallTimer.unref();
  }
}

/** Request bodies declared up to this size, and answers up to it, are not counted. */
export const UNCOUNTED_BYTES = 64 * 1024;

/**
 * The budget's hold for a request about to be read: undefined for a small one while the budget is not spent (the
 * common case: two comparisons), else once the budget lets it in. A small request waits too once the budget is
 * spent, since its answer may be big.
 */
export function holdForRequest(budget: InflightBudget, socket: Socket, declared: number, maxBodyBytes: number): BudgetHold | Promise<BudgetHold> | undefined {
  if (declared <= UNCOUNTED_BYTES && !budget.spent) return undefined;
  // No declared length (NaN): counted once read. Over the limit: refused and discarded, never kept.
  return budget.take(socket, declared <= maxBodyBytes ? declared : 0);
}
