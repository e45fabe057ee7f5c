/** Saliency and Grad-CAM of one image for a few classes, in one run of the gradient model. */
import { IMAGE_PIXELS, IMAGE_SIDE, NUM_CLASSES } from '../contract.ts';
import { gradCam, upsampleBilinear } from './grad-cam.ts';
import type { GradientSession } from './session.ts';

export interface ClassExplanation {
  class: number;
  /** dz_c/d(raw pixel), 28×28: which pixels, made brighter, would raise the class's score (signed). */
  saliency: Float32Array;
  /** Grad-CAM upsampled to 28×28 (≥ 0), and at the last Conv's resolution; absent without a Conv. */
  cam?: { map: Float32Array; coarse: Float32Array; side: [number, number] };
}

export interface ImageExplanation {
  logits: Float32Array;
  classes: ClassExplanation[];
}

/** One image (784 raw pixels) explained for each of `classes` (batched when the model allows). */
export async function explainImage(
  session: GradientSession,
  pixels: Float32Array,
  classes: readonly number[],
): Promise<ImageExplanation> {
  const explained: ClassExplanation[] = [];
  let logits = new Float32Array(NUM_CLASSES);
  const step = Math.min(classes.length, session.maxBatch);
  for (let start = 0; start < classes.length; start += step) {
    const chunk = classes.slice(start, start + step);
    const batch = new Float32Array(chunk.length * IMAGE_PIXELS);
    chunk.forEach((_, i) => {
      batch.set(pixels, i * IMAGE_PIXELS);
    });
    const result = await session.gradients(
      batch,
      chunk.map((target) => ({ target, kind: 'score' as const })),
    );
    logits = result.logits.slice(0, NUM_CLASSES);
    chunk.forEach((c, i) => {
      const saliency = result.inputGradient.slice(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS);
      if (!result.cam) {
        explained.push({ class: c, saliency });
        return;
      }
      const { maps, gradient, dims } = result.cam;
      const [k, h, w] = dims;
      const per = k * h * w;
      const { coarse } = gradCam(
        maps.subarray(i * per, (i + 1) * per),
        gradient.subarray(i * per, (i + 1) * per),
        dims,
      );
      explained.push({
        class: c,
        saliency,
        cam: { map: upsampleBilinear(coarse, h, w, IMAGE_SIDE, IMAGE_SIDE), coarse, side: [h, w] },
      });
    });
  }
  return { logits, classes: explained };
}
