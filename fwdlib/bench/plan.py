"""Every run of a benchmark: one RunSpec per entry of a preset, interleaved seed-major."""
from __future__ import annotations

import hashlib
import json

from .. import data as datasets
from .presets import Preset


def run_key(spec: dict) -> str:
    """Hash of a run's full configuration: the same configuration is the same run."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def plan(preset: Preset, *, dataset_names: tuple[str, ...], algorithm_names: tuple[str, ...] | None,
         seeds: int, protocol: str, device: str, cuda_graphs: bool, epochs: int | None = None) -> list[dict]:
    """Every run of a benchmark, interleaved: seed-major, algorithm order rotated per seed."""
    cap = epochs or (preset.matched_epochs or preset.epochs if protocol == "matched" else preset.epochs)
    rule = {"epochs": cap, "monitor": preset.monitor, "patience": None if protocol == "matched" else preset.patience,
            "min_delta": preset.min_delta, "protocol": protocol}
    unique = []
    for dataset in dataset_names:
        for pair in preset.pairs[dataset]:
            for entry, name, config in pair.members():
                if algorithm_names and not {name, pair.rival, pair.entry} & set(algorithm_names):
                    continue
                base = {"dataset": dataset, "algorithm": name, "config": dict(config),
                        "batch_size": pair.batch_size or preset.batch_size, **rule,
                        # only where the data is augmented at all (CIFAR), so equal runs stay one run
                        "augment": pair.augment if datasets.augments(dataset) else None,
                        "device": device, "cuda_graphs": cuda_graphs}
                if not any(u["base"] == base for u in unique):
                    unique.append({"base": base, "entries": [entry]})
                else:
                    next(u for u in unique if u["base"] == base)["entries"].append(entry)
    runs = []
    for seed in range(seeds):
        shift = seed % max(len(unique), 1)
        for item in unique[shift:] + unique[:shift]:
            spec = {**item["base"], "seed": seed}
            runs.append({"key": run_key(spec), "spec": spec, "entries": item["entries"]})
    return runs
