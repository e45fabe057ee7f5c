/**
 * Export a training run as a deployable model in the repository, validated first: the exported file
 * is loaded in onnxruntime-node, run on the 10,000 test images (raw [0,1] pixels, as clients send),
 * and compared with the training-side forward pass on the same weights (normalized pixels, unfolded
 * graph). A mismatch fails the export and nothing is written.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { makeDeployable } from '../core/deploy/deployable.ts';
import { METADATA_KEYS } from '../core/deploy/metadata.ts';
import { makeVariant, type Variant } from '../core/deploy/precision.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { sessionOptions } from '../node/execution.ts';
import { removeStaleTempFiles, writeModelFile } from '../node/files.ts';
import { type Dataset, loadMnist, MNIST_MEAN, MNIST_STD, normalize } from '../node/mnist.ts';
import { readRegularFile } from '../node/regular-file.ts';
import { checkModelName, checkVersion, modelPath, nextVersion, versionsOf } from '../node/repository.ts';
import { ensureTritonConfig, type TritonConfigResult } from '../node/triton/model-config-file.ts';
import { decodeModel, encodeModel } from '../onnx/codec.ts';
import type { ModelProto } from '../onnx/schema.ts';
import { readCheckpointFile } from '../train/checkpoint.ts';
import { RUN_FILES, readConfig } from '../train/run-dir.ts';

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
  /** Test data (defaults to MNIST's 10,000 test images). */
  test?: Dataset;
}

export interface ExportReport {
  path: string;
  name: string;
  version: number;
  accuracy: number;
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
    const feed = () => ({ input: new ort.Tensor('float32', image, [1, 1, 28, 28]) });
    for (let i = 0; i < 20; i++) await session.run(feed());
    const start = performance.now();
    for (let i = 0; i < runs; i++) await session.run(feed());
    return (performance.now() - start) / runs;
  } finally {
    await session.release();
  }
}

/** Max |logit difference| allowed: folding reorders float32 sums, nothing more. */
export const LOGIT_TOLERANCE = 1e-3;

async function logitsOf(model: ModelProto, images: Float32Array, count: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(model), sessionOptions('cpu', { threads: 1 }));
  try {
    const out = new Float32Array(count * 10);
    for (let start = 0; start < count; start += 1000) {
      const n = Math.min(1000, count - start);
      const input = new ort.Tensor('float32', images.subarray(start * 784, (start + n) * 784), [n, 1, 28, 28]);
      const result = await session.run({ input });
      out.set((result.logits as ort.Tensor).data as Float32Array, start * 10);
    }
    return out;
  } finally {
    await session.release();
  }
}

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

const argmax = (row: Float32Array) => row.reduce((best, v, i, a) => (v > (a[best] as number) ? i : best), 0);

export async function exportRun(options: ExportOptions): Promise<ExportReport> {
  const config = await readConfig(options.run);
  const checkpointPath = join(options.run, RUN_FILES.checkpoint);
  if (!existsSync(checkpointPath))
    throw new Error(`${options.run} has no ${RUN_FILES.checkpoint} yet (no finished epoch)`);
  const { checkpoint, sha256: checkpointSha } = await readCheckpointFile(checkpointPath);

  const out = options.out ?? 'models';
  // A variant gets a name of its own, so it never silently becomes what /predict/<model> serves.
  const name = checkModelName(options.name ?? (options.variant ? `${config.model}-${options.variant}` : config.model));
  const version = options.version === undefined ? nextVersion(out, name) : checkVersion(options.version);
  const path = modelPath(out, name, version);
  if (existsSync(path) && !options.force) throw new Error(`${path} exists; choose another --version or pass --force`);
  const precision = PRECISION[options.variant ?? 'fp32'];
  // Exporting the same weights again is refused, unless asked for: --force, or an explicit --version (reported).
  const previous = await findExport(out, name, checkpointSha, precision);
  if (previous && !options.force && options.version === undefined)
    throw new Error(`this checkpoint is already exported as ${previous}; pass --force to export it again`);

  const entry = ZOO[config.model];
  const module = entry.build();
  const { model: plain } = inferenceModel(module, { weights: checkpoint.trainer.tensors });
  const { model, report } = makeDeployable(plain, {
    mean: MNIST_MEAN,
    std: MNIST_STD,
    metadata: {
      [METADATA_KEYS.name]: name,
      [METADATA_KEYS.version]: String(version),
      [METADATA_KEYS.architecture]: `${config.model}: ${entry.title}`,
      [METADATA_KEYS.section]: entry.section,
      [METADATA_KEYS.recipe]: `${config.optimizer} lr ${config.lr}${config.optimizer === 'sgd' ? ` momentum ${config.momentum}` : ''}, batch ${config.batchSize}, schedule ${config.schedule}${config.augment ? ', augmented' : ''}${config.weightDecay ? `, weight decay ${config.weightDecay}` : ''}${config.labelSmoothing ? `, label smoothing ${config.labelSmoothing}` : ''}, seed ${config.seed}`,
      [METADATA_KEYS.epochs]: String(checkpoint.epoch),
      [METADATA_KEYS.date]: new Date().toISOString(),
      [METADATA_KEYS.producer]: 'mnist-onnx-cnn',
      [METADATA_KEYS.precision]: PRECISION.fp32,
      [METADATA_KEYS.checkpoint]: checkpointSha,
    },
  });

  const test = options.test ?? (await loadMnist('test'));
  const raw = Float32Array.from(test.images, (v) => v / 255);
  const [reference, exported] = await Promise.all([
    logitsOf(plain, normalize(test.images), test.count),
    logitsOf(model, raw, test.count),
  ]);
  const accuracyOf = (logits: Float32Array) => {
    let hits = 0;
    for (let i = 0; i < test.count; i++) if (argmax(logits.subarray(i * 10, i * 10 + 10)) === test.labels[i]) hits++;
    return (100 * hits) / test.count;
  };
  let maxLogitDifference = 0;
  let disagreements = 0;
  for (let i = 0; i < test.count; i++) {
    const a = reference.subarray(i * 10, i * 10 + 10);
    const b = exported.subarray(i * 10, i * 10 + 10);
    for (let k = 0; k < 10; k++)
      maxLogitDifference = Math.max(maxLogitDifference, Math.abs((a[k] as number) - (b[k] as number)));
    if (argmax(a) !== argmax(b)) disagreements++;
  }
  if (maxLogitDifference > LOGIT_TOLERANCE || disagreements > 0) {
    throw new Error(
      `validation failed, nothing written: the exported model differs from the training graph (max |Δlogit| ${maxLogitDifference.toExponential(2)}, ${disagreements} different predictions)`,
    );
  }
  let final = model;
  let accuracy = accuracyOf(exported);
  let variantReport: VariantReport | undefined;
  if (options.variant) {
    const variant = options.variant;
    final = makeVariant(model, variant);
    const fp32Accuracy = accuracy;
    accuracy = accuracyOf(await logitsOf(final, raw, test.count));
    const image = raw.subarray(0, 784);
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
  final.metadata_props?.push({ key: METADATA_KEYS.testAccuracy, value: accuracy.toFixed(2) });

  // Triton-ready repository: config.pbtxt beside the versions, checked before the version is written.
  const tritonConfig = await ensureTritonConfig(join(out, name), name, final);
  await removeStaleTempFiles(dirname(path), [basename(path)]); // a killed export's, never another file's
  await writeModelFile(path, final);
  return {
    path,
    name,
    version,
    accuracy,
    maxLogitDifference,
    disagreements,
    bytes: encodeModel(final).length,
    ...report,
    ...(variantReport ? { variant: variantReport } : {}),
    tritonConfig,
    ...(previous && previous !== path ? { alsoExportedAs: previous } : {}),
  };
}
