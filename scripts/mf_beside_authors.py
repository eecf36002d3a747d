"""MF as the kit runs it beside the study's own code, on the same tensors, seed by seed.

    python scripts/mf_beside_authors.py AUTHORS_SRC [--seeds 5] [--out mf-beside.jsonl]

AUTHORS_SRC is a checkout of github.com/Przemyslaw11/BeyondBackpropagation (the folder that
holds `src/`). Its `train_mf_model` and `evaluate_mf_model` run unmodified on the kit's split of
full Fashion-MNIST (a DataLoader over the same normalised tensors, batch 128, shuffled, the last
partial batch dropped as theirs is), with the study's Fashion-MNIST config (Adam lr 3.873e-4, no
weight decay, 12 epochs per layer, early stop on the layer's validation loss with patience 10 and
min_delta 1e-4). The kit's side is the `mf` entry of the `paper-fmnist` preset, trained through
the benchmark's own `fit_spec`. Each result is appended to --out as one JSON line.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

from fwdlib import data as datasets
from fwdlib.bench.plan import spec_of
from fwdlib.bench.presets import PRESETS
from fwdlib.bench.runner import build_model, fit_spec
from fwdlib.bench.study import STUDY_TUNED
from fwdlib.train import evaluate
from fwdlib.session import seed_all

TUNED = STUDY_TUNED[("fashion_mnist", "mf")]
AUTHORS_CONFIG = {"algorithm_params": {
    "optimizer_type": "Adam", "lr": TUNED["lr"], "weight_decay": 0.0,
    "epochs_per_layer": TUNED["epochs_per_layer"], "mf_early_stopping_enabled": True,
    "mf_early_stopping_patience": 10, "mf_early_stopping_min_delta": 1e-4, "log_interval": 10**9}}


def authors_code(src: Path) -> types.SimpleNamespace:
    """Their MF model and its training and evaluation, imported once from a checkout."""
    sys.modules.setdefault("wandb", types.SimpleNamespace(run=None))   # imported for logging only
    sys.path.insert(0, str(src))
    from src.algorithms import mf
    from src.architectures.mf_mlp import MF_MLP
    return types.SimpleNamespace(MF_MLP=MF_MLP, train=mf.train_mf_model, evaluate=mf.evaluate_mf_model)


def authors_run(code, dataset, seed: int) -> float:
    def loader(split, train):
        return DataLoader(TensorDataset(split.x.flatten(1), split.y), batch_size=128, shuffle=train,
                          drop_last=train, generator=torch.Generator().manual_seed(seed))
    seed_all(seed)
    model = code.MF_MLP(784, [1000, 1000], 10)
    code.train(model, loader(dataset.train, True), AUTHORS_CONFIG, torch.device("cpu"), lambda x: x,
               val_loader=loader(dataset.val, False))
    return code.evaluate(model, loader(dataset.test, False), torch.device("cpu"), lambda x: x)["eval_accuracy"] / 100


def kit_run(dataset, seed: int) -> float:
    spec = spec_of(PRESETS["paper-fmnist"], "fashion_mnist", "mf", seed=seed)
    seed_all(seed)
    model = build_model(spec, dataset)
    fit_spec(model, dataset, spec)
    return evaluate(model, dataset.test)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("authors_src", type=Path)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("mf-beside.jsonl"))
    args = parser.parse_args(argv)
    dataset, code = datasets.load("fashion_mnist", device="cpu"), authors_code(args.authors_src)
    for seed in range(args.seeds):
        for side, run in (("authors", lambda: authors_run(code, dataset, seed)),
                          ("kit", lambda: kit_run(dataset, seed))):
            start = time.perf_counter()
            acc = run()
            line = {"side": side, "seed": seed, "test_acc": acc, "seconds": round(time.perf_counter() - start, 1)}
            print(json.dumps(line), flush=True)
            with args.out.open("a") as f:
                f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
