"""One run, described once: `RunSpec`, from the command line to the record.

A spec is built in one place (`plan.spec_of`: preset + pair + published tuning + tuned
parameters + overrides) and frozen. The benchmark trains it, the tuner's trials train it with
their sampled values, the speed command times it, the report and the GPU check read it; none of
them merges settings again. Its record is what results.jsonl stores under "spec", and the hash of
that record is the run's key: the same spec is the same run.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from .entry import Entry

# Upper bounds on counts a command plans: far above any study (the revision's largest comparison
# pooled 122 seeds), far below what would plan for minutes or fill the memory.
MAX_SEEDS, MAX_EPOCHS = 10_000, 100_000
PROTOCOLS = ("converge", "matched")


def freeze(value):
    """Lists as tuples and dicts as read-only mappings, so a spec cannot change under a reader."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value):
    """The plain dicts and lists a JSON record holds."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class StoppingRule:
    """When a stage stops: after `epochs` at most, or `patience` epochs without a `min_delta`
    gain in `monitor` (None: never early; the `matched` protocol)."""
    epochs: int
    monitor: str = "val_acc"
    patience: int | None = None
    min_delta: float = 1e-3
    protocol: str = "converge"

    def __str__(self) -> str:
        patience = self.patience if self.patience is not None else "none (matched budget)"
        return (f"{self.monitor}, patience {patience}, min_delta {self.min_delta}, "
                f"cap {self.epochs} per stage, best weights restored")


@dataclass(frozen=True)
class RunSpec:
    """Everything that decides what a run trains and how it is timed."""
    dataset: str
    entry: Entry                  # which line of the report it belongs to; not part of the key
    config: Mapping               # the algorithm's constructor arguments
    batch_size: int
    rule: StoppingRule
    augment: bool | None          # None: the dataset's own (CIFAR's crop and flip); False: none
    device: str                   # "cpu", "cuda", "cuda:1", "mps": chosen once, at the edge
    cuda_graphs: bool             # the execution mode asked for (fit falls back to eager where it must)
    seed: int = 0
    kernels: str = "fused"        # the optimizers' kernels: "fused" or "foreach" (the same math; an A/B of time)

    def __post_init__(self):
        object.__setattr__(self, "config", freeze(dict(self.config)))
        if isinstance(self.entry, str):
            object.__setattr__(self, "entry", Entry.parse(self.entry))

    @property
    def algorithm(self) -> str:
        return self.entry.algorithm

    def record(self) -> dict:
        """The spec as results.jsonl stores it (the entry is stored beside it: one run can serve
        several entries, e.g. one BP-CNN twin for both CaFo variants)."""
        return {"dataset": self.dataset, "algorithm": self.algorithm, "config": thaw(self.config),
                "batch_size": self.batch_size, **dataclasses.asdict(self.rule), "augment": self.augment,
                "device": self.device, "cuda_graphs": self.cuda_graphs, "seed": self.seed,
                # stored only where it is not the default, so that every earlier run keeps its key
                **({"kernels": self.kernels} if self.kernels != "fused" else {})}

    @property
    def key(self) -> str:
        """Hash of the record: the same configuration is the same run."""
        return hashlib.sha256(json.dumps(self.record(), sort_keys=True, default=str).encode()).hexdigest()[:16]

    @classmethod
    def from_record(cls, record: Mapping, entry: Entry | str) -> RunSpec:
        rule = StoppingRule(**{f.name: record[f.name] for f in dataclasses.fields(StoppingRule)})
        return cls(record["dataset"], Entry.parse(str(entry)), record["config"], record["batch_size"], rule,
                   record.get("augment"), record["device"], record["cuda_graphs"], record["seed"],
                   record.get("kernels", "fused"))

    def replace(self, **changes) -> RunSpec:
        return dataclasses.replace(self, **changes)

    def with_config(self, **values) -> RunSpec:
        """The same run with some constructor arguments set (a trial's sampled values, tuned ones)."""
        return self.replace(config={**self.config, **values})

    def settings(self) -> dict:
        """Every setting as one flat mapping: "config.lr", "rule.epochs", "batch_size", ..."""
        flat = {f"config.{k}": thaw(v) for k, v in self.config.items()}
        flat.update({f"rule.{k}": v for k, v in dataclasses.asdict(self.rule).items()})
        flat.update({k: getattr(self, k) for k in ("dataset", "algorithm", "batch_size", "augment",
                                                    "device", "cuda_graphs", "seed", "kernels")})
        return flat

    def differences(self, other: RunSpec | Mapping, ignore=()) -> list[str]:
        """ "name: this value, other value" for every setting that differs (`other` may be the
        `settings()` of a spec stored in a file); settings starting with a prefix in `ignore` are
        left out."""
        mine, theirs = self.settings(), other if isinstance(other, Mapping) else other.settings()
        names = sorted(n for n in set(mine) | set(theirs) if not n.startswith(tuple(ignore)))
        return [f"{n}: {mine.get(n, '(not set)')!r} vs {theirs.get(n, '(not set)')!r}"
                for n in names if mine.get(n) != theirs.get(n)]
