/**
 * Where the gRPC service's schema is: grpc_predict_v2.proto beside this module, and the model configuration
 * schema it imports (model_config.proto, node/triton; the server's bundle has both beside it).
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import protobuf from 'protobufjs';
import { MODEL_CONFIG_PROTO_FILE } from '../../node/triton/schema.ts';

export const GRPC_PROTO_FILE = fileURLToPath(new URL('./grpc_predict_v2.proto', import.meta.url));

/** The folders an import is looked for in (protoc's -I, proto-loader's includeDirs). */
export const GRPC_INCLUDE_DIRS = [dirname(GRPC_PROTO_FILE), dirname(MODEL_CONFIG_PROTO_FILE)];

/** The service's messages for protobufjs (field names as written), its import found in GRPC_INCLUDE_DIRS. */
export function grpcProtoRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    isAbsolute(target) ? target : (GRPC_INCLUDE_DIRS.map((dir) => join(dir, target)).find(existsSync) ?? target);
  return root.loadSync(GRPC_PROTO_FILE, { keepCase: true });
}

/**
 * The service as grpc-js serves it and calls it (field names as written, int64 as numbers, defaults filled in,
 * a oneof's member named): `.service` for a server, the constructor itself for a client.
 */
export function grpcService(): grpc.ServiceClientConstructor {
  const options = { keepCase: true, longs: Number, defaults: true, oneofs: true, includeDirs: GRPC_INCLUDE_DIRS };
  const definition = grpc.loadPackageDefinition(loadSync(GRPC_PROTO_FILE, options)) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  return definition.inference.GRPCInferenceService;
}
