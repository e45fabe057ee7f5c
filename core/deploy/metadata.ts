import { NORMALIZATION_KEY } from '../contract.ts';

/** The metadata_props keys a deployable model carries (serve and the web demo read them). */
export const METADATA_KEYS = {
  name: 'name',
  version: 'version',
  architecture: 'architecture',
  section: 'tutorial_section',
  testAccuracy: 'test_accuracy',
  /** Instead of test_accuracy for a run trained with --validation: its held-out images' accuracy. */
  validationAccuracy: 'validation_accuracy',
  recipe: 'training_recipe',
  epochs: 'epochs',
  date: 'exported_at',
  labels: 'labels',
  input: 'input_contract',
  normalization: NORMALIZATION_KEY,
  producer: 'producer',
  parameters: 'parameters',
  precision: 'precision',
  /** SHA-256 of the checkpoint file the weights came from: how a repeated export is recognised. */
  checkpoint: 'checkpoint_sha256',
} as const;

/** What clients send: raw intensities, white ink on black, 28×28, batch N. */
export const INPUT_CONTRACT =
  'input: float32 [N,1,28,28], raw intensities in [0,1], white ink on black, digit centred as in MNIST (20x20 box, centre of mass at the centre); outputs: logits [N,10], probabilities [N,10]';
