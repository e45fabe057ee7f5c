/**
 * Tensors stored outside model.onnx (ONNX external data) may only name files inside the model's own
 * version folder, as Triton requires: a relative path, no `..`, no link that leads out, a regular file.
 * ORT resolves those names against the process's working directory when a model is loaded from bytes,
 * so the runner process also changes into the version folder before it creates the session.
 */
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import type {
  AttributeProto,
  GraphProto,
  ModelProto,
  NodeProto,
  SparseTensorProto,
  TensorProto,
} from '../../onnx/schema.ts';

export class ExternalDataError extends Error {
  override name = 'ExternalDataError';
}

// Every place ONNX stores a tensor, walked here rather than trusting ORT to check the ones it loads:
// initializers (dense and sparse), tensor attributes of nodes (dense and sparse), subgraphs, the nodes
// and attribute defaults of model-local functions, and training graphs.

function* graphTensors(graph: GraphProto | undefined): Generator<TensorProto> {
  if (!graph) return;
  yield* graph.initializer ?? [];
  for (const sparse of graph.sparse_initializer ?? []) yield* sparseTensors(sparse);
  yield* nodeTensors(graph.node);
}

function* nodeTensors(nodes: NodeProto[] | undefined): Generator<TensorProto> {
  for (const node of nodes ?? []) for (const attribute of node.attribute ?? []) yield* attributeTensors(attribute);
}

function* sparseTensors(sparse: SparseTensorProto | undefined): Generator<TensorProto> {
  if (sparse?.values) yield sparse.values;
  if (sparse?.indices) yield sparse.indices;
}

function* attributeTensors(a: AttributeProto): Generator<TensorProto> {
  if (a.t) yield a.t;
  yield* a.tensors ?? [];
  yield* sparseTensors(a.sparse_tensor);
  for (const sparse of a.sparse_tensors ?? []) yield* sparseTensors(sparse);
  yield* graphTensors(a.g);
  for (const g of a.graphs ?? []) yield* graphTensors(g);
}

function* modelTensors(model: ModelProto): Generator<TensorProto> {
  yield* graphTensors(model.graph);
  for (const f of model.functions ?? []) {
    yield* nodeTensors(f.node);
    for (const attribute of f.attribute_proto ?? []) yield* attributeTensors(attribute);
  }
  for (const training of model.training_info ?? []) {
    yield* graphTensors(training.initialization);
    yield* graphTensors(training.algorithm);
  }
}

/** The external-data file names of every tensor in the model, wherever it is stored. */
export function externalDataLocations(model: ModelProto): string[] {
  const locations = new Set<string>();
  for (const tensor of modelTensors(model)) {
    // ORT reads external_data only for EXTERNAL (1; the bytes were checked to read as ours do, onnx/one-reading.ts);
    // every 'location' entry is checked, whichever one ORT takes.
    if ((tensor.data_location ?? 0) === 0) continue;
    const named = (tensor.external_data ?? []).filter((e) => e.key === 'location').map((e) => e.value ?? '');
    if (named.length === 0 || named.some((location) => !location))
      throw new ExternalDataError(`tensor '${tensor.name ?? ''}' has external data without a location`);
    for (const location of named) locations.add(location);
  }
  return [...locations];
}

/** Throws unless every location is a regular file inside `dir` (links resolved). */
export function checkExternalData(locations: string[], dir: string): void {
  if (locations.length === 0) return;
  const root = realpathSync(dir);
  for (const location of locations) {
    const shown = JSON.stringify(location.slice(0, 80));
    const parts = location.split(/[\\/]/);
    if (isAbsolute(location) || /^[A-Za-z]:/.test(location) || parts.includes('..') || location.includes('\0'))
      throw new ExternalDataError(`external data ${shown} must be a relative path inside the model's version folder`);
    let real: string;
    try {
      real = realpathSync(join(root, normalize(location)));
    } catch {
      throw new ExternalDataError(`external data ${shown} is missing from the model's version folder`);
    }
    if (!real.startsWith(root + sep))
      throw new ExternalDataError(`external data ${shown} leads outside the model's version folder`);
    if (!statSync(real).isFile()) throw new ExternalDataError(`external data ${shown} is not a regular file`);
  }
}
