"""Every run of a benchmark: one RunSpec per entry of a preset, interleaved seed-major.

`spec_of` is the one place a run's settings are merged: the preset (batch, stopping rule), the
pair (its config with the study's published tuning, its own batch and augmentation), tuned
parameters and overrides. The tuner calls it too, so a trial trains what the benchmark runs.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import data as datasets
from .entry import Entry
from .presets import Pair, Preset
from .spec import RunSpec, StoppingRule


def rule_of(preset: Preset, protocol: str = "converge", epochs: int | None = None) -> StoppingRule:
    """The preset's stopping rule under a protocol; `epochs` replaces its cap."""
    cap = epochs or (preset.matched_epochs or preset.epochs if protocol == "matched" else preset.epochs)
    return StoppingRule(cap, preset.monitor, None if protocol == "matched" else preset.patience,
                        preset.min_delta, protocol)


def entries_of(preset: Preset, dataset: str) -> dict[Entry, tuple[Pair, dict]]:
    """Every entry the preset runs on `dataset`: entry -> (its pair, its config)."""
    return {entry: (pair, config) for pair in preset.pairs[dataset] for entry, config in pair.members()}


def spec_of(preset: Preset, dataset: str, entry: Entry | str, *, protocol: str = "converge",
            epochs: int | None = None, device: str = "cpu", cuda_graphs: bool = True, seed: int = 0,
            overrides: dict | None = None) -> RunSpec:
    """The run of `entry` on `dataset` as `preset` runs it."""
    entry = Entry.parse(str(entry))
    found = entries_of(preset, dataset)
    if entry not in found:
        raise ValueError(f"preset {preset.name} runs no {entry} on {dataset}; its entries: "
                         + ", ".join(map(str, found)))
    pair, config = found[entry]
    return RunSpec(dataset, entry, {**config, **(overrides or {})}, pair.batch_size or preset.batch_size,
                   rule_of(preset, protocol, epochs),
                   # only where the data is augmented at all (CIFAR), so equal runs stay one run
                   pair.augment if datasets.augments(dataset) else None,
                   device, cuda_graphs, seed)


def selected(entry: Entry, names) -> bool:
    """Whether --algorithms NAMES picks `entry`: by its algorithm, its rival or its rival's entry
    (twins follow their rival)."""
    return not names or bool({entry.algorithm, entry.rival, str(entry.rival_entry)} & set(names))


def preset_specs(preset: Preset, dataset_names, names=None, **settings) -> list[RunSpec]:
    """The spec of every selected entry of `preset` on each dataset (seed 0)."""
    return [spec_of(preset, dataset, entry, **settings)
            for dataset in dataset_names for entry in entries_of(preset, dataset) if selected(entry, names)]


@dataclass(frozen=True)
class PlannedRun:
    """One training run, and every entry it serves (one BP-CNN run is the twin of both CaFo variants)."""
    spec: RunSpec
    entries: tuple[Entry, ...]

    @property
    def key(self) -> str:
        return self.spec.key


def plan(specs: list[RunSpec], seeds: int) -> list[PlannedRun]:
    """Every run, interleaved: seed-major, the order rotated each seed so that drift and heat
    favour no one. Specs that differ only in their entry are one run."""
    unique: dict[str, list[RunSpec]] = {}
    for spec in specs:
        unique.setdefault(spec.replace(seed=0).key, []).append(spec)
    groups = list(unique.values())
    runs = []
    for seed in range(seeds):
        shift = seed % max(len(groups), 1)
        for group in groups[shift:] + groups[:shift]:
            runs.append(PlannedRun(group[0].replace(seed=seed), tuple(s.entry for s in group)))
    return runs
