#!/usr/bin/env python3
"""PyTorch's side of `npm run bench -- --what train`: training images/s for one model.

    /usr/bin/python3 bench/torch_train.py --model cnn --threads 1 --batch 64 --seconds 2
    python3 bench/torch_train.py --model cnn --batch 512 --device cuda     (a GPU machine: bench/device/)

Prints one JSON line {"imagesPerSecond": ..., "threads": the thread settings it ran under}. Same recipe as
ours: SGD(lr 0.01, momentum 0.5), cross-entropy, a fixed batch (the data pipeline is not what is measured):
with --data DIR (MNIST's IDX files; what `npm run bench` passes) the first --batch training images,
normalized as the tutorial does, and their labels, the batch ours steps on; without it random inputs. With --forward-seconds S (CPU), then also "forwardImagesPerSecond": the same model's eval-mode
forward passes at the same batch for S seconds, in the same process and settings (for step / forward).

    /usr/bin/python3 bench/torch_train.py --info

prints torch_settings.about(): version, build, and the BLAS libraries this process actually mapped (Debian's
torch uses whatever libblas.so.3 the alternatives system points at; the reference BLAS makes it crawl).
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_infer import forward_throughput  # noqa: E402
from torch_models import ZOO  # noqa: E402
from torch_settings import about, threads  # noqa: E402


def first_batch(folder, batch):
    """MNIST's first `batch` training images, normalized with the tutorial's mean and std, and their labels."""
    from torch_epoch import MEAN, STD, idx

    x = idx(os.path.join(folder, "train-images-idx3-ubyte"))[:batch].float()
    y = idx(os.path.join(folder, "train-labels-idx1-ubyte"))[:batch].long()
    if len(y) != batch:
        sys.exit(f"a batch of {batch} is more than MNIST's {len(y)} training images")
    return ((x / 255 - MEAN) / STD).unsqueeze(1), y


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--info", action="store_true", help="print torch's version and BLAS, then exit")
    parser.add_argument("--model", choices=sorted(ZOO))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a machine with an NVIDIA GPU")
    parser.add_argument("--data", help="folder of MNIST's IDX files: step on its first --batch images")
    parser.add_argument("--forward-seconds", type=float, default=0, help="then time forward passes (CPU only)")
    args = parser.parse_args()
    if args.info:
        print(json.dumps(about()))
        return
    if args.model is None:
        parser.error("--model is required")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = ZOO[args.model]().to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    criterion = torch.nn.CrossEntropyLoss()
    if args.data:
        x, y = first_batch(args.data, args.batch)
        x, y = x.to(device), y.to(device)
    else:
        x = torch.randn(args.batch, 1, 28, 28).to(device)
        y = torch.randint(0, 10, (args.batch,)).to(device)
    # CUDA runs asynchronously: wait for the queued steps before reading the clock.
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step():
        opt.zero_grad()
        criterion(model(x), y).backward()
        opt.step()

    for _ in range(5):
        step()
    sync()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        step()
        steps += 1
    sync()
    result = {"imagesPerSecond": steps * args.batch / (time.perf_counter() - start), "threads": threads()}
    if args.forward_seconds > 0 and device.type == "cpu":
        result["forwardImagesPerSecond"] = forward_throughput(model, args.batch, args.forward_seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
