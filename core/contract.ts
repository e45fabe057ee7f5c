/**
 * The model contract every part of the project shares: what a digit image is, what a model takes and
 * gives, and MNIST's normalization. Pure constants and helpers (no Node or DOM APIs): the trainer,
 * the exporter, the server and the browser all import it, so 28/784/10 are spelled once.
 */

/** MNIST images are 28×28, one channel. */
export const IMAGE_SIDE = 28;
/** Pixels per image (28×28). */
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE;
/** Per-example input shape, NCHW without N. */
export const IMAGE_SHAPE: readonly number[] = [1, IMAGE_SIDE, IMAGE_SIDE];
/** Digits 0–9. */
export const NUM_CLASSES = 10;

/** Tensor names of the models this project writes (models made elsewhere may name theirs differently). */
export const INPUT_NAME = 'input';
export const LOGITS_NAME = 'logits';
export const PROBABILITIES_NAME = 'probabilities';

/** The tutorial's normalization: transforms.Normalize((0.1307,), (0.3081,)). */
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;

/** The metadata key whose value says whether a model normalizes its input itself. */
export const NORMALIZATION_KEY = 'normalization';

/**
 * Whether a model takes raw intensities in [0, 1] (its normalization folded into the graph by
 * `npm run export`) — else it expects MNIST-normalized values, as a torch-exported tutorial model does.
 */
export function normalizationFolded(metadata: Readonly<Record<string, string>>): boolean {
  return (metadata[NORMALIZATION_KEY] ?? '').startsWith('folded');
}

/** Raw intensities in [0, 1] → what an unfolded model takes. */
export function normalizePixels(raw: Float32Array): Float32Array {
  return raw.map((v) => (v - MNIST_MEAN) / MNIST_STD);
}

/**
 * How a server batches a model unless its config.pbtxt says otherwise: batches of up to 64 images, the
 * first request waiting at most 2 ms for company. `serve` uses these, and `export` writes them into the
 * config.pbtxt Triton reads, so both servers batch alike.
 */
export const BATCHING_DEFAULTS = { maxBatch: 64, delayMs: 2 } as const;
