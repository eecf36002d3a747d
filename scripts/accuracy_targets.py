"""Train each algorithm on the full Fashion-MNIST and report test accuracy, epochs and time.

    python scripts/accuracy_targets.py [--only mf,bp-mlp] [--device cpu] [--out targets.jsonl]

The configurations behind the accuracy targets in the course's issues (one seed, seed 0).
Each result is appended to --out as one JSON line as soon as it finishes.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from fwdlib import algorithms, data, train
from fwdlib.session import pick_device, seed_all

# (label, algorithm, config, fit options)
TARGETS = (
    ("bp-mlp 2x1000, <=15 epochs", "bp-mlp", {"hidden": (1000, 1000)}, {"epochs": 15, "monitor": "val_acc"}),
    ("mf 2x1000, <=15 epochs", "mf", {"hidden": (1000, 1000)}, {"epochs": 15, "monitor": "val_acc"}),
    ("ff 3x1000, 6 epochs", "ff", {"hidden": (1000, 1000, 1000)}, {"epochs": 6, "monitor": "val_acc"}),
    ("bp-cnn, 5 epochs", "bp-cnn", {}, {"epochs": 5, "monitor": "val_acc"}),
    ("cafo-rand-ce, <=30 epochs per block", "cafo-rand", {"epochs_per_block": 30},
     {"epochs": 30, "monitor": "val_loss", "patience": 5}),
    ("cafo-dfa-ce, 5 DFA epochs, <=30 per block", "cafo-dfa", {"dfa_epochs": 5, "epochs_per_block": 30},
     {"epochs": 30, "monitor": "val_loss", "patience": 5}),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated algorithm names")
    parser.add_argument("--device")
    parser.add_argument("--out", default="targets.jsonl")
    args = parser.parse_args()
    device = pick_device(args.device)
    ds = data.load("fashion_mnist", device=device)
    only = set(args.only.split(",")) if args.only else None
    for label, name, config, options in TARGETS:
        if only and name not in only:
            continue
        seed_all(0)
        model = algorithms.build(name, input_shape=ds.input_shape, num_classes=ds.num_classes, **config)
        start = time.perf_counter()
        history = train.fit(model, ds, batch_size=128, seed=0, progress=False, **options)
        row = {"target": label, "test_acc": train.evaluate(model, ds.test), "epochs": history.epochs,
               "train_time_s": round(history.train_time_s, 1), "wall_s": round(time.perf_counter() - start, 1),
               "best": {k: v["epoch"] for k, v in history.best.items()}, "device": str(device),
               "threads": torch.get_num_threads()}
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
