// The browser's image decoder for declared image preprocessing: createImageBitmap (EXIF orientation from the
// image) drawn on an OffscreenCanvas, read back as RGB. Resize, crop and normalisation are the core's, the same
// code the server runs; only decoding differs (see docs/processing.md for the measured tolerance).
import type { RgbImage } from '../../../core/processing/image.ts';

export async function decodeImageInBrowser(bytes: Uint8Array, maxPixels: number): Promise<RgbImage> {
  const bitmap = await createImageBitmap(new Blob([bytes as BlobPart]), { imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  try {
    const { width, height } = bitmap;
    if (width * height > maxPixels) throw new Error(`${width}×${height} pixels is over the limit of ${maxPixels}`);
    const canvas = new OffscreenCanvas(width, height);
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2D canvas context');
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, width, height).data;
    const rgb = new Uint8Array(width * height * 3);
    for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
      rgb[j] = rgba[i];
      rgb[j + 1] = rgba[i + 1];
      rgb[j + 2] = rgba[i + 2];
    }
    return { width, height, data: rgb };
  } finally {
    bitmap.close();
  }
}
