/**
 * Triton's model repository extension over gRPC: RepositoryIndex, RepositoryModelLoad and
 * RepositoryModelUnload, as the HTTP routes answer them (routes/repository.ts) and behind the same rules
 * (model-control-access.ts: the key, where one is needed, as metadata `authorization: Bearer <key>`).
 * Model files (Triton's file overrides) are taken over HTTP only, where uploads have their own limits.
 */
import type * as grpc from '@grpc/grpc-js';
import { shownName } from '../../node/repository.ts';
import { ellipsized } from '../ellipsized.ts';
import { HttpError } from '../errors.ts';
import { assertMayControl, type ModelControlAccess } from '../model-control-access.ts';
import type { ModelRepository } from '../repository.ts';
import { controlling } from '../routes/controlling.ts';
import { indexAnswerBytes } from '../routes/repository.ts';
import { UnreadAnswersError } from '../unread-answers.ts';
import type { CallAnswer } from './unsent-answers.ts';

/** A ModelRepositoryParameter as proto-loader gives it (`oneofs`: the member set is named). */
type RepositoryParameter = { parameter_choice?: string; bool_param?: boolean };

export interface IndexRequest {
  repository_name: string;
  ready: boolean;
}

export interface ControlRequest {
  repository_name: string;
  model_name: string;
  parameters: Record<string, RepositoryParameter>;
}

/** This server has one repository: a request naming another is refused, not answered from this one. */
function oneRepository(name: string): void {
  if (name !== '')
    throw new HttpError(400, 'invalid_request', 'this server serves one model repository: leave repository_name empty');
}

const shownKey = (key: string) => ellipsized(shownName(key), 60);

export function modelRepositoryMethods(repository: ModelRepository, access: ModelControlAccess) {
  const mayControl = (metadata: grpc.Metadata) => {
    const [authorization] = metadata.get('authorization');
    assertMayControl(access, typeof authorization === 'string' ? authorization : undefined, false);
  };
  const control = (work: () => Promise<void>) => controlling(work, () => repository.stopping).then(() => ({}));
  let lastIndexBytes = 0;
  return {
    /** The index; its answer held in the unsent-answer budget (`answer`): it grows with the repository. */
    index(request: IndexRequest, answer: CallAnswer | undefined) {
      oneRepository(request.repository_name);
      // Held at the last index's size before this one is built (~80 ms for 9,000 models): a call that
      // would be refused costs nothing (an outside attack's 512 never-read calls each built it first).
      const before = answer?.hold(lastIndexBytes);
      if (before) throw new UnreadAnswersError(before);
      const models = repository.index().filter((e) => !request.ready || e.state === 'READY');
      // Its size on the wire: the strings and a few bytes of tags and lengths an entry.
      lastIndexBytes = indexAnswerBytes(models, 16);
      const unsent = answer?.hold(lastIndexBytes);
      if (unsent) throw new UnreadAnswersError(unsent);
      return { models };
    },

    load(request: ControlRequest, metadata: grpc.Metadata) {
      mayControl(metadata);
      oneRepository(request.repository_name);
      const [key] = Object.keys(request.parameters);
      if (key?.startsWith('file:'))
        throw new HttpError(
          400,
          'unsupported_parameter',
          'model files are taken over HTTP (POST /v2/repository/models/<model>/load with the file override, serve --allow-upload), not over gRPC',
        );
      if (key !== undefined)
        throw new HttpError(400, 'unsupported_parameter', `load takes no parameters here; got '${shownKey(key)}'`);
      return control(() => repository.load(request.model_name));
    },

    unload(request: ControlRequest, metadata: grpc.Metadata) {
      mayControl(metadata);
      oneRepository(request.repository_name);
      // tritonclient's unload_model always sends unload_dependents (ensembles' parts): with no ensembles, a no-op.
      const { unload_dependents: dependents, ...other } = request.parameters;
      const [key] = Object.keys(other);
      if (key !== undefined)
        throw new HttpError(
          400,
          'unsupported_parameter',
          `unload takes no parameters here but 'unload_dependents'; got '${shownKey(key)}'`,
        );
      if (dependents !== undefined && dependents.parameter_choice !== 'bool_param')
        throw new HttpError(400, 'invalid_request', 'unload_dependents must be a bool_param');
      return control(() => repository.unload(request.model_name));
    },
  };
}
