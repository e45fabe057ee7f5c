/** The picture has no ink to read: blank, or too faint to tell from the paper's noise. */
export class BlankImageError extends Error {
  override name = 'BlankImageError';
}
