// The peer: what a team writes today without an inference server. node:http + onnxruntime-node, the v2 JSON
// request parsed with JSON.parse, one model run per request, no batching, no validation beyond what onnxruntime
// does. dais is measured against it in the same run. Usage: node --import tsx peer-server.ts <model.onnx>
import { createServer } from 'node:http';
import { basename } from 'node:path';
import * as ort from 'onnxruntime-node';

const TYPES: Record<string, { type: ort.Tensor.Type; make: (d: number[]) => ort.Tensor.DataType }> = {
  FP32: { type: 'float32', make: (d) => Float32Array.from(d) },
  FP64: { type: 'float64', make: (d) => Float64Array.from(d) },
  INT32: { type: 'int32', make: (d) => Int32Array.from(d) },
  INT64: { type: 'int64', make: (d) => BigInt64Array.from(d, (v) => BigInt(v)) },
  UINT8: { type: 'uint8', make: (d) => Uint8Array.from(d) },
  BOOL: { type: 'bool', make: (d) => Uint8Array.from(d, (v) => (v ? 1 : 0)) },
};
const V2: Record<string, string> = { float32: 'FP32', float64: 'FP64', int32: 'INT32', int64: 'INT64', uint8: 'UINT8', bool: 'BOOL' };

async function main() {
  const file = process.argv[2];
  const name = basename(file).replace(/\.onnx$/, '');
  // Default session options, as a hand-written server would have them.
  const session = await ort.InferenceSession.create(file);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { inputs: { name: string; shape: number[]; datatype: string; data: number[] }[] };
        const feeds: Record<string, ort.Tensor> = {};
        for (const i of body.inputs) feeds[i.name] = new ort.Tensor(TYPES[i.datatype].type, TYPES[i.datatype].make(i.data.flat(Infinity as 1) as number[]), i.shape);
        const results = await session.run(feeds);
        const outputs = Object.entries(results).map(([n, t]) => ({
          name: n,
          datatype: V2[t.type] ?? t.type,
          shape: t.dims,
          data: t.type === 'int64' ? Array.from(t.data as BigInt64Array, Number) : Array.from(t.data as Float32Array),
        }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ model_name: name, outputs }));
      } catch (e) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (e as Error).message }));
      }
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as { port: number }).port;
    process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, model: name })}\n`);
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

main().catch((e) => {
  process.stderr.write(`peer server: ${(e as Error).message}\n`);
  process.exit(1);
});
