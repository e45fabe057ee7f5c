/**
 * What a library's error text may show a client (serve/errors.ts publicMessage): the reason, without ORT's source
 * locations, C++ signatures or absolute paths. The samples are onnxruntime-node 1.30's own wording.
 */
import { expect, it } from 'vitest';
import { publicMessage } from '../serve/errors.ts';

const ORT_LOAD_ERROR =
  '[ONNXRuntimeError] : 1 : FAIL : Load model from /srv/models/tiny/1/model.onnx failed:' +
  '/onnxruntime_src/onnxruntime/core/graph/graph.cc:1345 onnxruntime::Graph::Graph(const onnxruntime::Model&, ' +
  'onnxruntime::GraphProto*, const std::unordered_map<std::basic_string<char>, int>&, onnxruntime::Version, ' +
  'onnxruntime::IOnnxRuntimeOpSchemaCollectionPtr, const onnxruntime::logging::Logger&, bool) ' +
  "[ONNXRuntimeError] : 10 : INVALID_GRAPH : This is an invalid model. Type Error: Type 'tensor(int64)' of input " +
  'parameter (x) of operator (Relu) in node () is invalid.';

it("keeps ORT's reason and drops where in ORT's source it was thrown", () => {
  const message = publicMessage(ORT_LOAD_ERROR);
  expect(message).toContain("Type Error: Type 'tensor(int64)' of input parameter (x) of operator (Relu)");
  expect(message).not.toMatch(/graph\.cc|onnxruntime::|std::/);
  expect(message).not.toContain('/srv/');
  expect(message).toContain('…/model.onnx failed:[ONNXRuntimeError] : 10 : INVALID_GRAPH');
});

it('drops bare frames and signatures that nest parentheses, and leaves text without frames as it was', () => {
  // onnxruntime-node 1.30, a model whose external data is an absolute path:
  const bare =
    'External data path validation failed for initializer: w. Error: tensorprotoutils.cc:434 ' +
    'ValidateExternalDataPathFromDir Absolute path not allowed for external data location';
  expect(publicMessage(bare)).toBe(
    'External data path validation failed for initializer: w. Error: Absolute path not allowed for external data location',
  );
  const nested =
    'failed:/src/session.cc:77 onnxruntime::common::Status onnxruntime::Run(std::function<void (int)>, int) const ' +
    'Invalid rank for input: x Got: 3';
  expect(publicMessage(nested)).toBe('failed:Invalid rank for input: x Got: 3');
  expect(publicMessage('Got invalid dimensions for input: input (expected 28, got 27)')).toBe(
    'Got invalid dimensions for input: input (expected 28, got 27)',
  );
});
