// `node --import ./bin/typescript.mjs file.ts`, or imported first: runs dais's TypeScript sources (bin/typescript-hooks.mjs).
import * as nodeModule from 'node:module';

if (typeof nodeModule.register !== 'function') {
  process.stderr.write(`dais needs Node.js 20.6 or newer (it loads its TypeScript through node:module's register); this is Node.js ${process.versions.node}\n`);
  process.exit(1);
}
nodeModule.register('./typescript-hooks.mjs', import.meta.url);
