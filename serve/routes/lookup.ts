/** Model and version (from path parameters or gRPC fields) → a served model version, as 4xx errors a client can act on. */
import { VERSION_PATTERN } from '../../node/repository.ts';
import { HttpError } from '../errors.ts';
import { ModelNotFoundError, type ModelRepository, type ServedVersion } from '../repository.ts';

/** How a malformed version is refused, over HTTP (the version parameter's check) and gRPC alike. */
export const versionRefusal = {
  status: 400,
  code: 'invalid_version',
  message: (raw: string) => `version '${raw.slice(0, 40)}' is not a positive integer`,
} as const;

export function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const { status, code, message } = versionRefusal;
  if (!VERSION_PATTERN.test(raw)) throw new HttpError(status, code, message(raw));
  return Number(raw);
}

/** Run `work` with the model held (see ModelRepository.use); unknown models and versions are 404. */
export async function withModel<T>(
  repository: ModelRepository,
  name: string | undefined,
  version: number | undefined,
  work: (model: ServedVersion) => Promise<T>,
): Promise<T> {
  try {
    return await repository.use(name, version, work);
  } catch (error) {
    if (error instanceof ModelNotFoundError) throw new HttpError(404, 'model_not_found', error.message);
    throw error;
  }
}

/** A request of more images than one run of the model takes (its max_batch_size) is refused, as Triton does. */
export function assertBatchSize(model: ServedVersion, count: number): void {
  if (count > model.maxBatch)
    throw new HttpError(
      400,
      'batch_too_large',
      `model '${model.name}' takes at most ${model.maxBatch} images per request (its config's max_batch_size, or the server's --max-batch where that is 0 or unset); got ${count}`,
    );
}
