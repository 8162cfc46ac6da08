// `node --import ./bin/typescript.mjs file.ts`, or imported first: runs dais's TypeScript sources (bin/typescript-hooks.mjs).
import { register } from 'node:module';
register('./typescript-hooks.mjs', import.meta.url);
