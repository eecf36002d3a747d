"""Every GPU acceptance check in one command: `make gpu-check` (fwdlib gpu-check).

Run it once on any machine with an NVIDIA GPU (a Colab GPU runtime, a lab server, a cloud VM)
after changing the training loop, CUDA graphs, the meters or an algorithm. It checks, and writes
to gpu-check/report.md and report.json (`--only` runs a subset; the lessons take longest):

1. CUDA-graph training equals eager training for every algorithm (same weights after the same
   steps, within float tolerance), FF's learning-rate cooldown included;
2. the speed targets, on the benchmark's own specs (`paper` preset): Fashion-MNIST 2x1000 pair
   <= 0.10 s per epoch, CIFAR-10-shaped 3x2000 pair <= 0.20 s, FF 4x2000 (ff+kit, batch 128)
   <= 1.0 s, and MF no slower than its twin; MF's step within 5% of its floor with the rest (its
   matmuls at the twin's matmul rate, the rest of its time as the twin's), MF 3x2000 at
   MF_PEAK_FRACTION of the matmul peak, FF at or below its FLOP floor (`speed.Floor`);
3. the energy meter: NVML's counter against power sampled every 100 ms and against CodeCarbon,
   the allocator's peak against NVML's device-wide figure;
4. a short FF 4x2000 run on Fashion-MNIST (the full set where present), accuracy per epoch;
5. every lesson top to bottom in full mode, each timed against what a Colab T4 session tolerates
   (`T4_BUDGET_S`, the time here scaled by the two GPUs' float32 matmul peaks).

Without a CUDA GPU it says so in one line and exits with status 2. `fwdlib gpu-check
--overhead` measures the energy meter's own overhead on any device.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch

from . import algorithms as registry, data as datasets
from .bench.study import STUDY_FF_OPTIONS
from .meters.energy import EnergyMeter
from .bench.plan import spec_of
from .bench.presets import PRESETS
from .runs.build import build_model, fit_spec
from .speed import FLOOR_TOLERANCE, case_specs, matmul_peak, speed, synthetic
from .train import DEFAULT_BATCH, evaluate, fit
from .files import as_json, atomic_write
from .session import pick_device, seed_all, synchronize

NO_GPU = ("gpu-check: no CUDA GPU here (torch.cuda.is_available() is False); run `make gpu-check` on a "
          "machine with an NVIDIA GPU, e.g. a Colab GPU runtime")
def graph_cases() -> dict[str, dict]:
    """Small configurations of every registered algorithm (its `examples`, one per code path), and FF
    as the study ran it, for the graph-against-eager check: "name" or "name example" -> config."""
    cases = {f"{name} {label}".strip(): config for name, cls in registry.REGISTRY.items()
             for label, config in cls.examples.items()}
    return {**cases, "ff as the study ran it": {**registry.REGISTRY["ff"].examples[""], **STUDY_FF_OPTIONS}}
# (preset, dataset, entry) -> seconds per epoch at most (None: timed for its rival's floor only)
SPEED_TARGETS = {("paper", "fashion_mnist", "bp-mlp@mf+per-batch"): 0.10, ("paper", "fashion_mnist", "mf+per-batch"): 0.10,
                 ("paper", "cifar10", "bp-mlp@mf+per-batch"): 0.20, ("paper", "cifar10", "mf+per-batch"): 0.20,
                 ("paper", "fashion_mnist", "bp-mlp@ff+kit"): None, ("paper", "fashion_mnist", "ff+kit"): 1.0}
MF_PEAK_FRACTION = 0.65          # MF 3x2000's step: at least this share of the GPU's float32 matmul peak


def graphs_match_eager(device, cases=None, epochs: int = 6, tolerance: float = 1e-3) -> dict:
    """Train each case twice from the same weights on the same batches, eagerly and with CUDA
    graphs; the largest weight difference of each (relative to the weight's scale)."""
    small = datasets.first(synthetic("fashion_mnist", device, 512), 512, 256)
    out = {}
    for label, config in (cases or graph_cases()).items():
        name = label.split()[0]
        seed_all(0)
        eager = registry.build(name, input_shape=small.input_shape, num_classes=small.num_classes, **config)
        graphed = copy.deepcopy(eager)
        histories = [fit(m, small, epochs=epochs, batch_size=DEFAULT_BATCH, progress=False, cuda_graphs=graphs,
                         restore_best=False, seed=0) for m, graphs in ((eager, False), (graphed, True))]
        worst = max(((a - b).abs().max() / (a.abs().max() + 1e-6)).item()
                    for a, b in zip(eager.state_dict().values(), graphed.state_dict().values())
                    if a.is_floating_point())
        out[label] = {"max_relative_difference": worst, "mode": histories[1].mode,
                      "notes": histories[1].notes, "ok": worst <= tolerance and histories[1].mode == "cuda-graph"}
    return out


def speed_targets(device, out: Path, root=None) -> dict:
    """Seconds per epoch against SPEED_TARGETS; MF no slower than its twin per epoch and, per step,
    within FLOOR_TOLERANCE of its floor with the rest, MF 3x2000 at MF_PEAK_FRACTION of the
    matmul peak; FF at or below its FLOP floor."""
    rows = speed(case_specs(list(SPEED_TARGETS), device=str(device)), out=out, root=root)
    result = {}
    for row, target in zip(rows, SPEED_TARGETS.values()):
        if target is not None:
            result[f"{row['dataset']} {row['case']}"] = {"s_per_epoch": row["s_per_epoch"], "target": target,
                                                         "fraction_of_peak": row["fraction_of_peak"],
                                                         "ok": row["s_per_epoch"] <= target}
    for row in (r for r in rows if r.get("floor")):
        pair, floor = f"{row['dataset']} {row['case']} / {row['twin']}", row["floor"]
        seen = {k: floor[k] for k in ("measured", "flops_ratio", "with_rest", "distance", "verdict")}
        if row["algorithm"] == "mf":
            result[pair] = {"ratio": row["epoch_ratio_to_twin"], "target": 1.0, "ok": row["epoch_ratio_to_twin"] <= 1.0}
            result[f"{pair}: step at its floor"] = {
                **seen, "ok": floor["measured"] <= (1 + FLOOR_TOLERANCE) * floor["with_rest"]}
        if row["algorithm"] == "ff":
            result[f"{pair}: step at or below its FLOP floor"] = {**seen, "ok": floor["distance"] <= FLOOR_TOLERANCE}
    for row in rows:
        if row["algorithm"] == "mf" and len(row["spec"]["config"]["hidden"]) == 3:
            result[f"{row['dataset']} {row['case']}: share of the matmul peak"] = {
                "fraction_of_peak": row["fraction_of_peak"], "target": MF_PEAK_FRACTION,
                "ok": row["fraction_of_peak"] >= MF_PEAK_FRACTION}
    return result


def energy_agreement(seconds: float = 5.0) -> dict:
    """One `seconds`-long matmul workload metered three ways (NVML counter, power sampled every
    100 ms, CodeCarbon), plus the allocator's peak against NVML's device figure."""
    a = torch.randn(8192, 8192, device="cuda")
    with EnergyMeter(cross_check=True) as meter:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(20):
                a @ a
            torch.cuda.synchronize()
    r = meter.result
    counter = next(d for d in r.devices if d.source == "measured_counter")
    sampled = r.cross_checks.get("sampled_power_j", {}).get(counter.device)
    codecarbon = r.cross_checks.get("codecarbon_gpu_j")
    memory = r.gpu_memory[0]
    out = {"device": counter.device, "wall_s": r.wall_s, "counter_j": counter.joules,
           "sampled_j": sampled, "codecarbon_gpu_j": codecarbon,
           "sampled_vs_counter": sampled / counter.joules - 1 if sampled else None,
           "codecarbon_vs_counter": codecarbon / counter.joules - 1 if codecarbon else None,
           "allocator_peak_bytes": memory.peak_allocated_bytes, "nvml_used_bytes": memory.nvml_used_bytes}
    out["ok"] = (out["sampled_vs_counter"] is not None and abs(out["sampled_vs_counter"]) < 0.05
                 and (memory.nvml_used_bytes or 0) > memory.peak_allocated_bytes)
    return out


def ff_run(device, epochs: int = 5, root=None) -> dict:
    """FF 4x2000 as the benchmark runs ff+kit (the kit's defaults) on Fashion-MNIST: validation
    accuracy per epoch, test at the end."""
    try:
        data = datasets.load("fashion_mnist", device=device, root=root, download=False)
    except datasets.DataError:
        data = datasets.load(datasets.SAMPLE_NAME, device=device)
    spec = spec_of(PRESETS["paper"], "fashion_mnist", "ff+kit", protocol="matched", epochs=epochs, device=str(device))
    seed_all(spec.seed)
    model = build_model(spec, data)
    history = fit_spec(model, data, spec)
    test = evaluate(model, data.test)
    return {"data": data.name, "val_acc": history["val_acc"], "s_per_epoch": history["time_s"],
            "test_acc": test, "mode": history.mode, "ok": test > 0.80}


# What a Colab T4 session tolerates for each lesson in full mode (seconds): a student waits a few
# minutes for a lesson, longer for the head-to-head benchmark and the class study, which train
# every pair for several seeds.
T4_BUDGET_S = {"00": 300, "01": 300, "02": 600, "03": 600, "04": 600, "05": 600, "06": 1800, "07": 900, "08": 600}
T4_FP32_FLOPS = 8.1e12          # NVIDIA T4's float32 peak (its datasheet)


def lessons_full(device, folder: str = "notebooks", timeout: int = 1800) -> dict:
    """Every lesson top to bottom in full mode, each timed. Its time on a T4 is estimated by
    scaling with the float32 matmul peaks (this GPU's, measured, over the T4's datasheet figure):
    pessimistic for launch-bound cells, which a slower GPU does not slow as much."""
    scale = matmul_peak(device) / T4_FP32_FLOPS
    out = {"t4_scale": scale}
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        result = notebook_full(str(path), timeout)
        budget = T4_BUDGET_S.get(path.name[:2])
        result.update(t4_estimate_s=result["seconds"] * max(scale, 1.0), t4_budget_s=budget)
        result["ok"] = result["ok"] and budget is not None and result["t4_estimate_s"] <= budget
        out[path.name] = result
    return out


def notebook_full(path: str, timeout: int = 1800) -> dict:
    import nbformat                                 # a development tool, only this check needs it
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    os.environ["FWDLIB_QUICK"] = "0"
    start = time.perf_counter()
    error = None
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    except Exception as err:  # noqa: BLE001 - a failing cell is this lesson's result, not the check's end
        error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return {"notebook": path, "seconds": time.perf_counter() - start, "ok": error is None, "error": error}


def measure_overhead(seconds: float = 10.0, repeats: int = 3, device=None) -> dict:
    """Fraction of a `seconds`-long fixed workload's time added by metering it.

    The same matmul loop runs bare and inside an EnergyMeter (CodeCarbon on, sampler threads
    on where there is a GPU), alternating, `repeats` times; the medians are compared.
    """
    device = pick_device(device)
    a = torch.randn(512, 512, device=device)

    def work(n):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(n):
            a @ a
        synchronize(device)
        return time.perf_counter() - start

    n = 10
    while work(n) < 0.5:
        n *= 2
    n = int(n * seconds / work(n))
    bare, metered = [], []
    for _ in range(repeats):
        bare.append(work(n))
        with EnergyMeter() as m:
            work(n)
        metered.append(m.result.wall_s)
    bare_s, metered_s = sorted(bare)[repeats // 2], sorted(metered)[repeats // 2]
    return {"device": str(device), "bare_s": bare_s, "metered_s": metered_s,
            "overhead": (metered_s - bare_s) / bare_s, "iterations": n}


def markdown(results: dict) -> str:
    lines = ["# fwdlib GPU check", "", f"device: {results['device']}, torch {torch.__version__}", ""]
    for name, result in results["checks"].items():
        ok = result.get("ok", all(v.get("ok") for v in result.values() if isinstance(v, dict)))
        lines += [f"## {name}: {'PASS' if ok else 'FAIL'}", "", "```", json.dumps(as_json(result), indent=2), "```", ""]
    return "\n".join(lines)


# --only's names for the checks, in the order they run
CHECKS = {"graphs": "CUDA graphs equal eager training", "speed": "speed targets", "energy": "energy meter",
          "ff": "FF 4x2000 accuracy per epoch", "lessons": "every lesson in full mode"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fwdlib gpu-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu-check", help="folder for report.md and report.json")
    parser.add_argument("--data-root", help="folder holding the datasets")
    parser.add_argument("--overhead", action="store_true", help="only the energy meter's overhead (any device)")
    parser.add_argument("--only", help="comma-separated subset of the checks: " + ", ".join(CHECKS))
    args = parser.parse_args(argv)
    only = [name.strip() for name in (args.only or "").split(",") if name.strip()]
    unknown = [name for name in only if name not in CHECKS]
    if unknown:
        parser.error(f"--only {', '.join(unknown)}: no such check; choose from {', '.join(CHECKS)}")
    if args.overhead:
        r = measure_overhead()
        print(f"{r['device']}: bare {r['bare_s']:.3f} s, metered {r['metered_s']:.3f} s, "
              f"overhead {100 * r['overhead']:+.2f}% ({r['iterations']} matmuls of 512x512)")
        return 0
    if not torch.cuda.is_available():
        print(NO_GPU, file=sys.stderr)
        return 2
    device = pick_device("cuda")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run = {"graphs": lambda: graphs_match_eager(device), "speed": lambda: speed_targets(device, out, args.data_root),
           "energy": energy_agreement, "ff": lambda: ff_run(device, root=args.data_root),
           "lessons": lambda: lessons_full(device)}
    checks = {title: run[name] for name, title in CHECKS.items() if not only or name in only}
    results = {"device": torch.cuda.get_device_name(device), "checks": {}}
    for name, check in checks.items():
        print(f"gpu-check: {name} ...", flush=True)
        try:
            results["checks"][name] = check()
        except Exception as err:  # noqa: BLE001 - one failed check must not hide the others
            results["checks"][name] = {"ok": False, "error": f"{type(err).__name__}: {err}",
                                       "traceback": traceback.format_exc(limit=5)}
        atomic_write(out / "report.json", json.dumps(as_json(results), indent=2))
        atomic_write(out / "report.md", markdown(results))
    text = markdown(results)
    print(text)
    return 0 if "FAIL" not in text else 1


if __name__ == "__main__":          # the old form, python -m fwdlib.gpu_check
    print("gpu-check: this command is now `fwdlib gpu-check`; the old form keeps working", file=sys.stderr)
    sys.exit(main())
