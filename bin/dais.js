#!/usr/bin/env node
// The CLI runs the TypeScript sources through tsx's loader, so a clone needs no build step.
import { register } from 'tsx/esm/api';
// onnxruntime 1.30's Linux build otherwise keeps a telemetry database under $HOME (read-only in Lambda and in
// hardened containers) and may try to upload it; a server has no business phoning home.
process.env.ORT_DISABLE_TELEMETRY ??= '1';
register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
