"""A flood of small Triton-style gRPC calls: CHANNELS channels (a connection each, as separate clients have),
each making one-image ModelInfer calls as fast as grpcio takes them for SECONDS seconds. Prints "flooding"
once every channel has been answered once, and at the end one JSON object: how many calls ended with each
status code."""
import json
import os
import sys
import time

address, model, channels, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

sys.dont_write_bytecode = True  # no __pycache__ left in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proto_tools import generate_stubs, status_counts  # noqa: E402  (beside this file)

generate_stubs()
import grpc  # noqa: E402
import grpc_predict_v2_pb2 as pb  # noqa: E402
import grpc_predict_v2_pb2_grpc as rpc  # noqa: E402

request = pb.ModelInferRequest(model_name=model)
request.inputs.add(name="input", datatype="FP32", shape=[1, 1, 28, 28])
request.raw_input_contents.append(bytes(784 * 4))
# A local subchannel pool each: without it grpcio shares one connection between channels to one address.
stubs = [
    rpc.GRPCInferenceServiceStub(grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)]))
    for _ in range(channels)
]
for stub in stubs:
    stub.ModelInfer(request, timeout=10)
print("flooding", flush=True)
calls = []
started = time.time()
while time.time() - started < seconds:
    calls.append(stubs[len(calls) % channels].ModelInfer.future(request, timeout=15))
    if len(calls) % 50 == 0:
        time.sleep(0.005)
statuses = status_counts(calls)
print(json.dumps(statuses), flush=True)
