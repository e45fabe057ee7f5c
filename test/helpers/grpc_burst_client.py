"""A Triton-style gRPC client's burst: COUNT concurrent ModelInfer calls of IMAGES images each on one channel,
as grpcio makes them. Prints "issued" once all are made and "answered" once ANSWERED of them have ended,
and at the end one JSON object: how many calls ended with each status code."""
import json
import os
import sys
import threading

address, model, count, images, answered = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])

sys.dont_write_bytecode = True  # no __pycache__ left in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from proto_tools import generate_stubs, status_counts  # noqa: E402  (beside this file)

generate_stubs()
import grpc  # noqa: E402
import grpc_predict_v2_pb2 as pb  # noqa: E402
import grpc_predict_v2_pb2_grpc as rpc  # noqa: E402

stub = rpc.GRPCInferenceServiceStub(grpc.insecure_channel(address))
stub.ServerLive(pb.ServerLiveRequest(), timeout=10)
request = pb.ModelInferRequest(model_name=model)
request.inputs.add(name="input", datatype="FP32", shape=[images, 1, 28, 28])
request.raw_input_contents.append(bytes(images * 784 * 4))  # zeros: a blank image each

lock = threading.Lock()
ended = 0


def on_done(_future):
    global ended
    with lock:
        ended += 1
        if ended == answered:
            print("answered", flush=True)


calls = [stub.ModelInfer.future(request, timeout=30) for _ in range(count)]
for call in calls:
    call.add_done_callback(on_done)
print("issued", flush=True)
statuses = status_counts(calls)
print(json.dumps(statuses), flush=True)
