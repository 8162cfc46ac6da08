// Node's image decoder for declared image preprocessing: sharp (libvips) decodes JPEG, PNG and WebP, applies the
// EXIF orientation, drops alpha and hands back 8-bit sRGB. The resize stays in src/core/processing/image.ts so
// every platform resizes identically.
import sharp from 'sharp';
import type { RgbImage } from '../core/processing/image.ts';

// One libvips thread per decode: the server's parallelism comes from concurrent requests, and libvips' default
// pool (as wide as the machine) would compete with onnxruntime for the same cores.
sharp.concurrency(1);
sharp.cache(false);

export async function decodeImageWithSharp(bytes: Uint8Array, maxPixels: number): Promise<RgbImage> {
  // limitInputPixels makes libvips refuse a header over the limit before it allocates the pixels (the core has
  // already checked PNG and JPEG headers; this covers WebP and anything the sniffing missed).
  const img = sharp(bytes, { limitInputPixels: maxPixels, failOn: 'truncated', sequentialRead: true });
  const { data, info } = await img.rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
