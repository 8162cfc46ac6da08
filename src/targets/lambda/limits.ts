import { UserError } from '../../core/errors.ts';
// AWS Lambda's deployment-package limits (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html,
// read 2026-11-24) and the checks a build runs against them.

export const LAMBDA_LIMITS = {
  /** A .zip uploaded directly with the Lambda API (CreateFunction/UpdateFunctionCode): 50 MB. */
  zipDirectUploadBytes: 50 * 1024 * 1024,
  /** The unzipped package, layers included: 250 MB, which AWS states as 262,144,000 bytes. */
  unzippedBytes: 262_144_000,
  /** A container image, uncompressed, all layers: 10 GB. */
  imageBytes: 10 * 1024 * 1024 * 1024,
} as const;

export type LambdaLimit = 'zip-direct-upload' | 'unzipped' | 'image';

/** A package over one of Lambda's limits: the message names the limit and the ways out. */
export class LambdaLimitError extends UserError {
  constructor(
    readonly limit: LambdaLimit,
    readonly sizeBytes: number,
    readonly limitBytes: number,
    message: string,
  ) {
    super(message);
    this.name = 'LambdaLimitError';
  }
}

export function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export const QUANTIZE_HINT = "or shrink the model: add '--quantize int8-weights' to this build (weights stored in 8 bits, about 4x smaller, accuracy-checked as 'dais optimize' does)";

/** Shell-quotes one word when it needs it, so a printed command works when pasted. */
function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/**
 * The refusal with the quantize suggestion as the whole command to run (`dais <args> --quantize int8-weights`);
 * a build that already quantized gets no such suggestion.
 */
export function withQuantizeCommand(e: LambdaLimitError, args: readonly string[]): LambdaLimitError {
  const quantized = args.some((a) => /^--(quantize|prune-trees)(=|$)/.test(a));
  const hint = quantized ? 'even with the model quantized' : `or shrink the model with 8-bit weights (about 4x smaller, accuracy-checked as 'dais optimize' does): ${['dais', ...args, '--quantize', 'int8-weights'].map(shellWord).join(' ')}`;
  return new LambdaLimitError(e.limit, e.sizeBytes, e.limitBytes, e.message.replace(QUANTIZE_HINT, hint));
}

export interface PackageSizes {
  unzippedBytes: number;
  zipBytes?: number;
  modelBytes: number;
}

/** Checks a zip package; `viaS3` skips the direct-upload limit (sam deploy uploads the zip through S3). */
export function checkZipPackage(sizes: PackageSizes, viaS3: boolean): void {
  const { unzippedBytes, zipBytes, modelBytes } = sizes;
  if (unzippedBytes > LAMBDA_LIMITS.unzippedBytes) {
    throw new LambdaLimitError(
      'unzipped',
      unzippedBytes,
      LAMBDA_LIMITS.unzippedBytes,
      `the function unzipped is ${mb(unzippedBytes)} (${unzippedBytes} bytes; the model is ${mb(modelBytes)} of it), over Lambda's 250 MB limit for an unzipped .zip package with its layers (${LAMBDA_LIMITS.unzippedBytes} bytes). ` +
        `Build the container-image variant instead ('--package image': images may be up to 10 GB), ${QUANTIZE_HINT}.`,
    );
  }
  if (!viaS3 && zipBytes !== undefined && zipBytes > LAMBDA_LIMITS.zipDirectUploadBytes) {
    throw new LambdaLimitError(
      'zip-direct-upload',
      zipBytes,
      LAMBDA_LIMITS.zipDirectUploadBytes,
      `function.zip is ${mb(zipBytes)} (${zipBytes} bytes; the model is ${mb(modelBytes)} unzipped), over Lambda's 50 MB limit for a .zip uploaded directly (${LAMBDA_LIMITS.zipDirectUploadBytes} bytes). ` +
        `Build the container-image variant instead ('--package image': images may be up to 10 GB), ${QUANTIZE_HINT}; ` +
        `or pass '--via-s3' if you deploy through S3 (sam deploy does), where only the 250 MB unzipped limit applies.`,
    );
  }
}

export function checkImagePackage(sizes: PackageSizes): void {
  if (sizes.unzippedBytes > LAMBDA_LIMITS.imageBytes) {
    throw new LambdaLimitError(
      'image',
      sizes.unzippedBytes,
      LAMBDA_LIMITS.imageBytes,
      `the function's files are ${mb(sizes.unzippedBytes)}, over Lambda's 10 GB limit for a container image (${LAMBDA_LIMITS.imageBytes} bytes); ${QUANTIZE_HINT}.`,
    );
  }
}
