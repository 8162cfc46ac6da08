// dais as a library (package.json exports "."): the protocol core, the server, and the build targets, for a program
// that embeds them instead of calling the CLI. Runs through a TypeScript loader (bin/typescript.mjs, as the CLI does; tsx works too).
export * from './core/index.ts';
export { serve, serverMetadata, type ServeOptions, type RunningServer } from './serve/index.ts';
export { buildContainer, type ContainerBuildOptions, type ContainerBuildReport } from './targets/container/index.ts';
