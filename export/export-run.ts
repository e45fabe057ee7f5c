/**
 * Export a training run as a deployable model in the repository, validated first: the exported file
 * is loaded in onnxruntime-node, run on the 10,000 test images (a --validation run: its held-out images;
 * raw [0,1] pixels, as clients send),
 * and compared with the training-side forward pass on the same weights (normalized pixels, unfolded
 * graph). A mismatch fails the export and nothing is written.
 */

import { existsSync, lstatSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { IMAGE_PIXELS, IMAGE_SHAPE, INPUT_NAME } from '../core/contract.ts';
import { METADATA_KEYS } from '../core/deploy/metadata.ts';
import { makeVariant, type Variant } from '../core/deploy/precision.ts';
import {
  accuracyOf,
  batchedLogits,
  buildDeployable,
  ValidationError,
  validateDeployable,
} from '../core/deploy/validate.ts';
import { describeRecipe, type TrainConfig } from '../core/training/run-config.ts';
import { nodeRuntime, sessionOptions } from '../node/execution.ts';
import { removeStaleTempFiles, writeModelFile } from '../node/files.ts';
import { type Dataset, holdOut, loadMnist } from '../node/mnist.ts';
import { readRegularFile } from '../node/regular-file.ts';
import { checkModelName, checkVersion, modelPath, nextVersion, versionsOf } from '../node/repository.ts';
import { ensureTritonConfig, type TritonConfigResult } from '../node/triton/model-config-file.ts';
import { decodeModel, encodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/schema.ts';
import { readCheckpointFile } from '../train/checkpoint.ts';
import { checkHeldOut, type EvaluationSet, RUN_FILES, readConfig } from '../train/run-dir.ts';

export interface ExportOptions {
  run: string;
  /** Model name; default: the run's model, with `-fp16` / `-int8` appended for a variant. */
  name?: string;
  version?: number | string;
  out?: string;
  /** Overwrite an existing version, or export a checkpoint that is already in the repository. */
  force?: boolean;
  /** Write a smaller weight-only variant instead of float32. */
  variant?: Variant;
  /** Test data (defaults to MNIST's 10,000 test images; for a run with --validation, its held-out images). */
  test?: Dataset;
}

/**
 * What the export is checked on: the given data, or MNIST's test set, or — for a run trained with
 * --validation — its held-out training images, so such a run's export never reads the test set either.
 */
async function evaluationData(
  options: ExportOptions,
  config: TrainConfig,
): Promise<{ set: EvaluationSet; data: Dataset }> {
  if (options.test) return { set: 'test', data: options.test };
  if (config.validation !== undefined)
    return { set: 'validation', data: holdOut(await loadMnist('train'), config.validation)[1] };
  return { set: 'test', data: await loadMnist('test') };
}

export interface ExportReport {
  path: string;
  name: string;
  version: number;
  /** Accuracy (percent) on `evaluatedOn`'s images. */
  accuracy: number;
  evaluatedOn: EvaluationSet;
  evaluatedImages: number;
  /** Largest |logit difference| between the exported model and the training-side forward pass. */
  maxLogitDifference: number;
  disagreements: number;
  bytes: number;
  normalization: string;
  foldedBatchNorms: number;
  /** For a variant: how it compares with the float32 model. */
  variant?: VariantReport;
  /** Triton's `<out>/<name>/config.pbtxt`: written, or the existing one kept. */
  tritonConfig: TritonConfigResult;
  /** Another file of the repository that already held this checkpoint at this precision. */
  alsoExportedAs?: string;
}

export interface VariantReport {
  variant: Variant;
  fp32Bytes: number;
  fp32Accuracy: number;
  /** Mean batch-1 latency in ms, measured side by side. */
  fp32LatencyMs: number;
  latencyMs: number;
}

/** Largest accuracy drop (percentage points) a variant may cost before the export refuses it. */
export const VARIANT_MAX_DROP: Record<Variant, number> = { fp16: 0.1, int8: 1 };

async function batchOneLatency(model: ModelProto, image: Float32Array, runs = 300): Promise<number> {
  const session = await ort.InferenceSession.create(encodeModel(model), sessionOptions('cpu', { threads: 1 }));
  try {
    const feed = () => ({ [INPUT_NAME]: new ort.Tensor('float32', image, [1, ...IMAGE_SHAPE]) });
    for (let i = 0; i < 20; i++) await session.run(feed());
    const start = performance.now();
    for (let i = 0; i < runs; i++) await session.run(feed());
    return (performance.now() - start) / runs;
  } finally {
    await session.release();
  }
}

/** Validation runs on one CPU thread: the same answer on every machine. */
const CPU = { device: 'cpu', threads: 1 } as const;

const PRECISION: Record<Variant | 'fp32', string> = {
  fp32: 'fp32',
  fp16: 'fp16 weights, fp32 compute',
  int8: 'int8 weights (per-channel symmetric), fp32 compute',
};

/** Our exports are a few MiB: a larger file there is not one of ours, and is not read whole to find out. */
const MAX_MODEL_BYTES = 256 * 1024 * 1024;

/** The version of `name` already holding an export of this checkpoint at this precision, if any. */
async function findExport(
  root: string,
  name: string,
  checkpointSha: string,
  precision: string,
): Promise<string | undefined> {
  for (const version of versionsOf(root, name)) {
    const path = modelPath(root, name, version);
    let metadata: Map<string | null | undefined, string | null | undefined>;
    try {
      // A FIFO or /dev/zero in the repository must not hang or fill the export: regular files only.
      const bytes = await readRegularFile(path, MAX_MODEL_BYTES);
      metadata = new Map(decodeModel(bytes).metadata_props?.map((p) => [p.key, p.value]));
    } catch {
      continue; // not ours to judge: unreadable files are the server's business
    }
    if (metadata.get(METADATA_KEYS.checkpoint) === checkpointSha && metadata.get(METADATA_KEYS.precision) === precision)
      return path;
  }
  return undefined;
}

export async function exportRun(options: ExportOptions): Promise<ExportReport> {
  const config = await readConfig(options.run);
  const checkpointPath = join(options.run, RUN_FILES.checkpoint);
  if (!existsSync(checkpointPath))
    throw new Error(`${options.run} has no ${RUN_FILES.checkpoint} yet (no finished epoch)`);
  const { checkpoint, sha256: checkpointSha } = await readCheckpointFile(checkpointPath);
  // Scored on what the run held out, so config.json must still say what that was.
  checkHeldOut(checkpoint.history ?? [], config, options.run);

  const out = options.out ?? 'models';
  // A variant gets a name of its own, so it never silently becomes what /predict/<model> serves.
  const name = checkModelName(options.name ?? (options.variant ? `${config.model}-${options.variant}` : config.model));
  const version = options.version === undefined ? nextVersion(out, name) : checkVersion(options.version);
  const path = modelPath(out, name, version);
  refuseLinkedFolders([join(out, name), dirname(path)]);
  if (existsSync(path) && !options.force) throw new Error(`${path} exists; choose another --version or pass --force`);
  const precision = PRECISION[options.variant ?? 'fp32'];
  // Exporting the same weights again is refused, unless asked for: --force, or an explicit --version (reported).
  const previous = await findExport(out, name, checkpointSha, precision);
  if (previous && !options.force && options.version === undefined)
    throw new Error(`this checkpoint is already exported as ${previous}; pass --force to export it again`);

  // With --ema the run's model is the weights' average (what each epoch evaluated), not the last step's;
  // config.json (the recipe in the metadata) and the checkpoint must agree on which it is.
  if ((config.ema !== undefined) !== (checkpoint.average !== undefined))
    throw new Error(
      `${options.run}: config.json ${config.ema !== undefined ? 'asks for' : 'has no'} --ema but the checkpoint ${checkpoint.average ? 'keeps' : 'has no'} a weight average; export refused`,
    );
  const weights = checkpoint.average ?? checkpoint.trainer.tensors;
  const { plain, model, report } = buildDeployable(config.model, weights, {
    name,
    version: String(version),
    producer: 'mnist-onnx-cnn',
    extra: {
      [METADATA_KEYS.recipe]: describeRecipe(config),
      [METADATA_KEYS.epochs]: String(checkpoint.epoch),
      [METADATA_KEYS.checkpoint]: checkpointSha,
    },
  });

  const { set: evaluatedOn, data: test } = await evaluationData(options, config);
  const validation = await validateDeployable(nodeRuntime, CPU, { plain, model }, test).catch((error: unknown) => {
    throw error instanceof ValidationError ? new Error(`validation failed, nothing written: ${error.message}`) : error;
  });
  const { maxLogitDifference, disagreements } = validation;
  let final = model;
  let accuracy = validation.accuracy;
  let variantReport: VariantReport | undefined;
  if (options.variant) {
    const variant = options.variant;
    final = makeVariant(model, variant);
    const fp32Accuracy = accuracy;
    const raw = Float32Array.from(test.images, (v) => v / 255); // clients' raw [0, 1] pixels
    accuracy = accuracyOf(await batchedLogits(nodeRuntime, final, raw, test.count, CPU), test.labels, test.count);
    const image = raw.subarray(0, IMAGE_PIXELS);
    variantReport = {
      variant,
      fp32Bytes: encodeModel(model).length,
      fp32Accuracy,
      fp32LatencyMs: await batchOneLatency(model, image),
      latencyMs: await batchOneLatency(final, image),
    };
    if (fp32Accuracy - accuracy > VARIANT_MAX_DROP[variant]) {
      throw new Error(
        `validation failed, nothing written: the ${variant} variant loses ${(fp32Accuracy - accuracy).toFixed(2)} pp of accuracy (allowed ${VARIANT_MAX_DROP[variant]})`,
      );
    }
    const entry = final.metadata_props?.find((p) => p.key === METADATA_KEYS.precision);
    if (entry) entry.value = precision;
  }
  const accuracyKey = evaluatedOn === 'test' ? METADATA_KEYS.testAccuracy : METADATA_KEYS.validationAccuracy;
  final.metadata_props?.push({ key: accuracyKey, value: accuracy.toFixed(2) });

  // Triton-ready repository: config.pbtxt beside the versions, checked before the version is written.
  const tritonConfig = await ensureTritonConfig(join(out, name), name, final);
  await removeStaleTempFiles(dirname(path), [basename(path)]); // a killed export's, never another file's
  await writeModelFile(path, final);
  return {
    path,
    name,
    version,
    accuracy,
    evaluatedOn,
    evaluatedImages: test.count,
    maxLogitDifference,
    disagreements,
    bytes: encodeModel(final).length,
    ...report,
    ...(variantReport ? { variant: variantReport } : {}),
    tritonConfig,
    ...(previous && previous !== path ? { alsoExportedAs: previous } : {}),
  };
}

/**
 * Export writes only into the repository's own folders: a model or version folder that is a link leads
 * elsewhere, and `--force` there replaced a file outside the repository (an outside attack's find). The
 * repository root itself may be a link (a mounted volume is common).
 */
function refuseLinkedFolders(folders: string[]): void {
  for (const folder of folders) {
    let info: ReturnType<typeof lstatSync> | undefined;
    try {
      info = lstatSync(folder);
    } catch {} // absent: export creates it
    if (info?.isSymbolicLink())
      throw new Error(`${folder} is a link; export writes only into folders of the repository itself`);
    if (info && !info.isDirectory()) throw new Error(`${folder} is a file, not a folder; export leaves it as it is`);
  }
}
