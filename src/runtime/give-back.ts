// Giving a big buffer's memory back the moment its owner is done with it, rather than when V8 next collects.
//
// Why (issue 22, slow readers; measured with glibc's malloc_stats on a 1 MB JSON request stream): a request body
// arrives as ~64 KiB chunks that node:http copies out of the socket, and is then joined into one buffer. Every one
// of those is garbage a moment later, but V8 frees an ArrayBuffer's memory only when a collection finds it dead —
// under this load after 50-130 MB of such garbage had piled up (V8 starts collecting on "external memory pressure"
// past a 64 MB step). Freed in bulk, that memory lies in holes between live allocations of glibc's main heap, which
// only ever shrinks from its top: the heap grew from 18 to 139 MB with 21 MB in use, and RSS stayed there.
//
// Detaching an ArrayBuffer drops its memory at once. Node 20 has no ArrayBuffer.prototype.transfer; posting the
// buffer, transferred, to a message port that is already closed detaches it and the message is discarded with its
// memory (measured: 3.4 µs for 64 KiB, 29 µs for 1 MiB, most of it the free itself).
//
// The rule that makes this safe: only the code that owns a buffer gives it back, and only once nothing it handed the
// bytes to keeps a view of them — every view of a detached buffer reads as empty afterwards. Only a view spanning its
// whole ArrayBuffer qualifies (a slice of Node's shared 8 KiB pool, or of a bigger buffer, never does).
//
// MessageChannel is the global one (Node's, and browsers' for the edge bundle, which shares served-model.ts): no
// node:* import, so this file bundles for a browser too.

/**
 * Frees the memory of output tensors nobody will read (load-time warm-up and timing runs): each one's data is given
 * back where it is an array of its own. A model answering 8 MB a run otherwise left tens of MB of such outputs for
 * the collector, and they were the peak of its loading (test/target-checks' --k8s check). An output whose buffer is
 * one of the run's `inputs`' (a runtime that handed an input back as an output) is left alone: the inputs are run again.
 */
export function giveBackOutputs(outputs: readonly { data: unknown }[], inputs: readonly { data: unknown }[] = []): void {
  for (const t of outputs) {
    const d = t.data;
    if (!ArrayBuffer.isView(d) || inputs.some((i) => ArrayBuffer.isView(i.data) && i.data.buffer === d.buffer)) continue;
    giveBack(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
}

/** Smaller buffers are left to the collector: for them the free costs about what it saves. */
export const GIVE_BACK_FROM_BYTES = 16 * 1024;

let sink: MessagePort | undefined;

function closedPort(): MessagePort {
  if (!sink) {
    const { port1, port2 } = new MessageChannel();
    port2.close();
    port1.close();
    sink = port1;
  }
  return sink;
}

/**
 * Frees the memory of `view`'s buffer now when the view spans all of it and it is at least GIVE_BACK_FROM_BYTES;
 * returns whether it did. Every view of that buffer is empty afterwards (see the rule at the top of the file).
 */
export function giveBack(view: Uint8Array): boolean {
  const buffer = view.buffer;
  if (view.byteOffset !== 0 || view.byteLength !== buffer.byteLength || buffer.byteLength < GIVE_BACK_FROM_BYTES) return false;
  if (!(buffer instanceof ArrayBuffer)) return false; // a SharedArrayBuffer is never detached
  try {
    closedPort().postMessage(null, [buffer]);
  } catch {
    return false; // marked untransferable (Node's own pools): left to the collector
  }
  return buffer.byteLength === 0;
}
