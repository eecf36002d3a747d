"""The speed command (fwdlib speed): every case of the `paper` preset timed, beside the study and the FLOP floor."""
from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .. import data as datasets
from ..algorithms.base import KERNELS, implementation_of
from ..bench.plan import check_twin_variants, entries_of, selected, spec_of, variants_of
from ..bench.presets import PRESETS
from ..runs.entry import Entry
from ..runs.build import build_model, fit_spec
from ..runs.spec import RunSpec, freeze, thaw
from ..typed import ReadsAsMapping
from ..bench.study import differences, family, study_row
from ..commandline import as_tuple
from ..files import atomic_write, writable_folder
from ..session import pick_device, seed_all
from .floor import Floor, fit_ops
from .steps import PARTS, conv_peak, first_stage_breakdown, interleaved_step_ratio, matmul_peak

# (preset, dataset, entry): the study's architectures as the benchmark runs them. MF and its twin
# run in the kit's per-batch variant; the study's greedy MF is timed by the benchmark itself.
SPEED_CASES = (
    ("paper", "fashion_mnist", "bp-mlp@mf+per-batch"), ("paper", "fashion_mnist", "mf+per-batch"),
    ("paper", "cifar10", "bp-mlp@mf+per-batch"), ("paper", "cifar10", "mf+per-batch"),
    ("paper", "fashion_mnist", "bp-mlp@ff"), ("paper", "fashion_mnist", "ff"),
    ("paper", "fashion_mnist", "bp-cnn@cafo-rand"), ("paper", "fashion_mnist", "cafo-rand"),
    ("paper", "fashion_mnist", "cafo-dfa"),
)


def case_specs(cases=SPEED_CASES, *, epochs: int = 3, device: str = "cpu",
               cuda_graphs: bool = True, kernels: str = "fused") -> list[tuple[RunSpec, str | None]]:
    """(spec, its twin's run key or None) of each case: the benchmark's spec under a matched budget
    of `epochs` (no early stop). The twin is found by key: one BP-CNN run is both CaFo's twin; a twin
    variant's (bp-mlp+checkpoint@mf) is its plain twin, so its ratio is what the variant costs."""
    out = []
    for preset_name, dataset, entry in cases:
        preset = PRESETS[preset_name]
        settings = {"protocol": "matched", "epochs": epochs, "device": device, "cuda_graphs": cuda_graphs,
                    "kernels": kernels}
        spec = spec_of(preset, dataset, entry, **settings)
        entry = spec.entry
        twin = (entry.plain_twin if entry.twin_variant else None if entry.is_twin
                else entry.twin_of(entries_of(preset, dataset)[entry][0].twin))
        out.append((spec, twin and spec_of(preset, dataset, twin, **settings).key))
    return out


def label(spec: RunSpec) -> str:
    """"mf+per-batch 2x1000": the entry and, for an MLP, its layers."""
    hidden = spec.config.get("hidden")
    return f"{spec.entry} {len(hidden)}x{hidden[0]}" if hidden else str(spec.entry)


def study_s_per_epoch(spec: RunSpec) -> float | None:
    """The study's seconds per epoch on its A100 (time / epochs of its table), if it gives both and
    the case is its architecture on its full dataset (an epoch of the sample, or of narrower layers, is
    another amount of work). (The study's per-batch MF rows do not exist: it ran MF greedy, so its
    figure is the greedy one.)"""
    row = study_row(spec.dataset, spec.entry)
    other_work = spec.dataset != family(spec.dataset) or any(
        d.split()[0] in ("hidden", "channels") for d in differences(spec))
    return row.s_per_epoch if row and not other_work else None


def synthetic(name: str, device: torch.device, n_train: int, seed: int = 0) -> datasets.Dataset:
    """Random tensors shaped like `name`, for timing only (accuracy is meaningless)."""
    spec = datasets.SPECS[name]
    gen = torch.Generator().manual_seed(seed)

    def split(n):
        return datasets.Split(torch.randn(n, *spec.input_shape, generator=gen).to(device),
                              torch.randint(0, spec.num_classes, (n,), generator=gen).to(device))

    return datasets.Dataset(f"{name}-shaped synthetic (TIMING ONLY)", split(n_train), split(1000),
                            split(1000), spec.num_classes, spec.input_shape,
                            tuple(map(str, range(spec.num_classes))), "synthetic random tensors",
                            spec.mean, spec.std, augment=datasets.augments(name))


def timing_data(dataset: str, device: torch.device, root=None) -> tuple[datasets.Dataset, str]:
    """The dataset where it is here, else random tensors of its shape (timing only)."""
    try:
        data = datasets.load(dataset, device=device, root=root, download=False)
        return data, data.name
    except datasets.DataError:
        n = 45_000 if dataset.startswith("cifar") else 54_000
        return synthetic(dataset, device, n), f"{dataset}-shaped synthetic (timing only)"


@dataclass(frozen=True, eq=False)
class SpeedRow(ReadsAsMapping):
    """One case as speed.json stores it: its seconds per epoch beside the study's, where a step's time
    goes (`step`), its FLOP/s against the device's peak, and for a rival, its step and its whole
    training against its twin's with the FLOP floors (`floor`, `epoch_floor`)."""
    case: str
    entry: str
    dataset: str
    key: str
    spec: Mapping
    algorithm: str
    batch_size: int
    data: str
    device: str
    device_name: str
    mode: str
    s_per_epoch: float
    epochs_timed: int
    prep_s: float                          # stage preparation (CaFo's features, greedy MF's cache)
    s_per_epoch_whole: float               # the study's way: the whole training time over the epochs
    study_s_per_epoch_a100: float | None
    step: Mapping
    step_stage: str
    flops_per_s: float
    peak_kind: str
    peak_flops_per_s: float
    fraction_of_peak: float
    flops_per_epoch: float
    fit_ops: Mapping
    twin_key: str | None
    notes: tuple
    torch: str
    optimizer: tuple
    interleaved: Mapping | None = None     # a rival's steps and its twin's, timed in alternating blocks
    twin: str | None = None
    step_ratio_to_twin: float | None = None
    epoch_ratio_to_twin: float | None = None
    floor: Mapping | None = None
    epoch_floor: Mapping | None = None

    def __post_init__(self):
        for name in self.__dataclass_fields__:
            object.__setattr__(self, name, freeze(getattr(self, name)))

    def as_json(self) -> dict:
        return {name: thaw(getattr(self, name)) for name in self.__dataclass_fields__}


def speed(cases: list[tuple[RunSpec, str | None]], *, out, root=None, verbose=True) -> list[SpeedRow]:
    """Seconds per epoch of each case (`case_specs`) beside the study's, where each step's time goes, and the
    fraction of the device's peak it reaches (a matmul's, or a convolution's for a CNN step).
    Writes OUT/speed.json."""
    out = writable_folder(out)
    device = torch.device(cases[0][0].device)
    # a step whose matmul time is mostly convolutions is set against a convolution's peak
    peaks = {"matmul": matmul_peak(device), "conv": conv_peak(device)}
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    if verbose:
        print(f"speed on {device_name} ({device}), float32 peaks: matmul {peaks['matmul'] / 1e9:.1f} GFLOP/s "
              f"(one large torch.mm), conv {peaks['conv'] / 1e9:.1f} GFLOP/s (one large 3x3 convolution)")
    # run key -> its step's breakdown, its fit's OpProfile; rival key -> (rival, twin) step OpProfiles, interleaved
    rows, steps, fits, step_ops = [], {}, {}, {}
    for spec, twin_key in cases:
        data, data_label = timing_data(spec.dataset, device, root)
        seed_all(spec.seed)
        model = build_model(spec, data)
        history = fit_spec(model, data, spec)
        per_stage = {}
        for r in history.records:
            per_stage.setdefault(r["stage"], []).append(r["time_s"])
        timed = [t for times in per_stage.values() for t in (times[1:] or times)]
        parts, stage = first_stage_breakdown(build_model(spec, data), data, spec.batch_size)
        steps[spec.key], fits[spec.key] = parts, fit_ops(spec, data)
        peak_kind = "conv" if parts.ops.mostly_convolutions else "matmul"
        row = {"case": label(spec), "entry": str(spec.entry), "dataset": spec.dataset, "key": spec.key,
               "spec": spec.record(), "algorithm": spec.algorithm, "batch_size": spec.batch_size, "data": data_label,
               "device": str(device), "device_name": device_name, "mode": history.mode,
               "s_per_epoch": float(np.median(timed)), "epochs_timed": len(timed),
               "prep_s": history.prep_time_s,      # stage preparation (CaFo's features, greedy MF's cache)
               # the study's way: the whole training time over the epochs, preparation included
               "s_per_epoch_whole": history.train_time_s / history.epochs,
               "study_s_per_epoch_a100": study_s_per_epoch(spec),
               "step": asdict(parts), "step_stage": stage.name, "flops_per_s": parts.flops_per_s(),
               "peak_kind": peak_kind, "peak_flops_per_s": peaks[peak_kind],
               "fraction_of_peak": parts.flops_per_s() / peaks[peak_kind],
               "flops_per_epoch": fits[spec.key].flops, "fit_ops": asdict(fits[spec.key]),
               "twin_key": twin_key, "notes": history.notes, "torch": torch.__version__,
               "optimizer": sorted({implementation_of(o) for o in model.optimizers()})}
        twin_spec = next((RunSpec.from_record(r["spec"], r["entry"]) for r in rows if r["key"] == twin_key), None)
        if twin_spec is not None:          # the twin's run was timed just before: interleave the two
            interleaved = interleaved_step_ratio(build_model(spec, data), build_model(twin_spec, data), data,
                                                 spec.batch_size, twin_spec.batch_size)
            step_ops[spec.key] = interleaved["ops"]
            row["interleaved"] = {**interleaved, "ops": [asdict(p) for p in interleaved["ops"]]}
        rows.append(row)
        if verbose:
            print(describe(row), flush=True)
        del model, data
    for row in rows:                            # a rival's step against its twin's, same machine
        twin = next((t for t in rows if row["twin_key"] and t["key"] == row["twin_key"]), None)
        row["twin"] = twin["case"] if twin else None
        row["step_ratio_to_twin"] = (row["interleaved"]["ratio"] if "interleaved" in row
                                     else row["step"]["step"] / twin["step"]["step"] if twin else None)
        row["epoch_ratio_to_twin"] = row["s_per_epoch_whole"] / twin["s_per_epoch_whole"] if twin else None
        if not twin:
            continue
        step_floor = Floor.of(*step_ops.get(row["key"], (steps[row["key"]].ops, steps[twin["key"]].ops)),
                              row["step_ratio_to_twin"])
        epoch_floor = Floor.of(fits[row["key"]], fits[twin["key"]], row["epoch_ratio_to_twin"])
        row["floor"], row["epoch_floor"] = (
            {**asdict(f), "with_rest": f.with_rest, "distance": f.distance, "verdict": f.verdict()}
            for f in (step_floor, epoch_floor))
        if verbose:
            print(f"  {row['case']} / {twin['case']}:\n    step (median of interleaved blocks) {step_floor.text()}\n"
                  f"    whole training time per epoch (the two runs timed one after the other) {epoch_floor.text()}")
    rows = [SpeedRow(**row) for row in rows]
    atomic_write(out / "speed.json", json.dumps([r.as_json() for r in rows], indent=2))
    return rows


def describe(row: Mapping) -> str:
    """One case in two lines: seconds per epoch, then where a step goes and the FLOP/s."""
    step = row["step"]
    study = row["study_s_per_epoch_a100"]
    parts = ", ".join(f"{p} {1000 * step[p.replace(' ', '_')]:.1f}" for p in PARTS)
    prep = f" + {row['prep_s']:.3g} s stage preparation in all" if row["prep_s"] > 1e-3 else ""
    return (f"  {row['case']:28s} batch {row['batch_size']:3d}: {row['s_per_epoch']:8.3f} s/epoch{prep}, "
            f"{row['s_per_epoch_whole']:.3f} s per epoch of the whole training ({row['mode']}, {row['data']})"
            + (f"; study A100 {study:.2f} s (its whole time / epochs)" if study else "")
            + f"\n  {'':28s} one eager step {1000 * step['step']:.1f} ms = {parts} ms ({row['step_stage']}); "
            f"{row['flops_per_s'] / 1e9:.1f} GFLOP/s = {100 * row['fraction_of_peak']:.0f}% of the {row['peak_kind']} peak")


def preset_cases(preset: str, twin_variants=()) -> tuple[tuple[str, str, str], ...]:
    """The cases of a preset: the study's architectures (SPEED_CASES) for `paper`, else every entry
    the preset runs on its first dataset (`quick`: every registered algorithm and its twin); with
    `twin_variants`, each twin run that way too (`plan.entries_of`)."""
    if preset == "paper":
        ways = check_twin_variants(twin_variants)
        return SPEED_CASES + tuple((p, d, str(variant)) for p, d, e in SPEED_CASES
                                   for variant, _ in variants_of(Entry.parse(e), ways))
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    dataset = PRESETS[preset].datasets[0]
    return tuple((preset, dataset, str(entry))
                 for entry in entries_of(PRESETS[preset], dataset, check_twin_variants(twin_variants)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fwdlib speed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper",
                        help="paper: the study's architectures (default); another preset: each of its entries")
    parser.add_argument("--only", help="comma-separated entries of the cases, e.g. mf+per-batch (its twin follows), "
                                       "or algorithms, e.g. mf")
    parser.add_argument("--checkpointed-twins", action="store_true",
                        help="also time each BP twin with activation checkpointing, against the plain twin")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per stage (the first is warm-up; default 3)")
    parser.add_argument("--out", default="speed-results", help="folder for speed.json")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--data-root", help="folder holding the datasets (else synthetic tensors of their shape)")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="run every step eagerly")
    parser.add_argument("--optimizer-kernels", choices=KERNELS, default="fused",
                        help="the optimizers' kernels (default fused; foreach for an A/B of the same math)")
    args = parser.parse_args(argv)
    try:
        only = as_tuple(args.only)
        known = preset_cases(args.preset, ("checkpoint",) if args.checkpointed_twins else ())
        # an entry by its name, or as the benchmark's --algorithms picks: a rival's twin follows it
        cases = [c for c in known if not only or c[2] in only or selected(Entry.parse(c[2]), only)]
        if not cases:
            raise ValueError(f"--only {args.only} names no case; the cases: {', '.join(c[2] for c in known)}")
        if args.epochs < 1:
            raise ValueError(f"--epochs must be at least 1, got {args.epochs}")
        speed(case_specs(cases, epochs=args.epochs, device=str(pick_device(args.device)),
                         cuda_graphs=not args.no_cuda_graphs, kernels=args.optimizer_kernels),
              out=args.out, root=args.data_root)
    except (ValueError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0

