/** The model zoo: the tutorial's networks under the short names users type. */
import type { Module } from '../layers/index.ts';
import { cnn } from './cnn.ts';
import { cnn3 } from './cnn3.ts';
import { CNN7_DROPOUT, cnn7 } from './cnn7.ts';
import { densenet } from './densenet.ts';
import { fastCnn } from './fast-cnn.ts';
import { inception } from './inception.ts';
import { mlp } from './mlp.ts';
import { resnet } from './resnet.ts';

/** What a network's build may change without changing its weights' shapes. */
export interface BuildOptions {
  /** Every dropout layer's probability (only for entries with a `dropout` rate). */
  dropout?: number;
}

export interface ZooEntry {
  build: (options?: BuildOptions) => Module;
  /** The rate of the network's dropout layers, for those that have them: what `--dropout` replaces. */
  dropout?: number;
  title: string;
  /** Where the tutorial introduces it. */
  section: string;
  /** Test accuracy after 10 epochs as the tutorial prints it (its six CNNs). */
  tutorialAccuracy?: number;
}

export const ZOO = {
  mlp: { build: mlp, title: 'Fully connected 784-512-256-128-64-10', section: '9.1' },
  cnn: { build: cnn, title: 'Simple CNN (2 conv + max-pool, 1 fc)', section: '9.5', tutorialAccuracy: 98.49 },
  cnn3: { build: cnn3, title: '3-conv CNN (3 conv + max-pool, 3 fc)', section: '9.5.4', tutorialAccuracy: 98.78 },
  inception: { build: inception, title: 'GoogLeNet-style InceptionA ×2', section: '9.6', tutorialAccuracy: 98.81 },
  resnet: {
    build: () => resnet('identity'),
    title: 'ResNet, identity shortcut',
    section: '9.7',
    tutorialAccuracy: 99.02,
  },
  'resnet-scaled': {
    build: () => resnet('scaled'),
    title: 'ResNet, z = 0.5·(x + y)',
    section: '9.7.4',
    tutorialAccuracy: 98.88,
  },
  'resnet-convshortcut': {
    build: () => resnet('conv'),
    title: 'ResNet, z = conv1×1(x) + y',
    section: '9.7.4',
    tutorialAccuracy: 98.97,
  },
  densenet: { build: densenet, title: 'Small DenseNet (growth 12, 2 blocks)', section: '9.7.4 (paper 2)' },
  'fast-cnn': {
    build: fastCnn,
    title: '3 strided convs with BatchNorm, no pooling (fastest to 99%)',
    section: 'beyond',
  },
  cnn7: {
    build: (o?: BuildOptions) => cnn7(1, o),
    dropout: CNN7_DROPOUT,
    title: '7-conv BatchNorm CNN, strided 5×5 downsampling (after Deotte)',
    section: 'beyond',
  },
  'cnn7-wide': {
    build: (o?: BuildOptions) => cnn7(1.5, o),
    dropout: CNN7_DROPOUT,
    title: 'cnn7 with 1.5× the channels: 48, 96, 192',
    section: 'beyond',
  },
  'cnn7-wider': {
    build: (o?: BuildOptions) => cnn7(2, o),
    dropout: CNN7_DROPOUT,
    title: 'cnn7 with 2× the channels: 64, 128, 256 (best accuracy)',
    section: 'beyond',
  },
  'cnn9-wide': {
    build: (o?: BuildOptions) => cnn7(1.5, { ...o, deeper: true }),
    dropout: CNN7_DROPOUT,
    title: 'cnn7-wide with a third 3×3 conv in each block',
    section: 'beyond',
  },
} satisfies Record<string, ZooEntry>;

export type ModelName = keyof typeof ZOO;
export const MODEL_NAMES = Object.keys(ZOO) as ModelName[];

/** The models with dropout layers, whose rate `--dropout` may set. */
export const DROPOUT_MODELS = MODEL_NAMES.filter((name) => (ZOO[name] as ZooEntry).dropout !== undefined);

/** Why `--dropout` cannot go with `models` (those without dropout layers named), or undefined when it can. */
export function dropoutRefusal(models: readonly ModelName[]): string | undefined {
  const without = [...new Set(models)].filter((name) => !DROPOUT_MODELS.includes(name));
  if (without.length === 0) return undefined;
  return `${without.join(', ')} ${without.length === 1 ? 'has' : 'have'} no dropout layers (${DROPOUT_MODELS.join(', ')} do)`;
}

/** The tutorial's six CNNs, which `npm run reproduce` and `npm start -- --all` train. */
export const TUTORIAL_MODELS = MODEL_NAMES.filter((name) => (ZOO[name] as ZooEntry).tutorialAccuracy !== undefined);

export function isModelName(name: string): name is ModelName {
  return Object.hasOwn(ZOO, name);
}

/** The zoo entry for `name`, or an error that lists the valid names. */
export function zooEntry(name: string): ZooEntry {
  if (!isModelName(name)) throw new Error(`unknown model '${name}'; choose one of: ${MODEL_NAMES.join(', ')}`);
  return ZOO[name];
}
