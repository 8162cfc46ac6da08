// The one version of dais. Kept here, not imported from package.json, so bundles (Lambda, edge, container) do not
// carry package.json's dependency list; test/architecture.test.ts checks that it equals package.json's version.
export const DAIS_VERSION = '0.1.0';
