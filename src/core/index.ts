// The runtime-agnostic core: the same module runs in the server, a Lambda and a browser (no node:* imports).
export * from './datatypes.ts';
export * from './errors.ts';
export * from './tensor.ts';
export * from './protocol.ts';
export * from './codec/index.ts';
export * from './validate.ts';
export * from './request-guard.ts';
export * from './v2-app.ts';
export { ownedArray, slabArray, type TypedArray } from './slab.ts';
export * from './model-configuration.ts';
export { DAIS_VERSION } from './version.ts';
export * from './startup.ts';
export * from './router.ts';
