#!/usr/bin/env node
// The CLI runs the TypeScript sources through its own loader (esbuild, bin/typescript-hooks.mjs), so a clone needs no
// build step.
import './typescript.mjs';
// onnxruntime 1.30's Linux build otherwise keeps a telemetry database under $HOME (read-only in Lambda and in
// hardened containers) and may try to upload it; a server has no business phoning home.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
// A worker of `dais serve --workers N` stays alive while its channel to the primary is open, even after an error.
// cluster.worker.disconnect() (not process.disconnect(), after which node:cluster exits with 0) keeps the exit code.
if (process.env.DAIS_CLUSTER_WORKER && process.connected) (await import('node:cluster')).default.worker?.disconnect();
