/** Sizes a served model may have, checked before it costs memory. */

/** Larger model files are refused unread (a model of this project is at most a few MiB). */
export const MAX_MODEL_BYTES = 512 * 1024 * 1024;

/** The largest max_batch_size served: the load-time checks run every batch size up to it. */
export const MAX_SERVED_BATCH = 1024;

/** Output values per image, all outputs together (logits and probabilities are 10 each). */
export const MAX_OUTPUT_VALUES_PER_IMAGE = 4096;
