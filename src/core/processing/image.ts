// Image preprocessing on decoded RGB pixels: resize the shorter side, center-crop, scale, normalise, lay out as
// NCHW or NHWC. Pure arithmetic, so the server, a Lambda and a browser turn the same pixels into the same tensor;
// only the decoders (sharp in Node, the browser's own) differ.
//
// The resize is bilinear with the support widened by the scale factor when shrinking (a triangle filter over
// every source pixel the output pixel covers) and each pass rounded to 8 bits, as Pillow does: torchvision's
// Resize on a PIL image is the reference the tests compare with.

/** Decoded pixels: `data` holds width × height × 3 bytes, row-major, RGB. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface ImageStep {
  /** The model input the tensor feeds. */
  input: string;
  /** Shorter side after resizing (before the crop); absent = no resize. */
  resize?: number;
  /** Center crop [height, width]; absent = the resized image as it is. */
  crop?: [number, number];
  /** Multiplies each 0..255 value before mean/std. Default 1/255. */
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  layout: 'NCHW' | 'NHWC';
  /** Largest width × height accepted, read from the header before decoding (decompression bombs). */
  maxPixels: number;
}

export const DEFAULT_MAX_PIXELS = 40_000_000;

interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  width: number;
}

function taps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // triangle filter: support 1, widened when shrinking
  const width = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * width);
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support + 0.5));
    const hi = Math.min(inSize, Math.floor(center + support + 0.5));
    let total = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j - center + 0.5) / filterScale));
      weights[i * width + j - lo] = w;
      total += w;
    }
    if (total > 0) for (let j = 0; j < hi - lo; j++) weights[i * width + j] /= total;
    start[i] = lo;
    count[i] = hi - lo;
  }
  return { start, count, weights, width };
}

const clamp8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** Bilinear (antialiased when shrinking) resize of RGB pixels to width × height. */
export function resizeRgb(image: RgbImage, width: number, height: number): RgbImage {
  if (image.width === width && image.height === height) return image;
  // Horizontal pass, then vertical, each rounded to 8 bits (as Pillow does).
  const h = taps(image.width, width);
  const mid = new Uint8Array(width * image.height * 3);
  for (let y = 0; y < image.height; y++) {
    const row = y * image.width * 3;
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      const s = h.start[x], base = x * h.width;
      for (let k = 0; k < h.count[x]; k++) {
        const w = h.weights[base + k], p = row + (s + k) * 3;
        r += w * image.data[p]; g += w * image.data[p + 1]; b += w * image.data[p + 2];
      }
      const o = (y * width + x) * 3;
      mid[o] = clamp8(r); mid[o + 1] = clamp8(g); mid[o + 2] = clamp8(b);
    }
  }
  const v = taps(image.height, height);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const s = v.start[y], base = y * v.width;
    for (let x = 0; x < width; x++) {
      let r = 0, g = 0, b = 0;
      for (let k = 0; k < v.count[y]; k++) {
        const w = v.weights[base + k], p = ((s + k) * width + x) * 3;
        r += w * mid[p]; g += w * mid[p + 1]; b += w * mid[p + 2];
      }
      const o = (y * width + x) * 3;
      out[o] = clamp8(r); out[o + 1] = clamp8(g); out[o + 2] = clamp8(b);
    }
  }
  return { width, height, data: out };
}

/** The size torchvision's Resize(n) gives: the shorter side becomes n, the longer keeps the aspect (truncated). */
export function shorterSideSize(width: number, height: number, shorter: number): [number, number] {
  if (width <= height) return [shorter, Math.floor((shorter * height) / width)];
  return [Math.floor((shorter * width) / height), shorter];
}

/** Center crop as torchvision's CenterCrop: offsets rounded half to even of (size - crop) / 2. */
export function centerCrop(image: RgbImage, cropHeight: number, cropWidth: number): RgbImage {
  if (cropWidth > image.width || cropHeight > image.height) {
    throw new RangeError(`the image is ${image.width}×${image.height} after resizing, smaller than the ${cropWidth}×${cropHeight} crop`);
  }
  const top = Math.round((image.height - cropHeight) / 2);
  const left = Math.round((image.width - cropWidth) / 2);
  const out = new Uint8Array(cropWidth * cropHeight * 3);
  for (let y = 0; y < cropHeight; y++) {
    const from = ((top + y) * image.width + left) * 3;
    out.set(image.data.subarray(from, from + cropWidth * 3), y * cropWidth * 3);
  }
  return { width: cropWidth, height: cropHeight, data: out };
}

/** Decoded pixels → the model's float tensor for one image (no batch dimension): [3, H, W] or [H, W, 3]. */
export function imageToTensor(image: RgbImage, step: ImageStep): { data: Float32Array; shape: number[] } {
  let img = image;
  if (step.resize) {
    const [w, h] = shorterSideSize(img.width, img.height, step.resize);
    img = resizeRgb(img, w, h);
  }
  if (step.crop) img = centerCrop(img, step.crop[0], step.crop[1]);
  const n = img.width * img.height;
  const out = new Float32Array(n * 3);
  const a = [0, 1, 2].map((c) => step.scale / step.std[c]);
  const b = [0, 1, 2].map((c) => -step.mean[c] / step.std[c]);
  const d = img.data;
  if (step.layout === 'NCHW') {
    for (let c = 0; c < 3; c++) {
      const ac = a[c], bc = b[c], off = c * n;
      for (let i = 0; i < n; i++) out[off + i] = d[i * 3 + c] * ac + bc;
    }
  } else {
    for (let i = 0; i < n * 3; i++) out[i] = d[i] * a[i % 3] + b[i % 3];
  }
  return { data: out, shape: step.layout === 'NCHW' ? [3, img.height, img.width] : [img.height, img.width, 3] };
}

/** Image formats recognised by their first bytes, with the pixel size read from the header without decoding. */
export function sniffImage(bytes: Uint8Array): { format: 'jpeg' | 'png' | 'webp' | 'gif'; width?: number; height?: number } | undefined {
  const b = bytes;
  if (b.length >= 24 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    return { format: 'png', width: dv.getUint32(16), height: dv.getUint32(20) };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return { format: 'jpeg', ...jpegSize(b) };
  if (b.length >= 12 && b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return { format: 'webp' };
  if (b.length >= 6 && b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return { format: 'gif' };
  return undefined;
}

function jpegSize(b: Uint8Array): { width?: number; height?: number } {
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return {};
    const marker = b[i + 1];
    const len = (b[i + 2] << 8) | b[i + 3];
    // SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC) carry the frame size.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8] };
    }
    i += 2 + len;
  }
  return {};
}
