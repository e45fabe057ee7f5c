/** The repository's refusals of a load, unload or publish, as 4xx answers a client can act on. */
import { HttpError } from '../errors.ts';
import { ControlBusyError, ModelControlError, ModelNotFoundError, VersionExistsError } from '../repository.ts';

export async function controlling(work: () => Promise<void> | void): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof ModelNotFoundError) throw new HttpError(404, 'model_not_found', error.message.slice(0, 300));
    if (error instanceof VersionExistsError) throw new HttpError(409, 'version_exists', error.message.slice(0, 300));
    if (error instanceof ControlBusyError) throw new HttpError(503, 'busy', error.message.slice(0, 300));
    if (error instanceof ModelControlError) throw new HttpError(400, 'model_control', error.message.slice(0, 600));
    throw error;
  }
}
