"""The benchmark's presets: which pairs run on which data, under one stopping rule per preset.

A pair is a forward-only rival and its BP twin with the same layers. Both members share the
data split, batch size, augmentation, epoch cap, stopping rule, warm-up and execution mode.
Entries are named after the study's (`fwdlib.bench.study`): "mf" runs MF as the study ran it, and
"mf+per-batch" is the kit's faster variant beside it, with its own twin "bp-mlp@mf+per-batch".
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .. import algorithms as registry, data as datasets
from ..train import DEFAULT_BATCH
from ..runs.entry import Entry
from .study import STUDY, STUDY_FF_BATCH, STUDY_FF_OPTIONS, STUDY_TUNED


@dataclass(frozen=True)
class Pair:
    """A forward-only rival and its BP twin (same layers), each with its own config.

    variant: the kit's variant of the rival ("per-batch" makes the entries "mf+per-batch" and
    "bp-mlp@mf+per-batch"); None runs it as the study did. batch_size: the pair's own batch
    (default: the preset's). augment: False trains both members without augmentation (a rival
    that trains on cached features cannot augment, so neither does its twin); None keeps the
    dataset's (random crop and flip on CIFAR, nothing elsewhere)."""
    rival: str
    rival_config: dict
    twin: str
    twin_config: dict
    variant: str | None = None
    batch_size: int | None = None
    augment: bool | None = None

    def members(self) -> tuple[tuple[Entry, dict], tuple[Entry, dict]]:
        """(entry, config) of the rival and of the twin; the twin's entry names its rival
        ("bp-mlp@mf"), since one BP architecture can be the twin of several rivals."""
        rival = Entry(self.rival, variant=self.variant)
        return (rival, self.rival_config), (rival.twin_of(self.twin), self.twin_config)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    datasets: tuple[str, ...]
    pairs: dict                       # dataset -> tuple[Pair, ...]
    epochs: int                       # cap per stage
    patience: int
    min_delta: float = 1e-3
    monitor: str = "val_acc"          # one rule for every pair: FF's loss is not a class loss
    batch_size: int = DEFAULT_BATCH
    seeds: int = 5                    # from 5 paired seeds on, a verdict can decide (verdicts)
    matched_epochs: int | None = None  # the `matched` protocol's budget (default: epochs)


def augmentation(dataset_augments: bool, augment: bool | None) -> str:
    """What a run's training batches get, in words (for the report's protocol lines)."""
    if not dataset_augments:
        return "none"
    if augment is False:
        return "none (the rival trains on cached features, which cannot be augmented, so neither member is)"
    return "random crop 32 (4-pixel reflect padding) and horizontal flip"


def _tuned(dataset: str, entry: str) -> dict:
    return STUDY_TUNED.get((dataset, entry), {})


def study_mlp_pairs(dataset: str, ff_hidden, mf_hidden) -> list[Pair]:
    """The study's MLP pairs, each run as the study ran it, and the kit's variant beside it:
    FF (study: batch 100 and STUDY_FF_OPTIONS) and "ff+kit" (the kit's defaults, batch 128);
    MF greedy (study) and "mf+per-batch". Published tuning where the study gave it."""
    twin = {**_tuned(dataset, "bp-mlp@mf")}
    pairs = []
    if ff_hidden:
        ff = {"hidden": ff_hidden, **_tuned(dataset, "ff")}
        pairs += [Pair("ff", {**ff, **STUDY_FF_OPTIONS}, "bp-mlp", {"hidden": ff_hidden, **twin}, batch_size=STUDY_FF_BATCH),
                  Pair("ff", ff, "bp-mlp", {"hidden": ff_hidden, **twin}, variant="kit")]
    mf = {"hidden": mf_hidden, **_tuned(dataset, "mf")}
    greedy = {**mf, "schedule": "greedy", "init": "he-uniform"}
    per_batch = {k: v for k, v in mf.items() if k != "epochs_per_layer"}
    pairs += [Pair("mf", greedy, "bp-mlp", {"hidden": mf_hidden, **twin}, augment=False),
              Pair("mf", per_batch, "bp-mlp", {"hidden": mf_hidden, **twin}, variant="per-batch")]
    return pairs


def cnn_pairs(channels=(32, 128, 512), extra=None, twin_extra=None) -> list[Pair]:
    """CaFo-Rand and CaFo-DFA against the same BP-CNN, neither member augmented (CaFo's
    predictors train on cached block features)."""
    cfg = {"channels": channels, **(extra or {})}
    twin = {"channels": channels, **(twin_extra or {})}
    return [Pair("cafo-rand", cfg, "bp-cnn", twin, augment=False),
            Pair("cafo-dfa", cfg, "bp-cnn", twin, augment=False)]


class RegistryPairs(Mapping):
    """Pairs read from the registry when asked, so that a newly registered algorithm is in them with
    no other edit: each registered forward-only algorithm in its `quick` layers (with `layers`
    instead, where its twin takes them) against its twin with the same layers. newcomers: only
    those the study did not run (the family preset)."""

    def __init__(self, dataset: str, layers: dict | None = None, newcomers: bool = False):
        self.dataset, self.layers, self.newcomers = dataset, layers or {}, newcomers

    def __getitem__(self, dataset: str) -> tuple[Pair, ...]:
        if dataset != self.dataset:
            raise KeyError(dataset)
        pairs = []
        studied = {Entry.parse(entry).rival for _, entry in STUDY}
        for name, cls in registry.REGISTRY.items():
            if not cls.twin or (self.newcomers and name in studied):      # a twin itself; a studied one
                continue
            if problem := registry.twin_problem(cls):
                raise ValueError(f"the registered algorithm {name} cannot run in the quick preset: {problem}")
            architecture = registry.REGISTRY[cls.twin].architecture
            config = {**cls.quick, **{k: v for k, v in self.layers.items() if k in architecture}}
            layers = {k: v for k, v in config.items() if k in architecture}
            pairs.append(Pair(name, config, cls.twin, layers, augment=None if cls.augments else False))
        return tuple(pairs)

    def __iter__(self):
        return iter((self.dataset,))

    def __len__(self) -> int:
        return 1


PRESETS = {
    "quick": Preset(
        "quick", "embedded Fashion-MNIST sample, small networks, every registered algorithm against its twin "
        "(CPU minutes)", (datasets.SAMPLE_NAME,), RegistryPairs(datasets.SAMPLE_NAME), epochs=6, patience=2, seeds=3),
    "paper-fmnist": Preset(
        "paper-fmnist", "the study's Fashion-MNIST configurations as it ran them, with its published "
        "tuning, and the kit's variants (ff+kit, mf+per-batch) beside them",
        ("fashion_mnist",),
        {"fashion_mnist": (*study_mlp_pairs("fashion_mnist", (2000,) * 4, (1000, 1000)), *cnn_pairs())},
        epochs=100, patience=10, seeds=5),
    "paper": Preset(
        "paper", "all four datasets of the study (those present), run as paper-fmnist runs Fashion-MNIST",
        ("mnist", "fashion_mnist", "cifar10", "cifar100"),
        {"mnist": (*study_mlp_pairs("mnist", (1000,) * 3, (1000, 1000)), *cnn_pairs()),
         "fashion_mnist": (*study_mlp_pairs("fashion_mnist", (2000,) * 4, (1000, 1000)), *cnn_pairs()),
         "cifar10": (*study_mlp_pairs("cifar10", None, (2000,) * 3), *cnn_pairs()),
         "cifar100": (*study_mlp_pairs("cifar100", None, (2000,) * 3), *cnn_pairs())},
        epochs=100, patience=10, seeds=5),
}
# The family since 2023 (lesson 08): every registered algorithm the study did not run, on the full
# Fashion-MNIST in the MF pair's layers where its twin is an MLP, under paper-fmnist's stopping rule.
PRESETS["family-fmnist"] = Preset(
    "family-fmnist", "every registered algorithm the study did not run (forward gradients, ...) against its "
    "twin on the full Fashion-MNIST, MLPs in the MF pair's 2x1000 layers, under paper-fmnist's stopping rule",
    ("fashion_mnist",), RegistryPairs("fashion_mnist", layers={"hidden": (1000, 1000)}, newcomers=True),
    epochs=100, patience=10, seeds=5)
# The authors' 2026 revision re-ran the study under one stopping rule for every algorithm
# (study.REVISION_STOPPING): validation loss, min_delta 0, patience 20, cap 100 per stage; the kit
# runs the paper-fmnist pairs under it (the revision's own tuned values are not published).
PRESETS["revision-fmnist"] = Preset(
    "revision-fmnist", "the paper-fmnist pairs under the stopping rule of the authors' 2026 revision "
    "(validation loss for every algorithm, patience 20, min_delta 0, cap 100 per stage), 7 seeds as it ran FF",
    ("fashion_mnist",), PRESETS["paper-fmnist"].pairs, epochs=100, patience=20, min_delta=0.0, monitor="val_loss",
    seeds=7)
