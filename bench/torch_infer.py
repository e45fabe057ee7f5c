#!/usr/bin/env python3
"""PyTorch's side of `npm run bench -- --what infer`: eager inference of one model.

    /usr/bin/python3 bench/torch_infer.py --model cnn --threads 1 --batch 64 --seconds 2

Prints one JSON line {"latencyMs": median batch-1 latency, "imagesPerSecond": throughput at --batch,
"threads": the thread settings it ran under (torch_settings.threads())}. The model is in eval() mode under
torch.inference_mode(), on random inputs, with fresh weights (latency doesn't depend on them).
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ZOO  # noqa: E402
from torch_settings import threads  # noqa: E402


def forward_throughput(model, batch, seconds):
    """Images/s of eval-mode forward passes at `batch` for `seconds`, after 10 warm-up runs."""
    model.eval()
    x = torch.randn(batch, 1, 28, 28)
    with torch.inference_mode():
        for _ in range(10):
            model(x)
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(x)
            runs += 1
        return runs * batch / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True, choices=sorted(ZOO))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ZOO[args.model]().eval()
    one = torch.randn(1, 1, 28, 28)
    with torch.inference_mode():
        for _ in range(10):
            model(one)
        latencies, start = [], time.perf_counter()
        while time.perf_counter() - start < args.seconds / 2:
            t = time.perf_counter()
            model(one)
            latencies.append((time.perf_counter() - t) * 1000)
    throughput = forward_throughput(model, args.batch, args.seconds / 2)
    print(json.dumps({"latencyMs": statistics.median(latencies), "imagesPerSecond": throughput, "threads": threads()}))


if __name__ == "__main__":
    main()
