// Image platforms: Docker/OCI name the CPU 'amd64'/'arm64', Node and onnxruntime name it 'x64'/'arm64'.
export type ImageArch = 'amd64' | 'arm64';

export const IMAGE_ARCHES: readonly ImageArch[] = ['amd64', 'arm64'];

/** OCI architecture → the folder name under onnxruntime-node/bin/napi-v*\/linux/. */
export const ORT_ARCH: Record<ImageArch, string> = { amd64: 'x64', arm64: 'arm64' };

export function hostArch(): ImageArch | undefined {
  if (process.arch === 'x64') return 'amd64';
  if (process.arch === 'arm64') return 'arm64';
  return undefined;
}

export function parseArch(value: string | undefined): ImageArch {
  if (value === undefined) return hostArch() ?? 'amd64';
  if ((IMAGE_ARCHES as readonly string[]).includes(value)) return value as ImageArch;
  throw new Error(`--arch must be one of ${IMAGE_ARCHES.join(', ')}, got '${value}'`);
}
