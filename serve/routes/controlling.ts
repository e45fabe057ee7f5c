/** The repository's refusals of a load, unload or publish, as 4xx answers a client can act on. */
import { ellipsized } from '../ellipsized.ts';
import { HttpError } from '../errors.ts';
import { errorResponse, protocolErrorResponse } from '../openapi.ts';
import {
  ControlBusyError,
  MAX_QUEUED_CONTROLS,
  ModelControlError,
  ModelNotFoundError,
  VersionExistsError,
} from '../repository.ts';

const CONTROL_BUSY = `${MAX_QUEUED_CONTROLS} loads, unloads or publishes of this model are under way or waiting (each waits its turn): retry; or the server is stopping (shutting_down: a load under way is abandoned)`;
/** The 503 of every route that loads, unloads or publishes, as its OpenAPI entry (/api's, then /v2's). */
export const controlBusyResponse = errorResponse(CONTROL_BUSY);
export const protocolControlBusyResponse = protocolErrorResponse(CONTROL_BUSY);

/**
 * Run a load, unload or publish, its refusals as 4xx; one cut short because the server began stopping
 * (`stopping()`: loads under way are abandoned) is answered 503 `shutting_down` at once.
 */
export async function controlling(work: () => Promise<void> | void, stopping: () => boolean): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (stopping())
      throw new HttpError(503, 'shutting_down', 'the server is shutting down: what was asked for was not done');
    if (error instanceof ModelNotFoundError) throw new HttpError(404, 'model_not_found', error.message.slice(0, 300));
    if (error instanceof VersionExistsError) throw new HttpError(409, 'version_exists', error.message.slice(0, 300));
    if (error instanceof ControlBusyError) throw new HttpError(503, 'busy', error.message.slice(0, 300));
    if (error instanceof ModelControlError) throw new HttpError(400, 'model_control', ellipsized(error.message, 600));
    throw error;
  }
}
