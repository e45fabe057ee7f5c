/**
 * Tensors stored outside model.onnx (ONNX external data) may only name files inside the model's own
 * version folder, as Triton requires: a relative path, no `..`, no link that leads out, a regular file.
 * ORT resolves those names against the process's working directory when a model is loaded from bytes,
 * so the runner process also changes into the version folder before it creates the session.
 */
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, normalize, sep } from 'node:path';
import type { AttributeProto, GraphProto, ModelProto, TensorProto } from '../../onnx/schema.ts';

export class ExternalDataError extends Error {
  override name = 'ExternalDataError';
}

function* graphTensors(graph: GraphProto | undefined): Generator<TensorProto> {
  if (!graph) return;
  yield* graph.initializer ?? [];
  for (const node of graph.node ?? []) for (const attribute of node.attribute ?? []) yield* attributeTensors(attribute);
}

function* attributeTensors(a: AttributeProto): Generator<TensorProto> {
  if (a.t) yield a.t;
  yield* a.tensors ?? [];
  yield* graphTensors(a.g);
  for (const g of a.graphs ?? []) yield* graphTensors(g);
}

/** The external-data file names of every tensor in the model (main graph and subgraphs). */
export function externalDataLocations(model: ModelProto): string[] {
  const locations = new Set<string>();
  for (const tensor of graphTensors(model.graph)) {
    if (tensor.data_location !== 1) continue;
    const location = tensor.external_data?.find((e) => e.key === 'location')?.value;
    if (!location) throw new ExternalDataError(`tensor '${tensor.name ?? ''}' has external data without a location`);
    locations.add(location);
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
