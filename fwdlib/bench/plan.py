"""Every run of a benchmark: one RunSpec per entry of a preset, interleaved seed-major.

`spec_of` is the one place a run's settings are merged: the preset (batch, stopping rule), the
pair (its config with the study's published tuning, its own batch and augmentation), tuned
parameters and overrides. The tuner calls it too, so a trial trains what the benchmark runs.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import algorithms as registry, data as datasets
from ..commandline import as_tuple
from ..runs.entry import Entry
from .presets import PRESETS, Pair, Preset
from ..runs.spec import RunSpec, StoppingRule


def rule_of(preset: Preset, protocol: str = "converge", epochs: int | None = None) -> StoppingRule:
    """The preset's stopping rule under a protocol; `epochs` replaces its cap."""
    cap = epochs or (preset.matched_epochs or preset.epochs if protocol == "matched" else preset.epochs)
    return StoppingRule(cap, preset.monitor, None if protocol == "matched" else preset.patience,
                        preset.min_delta, protocol)


def entries_of(preset: Preset, dataset: str, twin_variants=()) -> dict[Entry, tuple[Pair, dict]]:
    """Every entry the preset runs on `dataset`: entry -> (its pair, its config); with
    `twin_variants` (e.g. "checkpoint"), each twin that offers one also runs that way, beside itself."""
    found = {entry: (pair, config) for pair in preset.pairs[dataset] for entry, config in pair.members()}
    for entry, (pair, config) in list(found.items()):
        found.update({variant: (pair, {**config, **change}) for variant, change in variants_of(entry, twin_variants)})
    return found


def variants_of(entry: Entry, twin_variants) -> list[tuple[Entry, dict]]:
    """A twin entry's variants among `twin_variants` that its algorithm offers, each with what it
    changes in the twin's configuration: [(bp-mlp+checkpoint@mf, {"checkpoint": True})]."""
    offered = registry.REGISTRY[entry.twin].variants if entry.is_twin else {}
    return [(entry.twin_of(entry.twin, way), offered[way]) for way in twin_variants if way in offered]


def check_twin_variants(names) -> tuple[str, ...]:
    """`names` ("checkpoint", or a sequence) if some registered twin runs each of them, else an error
    naming the ones there are."""
    names = as_tuple(names) or ()
    offered = sorted({way for cls in registry.REGISTRY.values() for way in cls.variants})
    for name in names:
        if name not in offered:
            raise ValueError(f"no twin runs a {name!r} variant; the twin variants: {', '.join(offered) or 'none'}")
    return tuple(names)


def spec_of(preset: Preset, dataset: str, entry: Entry | str, *, protocol: str = "converge",
            epochs: int | None = None, device: str = "cpu", cuda_graphs: bool = True, seed: int = 0,
            overrides: dict | None = None, kernels: str = "fused") -> RunSpec:
    """The run of `entry` on `dataset` as `preset` runs it."""
    entry = Entry.parse(str(entry))
    found = entries_of(preset, dataset, check_twin_variants([entry.twin_variant] if entry.twin_variant else []))
    if entry not in found:
        raise ValueError(f"preset {preset.name} runs no {entry} on {dataset}; its entries: "
                         + ", ".join(map(str, found)))
    pair, config = found[entry]
    return RunSpec(dataset, entry, {**config, **(overrides or {})}, pair.batch_size or preset.batch_size,
                   rule_of(preset, protocol, epochs),
                   # only where the data is augmented at all (CIFAR), so equal runs stay one run
                   pair.augment if datasets.augments(dataset) else None,
                   device, cuda_graphs, seed, kernels)


def selected(entry: Entry, names) -> bool:
    """Whether --algorithms NAMES picks `entry`: by its algorithm, its rival or its rival's entry
    (twins follow their rival)."""
    return not names or bool({entry.algorithm, entry.rival, str(entry.rival_entry)} & set(names))


def preset_specs(preset: Preset, dataset_names, names=None, twin_variants=(), **settings) -> list[RunSpec]:
    """The spec of every selected entry of `preset` on each dataset (seed 0), twin variants included."""
    return [spec_of(preset, dataset, entry, **settings) for dataset in dataset_names
            for entry in entries_of(preset, dataset, twin_variants) if selected(entry, names)]


@dataclass(frozen=True)
class PlannedRun:
    """One training run, and every entry it serves (one BP-CNN run is the twin of both CaFo variants)."""
    spec: RunSpec
    entries: tuple[Entry, ...]

    @property
    def key(self) -> str:
        return self.spec.key


def linked(runs: list[PlannedRun]) -> list[list[PlannedRun]]:
    """Runs grouped by the rivals they serve, in their order: a rival and its twin; one BP-CNN run
    is the twin of both CaFo variants, so all three are one group."""
    groups: list[tuple[set, list]] = []
    for run in runs:
        rivals = {(run.spec.dataset, str(e.rival_entry)) for e in run.entries}
        joined = [g for g in groups if g[0] & rivals]
        groups = [g for g in groups if all(g is not x for x in joined)]
        groups.append((rivals.union(*(g[0] for g in joined)), [r for g in joined for r in g[1]] + [run]))
    return [g[1] for g in groups]


def pairs_at_seeds(runs: list[PlannedRun]) -> list[tuple[int, list[PlannedRun]]]:
    """(seed, runs linked by a rival) for each pair at each seed, in the plan's order."""
    by_seed: dict[int, list[PlannedRun]] = {}
    for run in runs:
        by_seed.setdefault(run.spec.seed, []).append(run)
    return [(seed, group) for seed, seed_runs in by_seed.items() for group in linked(seed_runs)]


def plan(specs: list[RunSpec], seeds: int) -> list[PlannedRun]:
    """Every run, seed-major. The pairs' order rotates each seed, so that drift and heat favour no
    pair; a pair's members run back to back, counterbalanced: the rivals then their twin at even
    seeds, the same order mirrored at odd ones (twin first; a twin shared by two rivals keeps each
    at the same distance both ways), so that a steady drift over a pair (heat, another job)
    favours each member at every other seed and cancels in the paired mean over each two seeds
    (with an odd number of seeds the rival-first order has one more).
    Specs that differ only in their entry are one run."""
    unique: dict[str, list[RunSpec]] = {}
    for spec in specs:
        unique.setdefault(spec.replace(seed=0).key, []).append(spec)
    pairs = linked([PlannedRun(group[0], tuple(s.entry for s in group)) for group in unique.values()])
    runs = []
    for seed in range(seeds):
        shift = seed % max(len(pairs), 1)
        for pair in pairs[shift:] + pairs[:shift]:
            rivals_first = sorted(pair, key=lambda r: r.spec.entry.is_twin)
            for run in (rivals_first if seed % 2 == 0 else rivals_first[::-1]):
                runs.append(PlannedRun(run.spec.replace(seed=seed), run.entries))
    return runs


# The presets that run the study's configurations: v1's (with its published tuning) and the revision's.
STUDY_PRESETS = ("paper-fmnist", "paper")
REVISION_PRESETS = ("revision-fmnist",)


def study_configuration(spec: RunSpec, presets: tuple[str, ...] = STUDY_PRESETS) -> str | None:
    """None when `spec` is how one of `presets` (default: v1's) runs its entry (seed, device and
    execution mode aside); otherwise why its outcome is about this run only."""
    if spec.entry.variant or spec.entry.twin_variant:
        return "the kit's variant, not the study's entry"
    reasons = []
    for name in presets:
        if spec.dataset not in PRESETS[name].pairs:
            continue
        try:
            theirs = spec_of(PRESETS[name], spec.dataset, spec.entry)
        except ValueError:
            continue
        diffs = spec.replace(seed=0, device="cpu", cuda_graphs=True).differences(theirs)
        if not diffs:
            return None
        names = [d.split(":")[0] for d in diffs]
        reasons.append(f"{name} runs it with other {', '.join(names[:4])}" + (", ..." if len(names) > 4 else ""))
    return reasons[0] if reasons else f"the study did not run on {spec.dataset}"


def configuration(record) -> dict:
    """How the study's and the revision's presets ran this record's spec: {"study": ..., "revision": ...},
    each None (this is their configuration) or why not. Decided when the run was planned and stored
    in its record, so that a later change of the presets changes no stored verdict; records written
    before the field (schema 1) are planned again here."""
    stored = record.get("configuration")
    return dict(stored) if stored is not None else configuration_of(RunSpec.from_record(record["spec"], record["entries"][0]))


def configuration_of(spec: RunSpec) -> dict:
    return {"study": study_configuration(spec), "revision": study_configuration(spec, REVISION_PRESETS)}
