// The one version of dais, read from package.json (esbuild inlines it into the Lambda, container and edge bundles).
import pkg from '../../package.json' with { type: 'json' };

export const DAIS_VERSION: string = pkg.version;
