/** Path parameters → a served model version, as 4xx errors a client can act on. */
import { HttpError } from '../errors.ts';
import { ModelNotFoundError, type ModelRepository, type ServedVersion } from '../repository.ts';

export function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(raw))
    throw new HttpError(400, 'invalid_version', `version '${raw.slice(0, 40)}' is not a positive integer`);
  return Number(raw);
}

/** Run `work` with the model held (see ModelRepository.use); unknown models and versions are 404. */
export async function withModel<T>(
  repository: ModelRepository,
  name: string | undefined,
  version: string | undefined,
  work: (model: ServedVersion) => Promise<T>,
): Promise<T> {
  const number = parseVersion(version);
  try {
    return await repository.use(name, number, work);
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
      `model '${model.name}' takes at most ${model.maxBatch} images per request (its max_batch_size); got ${count}`,
    );
}
