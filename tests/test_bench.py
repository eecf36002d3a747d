import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fwdlib import algorithms, bench, presets, report, speed, stats, study, verdicts
from fwdlib.bench import claims, runner, summary
from fwdlib.meters import process
from fwdlib.runs.entry import Entry
from fwdlib.bench.plan import entries_of, plan, preset_specs, spec_of
from fwdlib.runs.spec import RunSpec, StoppingRule

ROOT = Path(__file__).resolve().parents[1]


def planned(preset="quick", datasets=None, seeds=1, **settings):
    """The benchmark's runs of a preset, as `bench.run` plans them."""
    preset = bench.PRESETS[preset]
    settings = {"protocol": "converge", "device": "cpu", "cuda_graphs": True, **settings}
    return plan(preset_specs(preset, datasets or preset.datasets, **settings), seeds)


def test_both_members_of_every_pair_share_the_protocol():
    for protocol in bench.PROTOCOLS:
        runs = planned(seeds=2, protocol=protocol)
        by_entry = {str(e): r.spec for r in runs if r.spec.seed == 0 for e in r.entries}
        for rival, twin in algorithms.TWINS.items():
            a, b = by_entry[rival], by_entry[f"{twin}@{rival}"]
            assert (a.dataset, a.batch_size, a.rule, a.augment, a.device, a.cuda_graphs) == \
                (b.dataset, b.batch_size, b.rule, b.augment, b.device, b.cuda_graphs)
            assert a.config.get("hidden", a.config.get("channels")) == \
                b.config.get("hidden", b.config.get("channels"))          # same layers
        assert (runs[0].spec.rule.patience is None) == (protocol == "matched")
    assert {r.spec.algorithm for r in runs} == set(algorithms.NAMES)          # the quick preset runs every one


def test_runs_are_interleaved_and_keys_unique():
    runs = planned(seeds=3)
    assert len({r.key for r in runs}) == len(runs)
    firsts = [next(r.spec.algorithm for r in runs if r.spec.seed == s) for s in range(3)]
    assert len(set(firsts)) == 3                       # a different algorithm opens each seed
    assert [r.spec.seed for r in runs] == sorted(r.spec.seed for r in runs)
    cnn_twin = next(r for r in runs if r.spec.algorithm == "bp-cnn")     # one run, the twin of both CaFos
    assert [str(e) for e in cnn_twin.entries] == ["bp-cnn@cafo-rand", "bp-cnn@cafo-dfa"]


def test_the_entry_grammar_has_one_parser_and_one_formatter():
    for text, parts in (("mf", ("mf", None, None, None)), ("mf+per-batch", ("mf", None, "per-batch", None)),
                        ("bp-mlp@mf", ("mf", "bp-mlp", None, None)),
                        ("bp-mlp@mf+per-batch", ("mf", "bp-mlp", "per-batch", None)),
                        ("bp-mlp+checkpoint@mf", ("mf", "bp-mlp", None, "checkpoint")),
                        ("bp-mlp+checkpoint@mf+per-batch", ("mf", "bp-mlp", "per-batch", "checkpoint"))):
        entry = Entry.parse(text)
        assert (entry.rival, entry.twin, entry.variant, entry.twin_variant) == parts and str(entry) == text
    way = Entry.parse("bp-mlp+checkpoint@mf+per-batch")
    assert (way.algorithm, way.twin_name, str(way.plain_twin), str(way.rival_entry)) == (
        "bp-mlp", "bp-mlp+checkpoint", "bp-mlp@mf+per-batch", "mf+per-batch")
    assert study.study_entry(way) == "bp-mlp@mf" and Entry("mf").twin_of("bp-mlp", "checkpoint") == Entry.parse("bp-mlp+checkpoint@mf")
    with pytest.raises(ValueError, match="needs a twin"):
        Entry("mf", twin_variant="checkpoint")
    twin = Entry.parse("bp-mlp@ff+kit")
    assert (twin.algorithm, twin.is_twin, str(twin.rival_entry), study.study_entry(twin)) == ("bp-mlp", True, "ff+kit", "bp-mlp@ff")
    assert study.study_entry("bp-cnn@cafo-dfa") == "bp-cnn" and Entry("mf").twin_of("bp-mlp") == Entry.parse("bp-mlp@mf")
    for bad in ("", "@mf", "mf+", "a@b@c", "MF", "mf+x+y", "+checkpoint@mf", "bp-mlp+@mf", "bp-mlp+a+b@mf"):
        with pytest.raises(ValueError, match="not an entry"):
            Entry.parse(bad)


def test_a_run_spec_is_frozen_and_its_key_is_the_hash_of_its_record():
    spec = spec_of(bench.PRESETS["paper-fmnist"], "fashion_mnist", "ff", device="cpu")
    assert (spec.algorithm, spec.batch_size, spec.config["hidden"]) == ("ff", 100, (2000,) * 4)
    assert set(spec.record()) == {"dataset", "algorithm", "config", "batch_size", "epochs", "monitor", "patience",
                                  "min_delta", "protocol", "augment", "device", "cuda_graphs", "seed"}
    with pytest.raises(TypeError):
        spec.config["lr"] = 1.0
    assert RunSpec.from_record(json.loads(json.dumps(spec.record())), "ff") == spec
    assert spec.replace(entry=Entry("ff", variant="other")).key == spec.key and spec.replace(seed=1).key != spec.key
    assert spec.with_config(lr=0.1).differences(spec) == [f"config.lr: 0.1 vs {spec.config['lr']!r}"]
    assert str(StoppingRule(5, patience=None)) == ("val_acc, patience none (matched budget), min_delta 0.001, "
                                                   "cap 5 per stage, best weights restored")


def test_bad_arguments_list_the_valid_choices(capsys):
    cases = [(["--preset", "huge"], "quick, paper-fmnist, paper"),
             (["--preset", "speed"], "fwdlib speed"),
             (["--algorithms", "rnn"], "bp-mlp"),
             (["--dataset", "imagenet"], "fashion_mnist_sample"),
             (["--protocol", "forever"], "converge, matched"),
             (["--seeds", "0"], "from 1 to")]
    for argv, expected in cases:
        assert bench.main(argv + ["--out", "/nonexistent/never"]) == 2
        assert expected in capsys.readouterr().err


def test_a_diverging_run_is_recorded_as_failed_and_the_rest_finish(monkeypatch, tmp_path, diverging):
    pairs = (presets.Pair("diverging", {}, "bp-mlp", {"hidden": (32,)}),)
    preset = presets.Preset("t", "test", ("fashion_mnist_sample",), {"fashion_mnist_sample": pairs},
                          epochs=1, patience=1, seeds=1)
    monkeypatch.setitem(bench.PRESETS, "t", preset)
    records = bench.run(bench.Benchmark.of("t", out=tmp_path, verbose=False), co2=False, verbose=False)
    status = {r["spec"]["algorithm"]: r for r in records}
    assert status["diverging"]["status"] == "failed"
    assert "TrainingDiverged" in status["diverging"]["reason"] and "learning rate" in status["diverging"]["reason"]
    assert status["bp-mlp"]["status"] == "ok" and status["bp-mlp"]["test_acc"] > 0.5
    assert "Failed runs" in (tmp_path / "report.md").read_text()
    lines = (tmp_path / "results.jsonl").read_text().count("\n")
    bench.run(bench.Benchmark.of("t", out=tmp_path, verbose=False), co2=False, verbose=False)              # resumes: a failure stays recorded
    assert (tmp_path / "results.jsonl").read_text().count("\n") == lines
    again = bench.run(bench.Benchmark.of("t", out=tmp_path, verbose=False), co2=False, verbose=False, retry_failed=True)
    appended = _lines(tmp_path / "results.jsonl")[lines:]
    assert [r["spec"]["algorithm"] for r in appended] == ["diverging"]      # only the failed run reran
    assert {r["key"]: r["finished"] for r in again}[appended[0]["key"]] == appended[0]["finished"]


def test_rerun_contaminated_runs_again_only_the_pair_other_work_spoiled_whole(monkeypatch, tmp_path):
    pairs = (presets.Pair("mf", {"hidden": (32,)}, "bp-mlp", {"hidden": (32,)}),
             presets.Pair("ff", {"hidden": (16,)}, "bp-mlp", {"hidden": (16,)}))
    preset = presets.Preset("t", "test", ("fashion_mnist_sample",), {"fashion_mnist_sample": pairs},
                            epochs=1, patience=1, seeds=1)
    monkeypatch.setitem(bench.PRESETS, "t", preset)
    first = bench.run(bench.Benchmark.of("t", out=tmp_path, verbose=False), co2=False, verbose=False)
    spoiled = next(r for r in first if r["spec"]["algorithm"] == "mf").replace(foreign_load=1.5, foreign_cpu_s=3.0, cpus=2)
    with (tmp_path / "results.jsonl").open("a") as f:     # as if other work had run beside it
        f.write(spoiled.to_json() + "\n")
    lines = len(_lines(tmp_path / "results.jsonl"))
    bench.run(bench.Benchmark.of("t", out=tmp_path, verbose=False), co2=False, verbose=False)              # kept, only counted
    assert len(_lines(tmp_path / "results.jsonl")) == lines
    assert "1 contaminated by other work" in (tmp_path / "report.md").read_text()
    bench.run(bench.Benchmark.of("t", out=tmp_path, verbose=False), co2=False, verbose=False, rerun_contaminated=True)
    appended = _lines(tmp_path / "results.jsonl")[lines:]
    # the spoiled run's pair, back to back and in the plan's order (seed 0: the rival first); not ff's
    assert [(r["spec"]["algorithm"], r["spec"]["config"]["hidden"]) for r in appended] == [("mf", [32]),
                                                                                       ("bp-mlp", [32])]


def _lines(path):
    raw = path.read_text()
    assert raw.endswith("\n")
    return [json.loads(line) for line in raw.splitlines()]


@pytest.mark.slow
def test_resume_after_the_process_is_killed(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fwdlib", "bench", "--preset", "quick", "--algorithms", "mf",
           "--seeds", "3", "--epochs", "2", "--no-co2", "--out", str(out)]
    env = {**os.environ, "CI": "true", "FWDLIB_QUICK": "0"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.time() + 900          # generous: a loaded 2-core machine is slow, never wrong
    while time.time() < deadline and not (results.exists() and results.read_text().count("\n") >= 2):
        time.sleep(0.05)
    assert results.exists(), "the benchmark wrote nothing before the deadline"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = _lines(results)
    assert 2 <= len(before) < 6, "the kill should land mid-benchmark"
    with open(results, "ab") as f:                      # a torn write from a crash
        f.write(b'{"key": "half a line')
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = _lines(results)
    keys = [r["key"] for r in after]
    assert len(after) == 6 and len(set(keys)) == 6        # mf + twin, 3 seeds: none twice
    assert [r["key"] for r in after[: len(before)]] == [r["key"] for r in before]
    assert f"{len(before)} already in" in done.stdout


def fixture_records():
    """Hand-made results: mf beats its twin on time, loses on accuracy; one failure."""
    def rec(algorithm, entries, seed, acc, seconds, joules, status="ok"):
        spec = {"dataset": "fashion_mnist", "algorithm": algorithm, "config": {}, "batch_size": 128,
                "epochs": 5, "monitor": "val_acc", "patience": 2, "min_delta": 0.001,
                "protocol": "converge", "device": "cuda", "cuda_graphs": True, "seed": seed}
        if status != "ok":
            return {"key": f"{algorithm}{seed}", "spec": spec, "entries": entries, "status": status,
                    "reason": "TrainingDiverged: boom"}
        return {"key": f"{algorithm}{seed}", "spec": spec, "entries": entries, "status": "ok",
                "test_acc": acc, "epochs": 5, "train_time_s": seconds, "energy_measured_j": joules,
                "energy_gpu_j": joules - 360.0,                    # 0.1 Wh of it from the CPU packages
                "energy_estimated_j": 1.0, "energy_sources": ["cuda:0: measured_counter"],
                "co2_kg": 1e-5, "gpu_peak_allocated_bytes": 100 * 2**20, "cpu_peak_rss_bytes": 1,
                "train_memory_bytes": (30 if algorithm == "mf" else 40) * 2**20,
                "cpu_rss_method": "x", "execution_mode": "cuda-graph",
                "history": [{"val_acc": acc - 0.01 * i} for i in range(3)][::-1]}
    records = [rec("mf", ["mf"], s, a, t, j) for s, (a, t, j) in
               enumerate([(0.88, 10.0, 3600.0), (0.89, 11.0, 3960.0), (0.90, 12.0, 4320.0)])]
    records += [rec("bp-mlp", ["bp-mlp@mf"], s, a, t, j) for s, (a, t, j) in
                enumerate([(0.89, 20.0, 7200.0), (0.90, 22.0, 7920.0), (0.91, 24.0, 8640.0)])]
    records.append(rec("ff", ["ff"], 0, 0, 0, 0, status="failed"))
    return records


def test_report_and_figures_from_a_fixture(tmp_path):
    paths = report.write_report(fixture_records(), tmp_path, title="fixture")
    md = (tmp_path / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| mf |"))
    assert "89.00 [88.00, 90.00] (x0.99)" in row              # median acc and ratio to the twin
    assert "11.00 [10.00, 12.00] (x0.50)" in row              # time halved
    assert "1.1000 [1.0000, 1.2000] (x0.50)" in row           # 3960 J = 1.1 Wh in all
    assert "| 1.0000 [0.9000, 1.1000] (x0.48) | 0.86 |" in row  # the GPU's own, beside the study's GPU figure
    assert "| 30.0 [30.0, 30.0] (x0.75) | 100 [100, 100] (x1.00) |" in row   # training memory, allocator peak
    assert "89.72 (MLP 2x1000)" in row and "52.1" in row      # the study beside ours
    assert "ff: TrainingDiverged: boom" in md and "patience 2" in md
    assert "| 3 (75.0% interval) |" in row and "95%" not in md.split("## fashion")[1].split("## Each")[0]
    paired_row = next(line for line in md.splitlines() if line.startswith("| fashion_mnist | mf vs bp-mlp@mf |"))
    # 1 pp lower and half the time on every seed: still only exploratory with 3 seeds
    floor = ", and only the 5-seed floor holds the decision back)"
    assert "-1 [-1, -1], n=3: exploratory (3 of 5 seeds; the interval says twin better" + floor in paired_row
    assert "0.5 [0.5, 0.5], n=3: exploratory (3 of 5 seeds; the interval says rival better" + floor in paired_row
    assert "Student t 95% interval of the paired values" in md and "Holm" in md
    assert "Margins: accuracy 0.5 pp, time 5%, energy 5%, memory 2%; equivalence is the two one-sided tests" in md
    wider = report.markdown(report.group_rows(fixture_records(), {**verdicts.MARGINS, "accuracy": 1.0}), "t")
    assert "Margins: accuracy 1 pp, time 5%" in wider
    csv_text = (tmp_path / "report.csv").read_text().splitlines()
    assert csv_text[0].startswith("dataset,protocol,device,entry,twin,seeds_ok,interval,test_acc_median,test_acc_lo,"
                                  "test_acc_hi,test_acc_confidence")
    assert "paired_test_acc_outcome" in csv_text[0] and "Student t" in csv_text[2]
    for name in ("accuracy_vs_energy.png", "time_energy.png", "memory.png", "learning_curves.png"):
        assert (tmp_path / name).stat().st_size > 5000 and tmp_path / name in paths


def test_the_interval_is_an_order_statistic_interval_with_its_confidence_stated():
    few = stats.summarise([1.0, 2.0, 9.0])
    assert (few["lo"], few["hi"], few["confidence"]) == (1.0, 9.0, 0.75)
    assert few["interval"] == "median, order-statistic interval, 75.0% confidence"
    many = stats.summarise([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 30.0])
    assert many["confidence"] >= 0.95 and many["hi"] < 30.0        # X(2)..X(8) of 9: 96.1%
    assert stats.summarise([4.0])["interval"] == "1 seed: no interval"


def test_speed_uses_labelled_synthetic_tensors_when_data_is_absent():
    ds = speed.synthetic("cifar10", torch.device("cpu"), 256)
    assert ds.train.x.shape == (256, 3, 32, 32) and "TIMING ONLY" in ds.name and ds.augment


def test_every_entry_of_every_preset_shows_the_studys_numbers():
    """Every entry of an algorithm the study ran (the quick preset runs any registered algorithm; the
    report says of another that the study did not run it)."""
    ran = {Entry.parse(entry).rival for _, entry in study.STUDY}
    for preset in bench.PRESETS.values():
        for dataset in preset.pairs:
            for entry in entries_of(preset, dataset):
                assert entry.rival not in ran or study.study_row(dataset, entry) is not None, (preset.name, dataset, entry)
    assert study.study_row("fashion_mnist", "bp-cnn@cafo-dfa") == study.STUDY[("fashion_mnist", "bp-cnn")]


def test_the_gpu_presets_run_enough_seeds_for_a_decisive_verdict():
    for name in ("paper-fmnist", "paper"):
        assert bench.PRESETS[name].seeds >= stats.MIN_DECISIVE_SEEDS


def test_the_paper_presets_run_each_algorithm_as_the_study_did_and_the_kits_variants_beside():
    for name in ("paper-fmnist", "paper"):
        by_entry = {(r.spec.dataset, str(e)): r.spec.replace(entry=e) for r in planned(name) for e in r.entries}
        ff, mf = by_entry[("fashion_mnist", "ff")], by_entry[("fashion_mnist", "mf")]
        assert ff.batch_size == by_entry[("fashion_mnist", "bp-mlp@ff")].batch_size == 100
        # as the study ran them, so nothing but the shared stopping rule differs from it
        for spec in (ff, mf, by_entry[("fashion_mnist", "bp-mlp@mf")]):
            diffs = study.differences(spec)
            assert [d.split()[0] for d in diffs] == ["stopping"], (spec.entry, diffs)
        assert mf.config["schedule"] == "greedy" and mf.config["epochs_per_layer"] == 12
        # the kit's variants are separate entries with their own twins, and say how they differ
        kit = by_entry[("fashion_mnist", "ff+kit")]
        assert ("fashion_mnist", "bp-mlp@ff+kit") in by_entry and kit.batch_size == 128
        diffs = " ".join(study.differences(kit))
        for setting in ("batch_size 128 (study 100)", "prediction head (study goodness)", "peer_norm 0.0 (study 0.03)",
                        "relu relu (study straight-through)", "lr_cooldown False (study True)"):
            assert setting in diffs
        per_batch = by_entry[("fashion_mnist", "mf+per-batch")]
        assert "schedule per-batch (study greedy)" in study.differences(per_batch)


def test_cifar_pairs_share_their_augmentation():
    augment = {str(e): r.spec.augment for r in planned("paper", ("cifar10",)) for e in r.entries}
    for rival in ("cafo-rand", "cafo-dfa", "mf"):        # cached features: neither member augments
        twin = next(e for e in augment if e.endswith(f"@{rival}"))
        assert augment[rival] is False and augment[twin] is False, rival
    assert augment["mf+per-batch"] is None and augment["bp-mlp@mf+per-batch"] is None   # both: crop + flip
    assert "cached features" in presets.augmentation(True, False)
    assert presets.augmentation(True, None).startswith("random crop") and presets.augmentation(False, None) == "none"


def test_the_report_lists_what_differs_from_the_study_per_entry(tmp_path):
    records = [r for r in fixture_records() if r["status"] == "ok"]
    text = report.markdown(report.group_rows(records), "t")
    section = text.split("## How each entry differs from the study's run")[1].split("\n## ")[0]
    mf = next(line for line in section.splitlines() if line.startswith("- fashion_mnist / mf: "))
    assert "schedule per-batch (study greedy)" in mf and "lr 0.001 (study 0.0003873)" in mf
    assert "hidden" not in mf                  # the fixture runs the study's 2x1000


def test_speed_breakdown_parts_add_up_and_name_the_extra_pass():
    torch.manual_seed(0)
    x, y = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    net = algorithms.build("ff", input_shape=(1, 28, 28), num_classes=10, hidden=(128, 128))
    parts = speed.step_breakdown(net, x, y, steps=3, warmup=1)
    assert parts.extra_pass > 0 and parts.optimizer > 0 and parts.backward > 0 and parts.forward > 0
    assert sum(parts.parts.values()) == pytest.approx(parts.step, rel=1e-6)
    # FLOPs: forward on 2B (positives and negatives) + B (neutral pass), weight gradients on 2B
    macs = 784 * 128 + 128 * 128
    assert parts.flops == pytest.approx(2 * 64 * (2 * macs + macs + 2 * macs) + 2 * 64 * 256 * 10 * 2, rel=0.01)
    assert "head_logits" not in vars(net) and "step" not in vars(net.optimizer)     # patches undone
    bp = algorithms.build("bp-mlp", input_shape=(1, 28, 28), num_classes=10, hidden=(128, 128))
    assert speed.step_breakdown(bp, x, y, steps=2, warmup=1).extra_pass == 0
    dfa = algorithms.build("cafo-dfa", input_shape=(1, 28, 28), num_classes=10, channels=(4, 8, 8))
    dfa_parts = speed.step_breakdown(dfa, x, y, steps=2, warmup=1)       # torch.autograd.backward, not .backward()
    assert dfa_parts.backward > 0 and torch.autograd.backward.__name__ == "backward"
    assert dfa_parts.ops.mostly_convolutions and not parts.ops.mostly_convolutions    # which peak each is set against
    assert speed.matmul_peak(torch.device("cpu"), n=256, repeats=2) > 1e6
    assert speed.conv_peak(torch.device("cpu"), batch=2, repeats=2) > 1e6


def test_the_speed_command_times_the_benchmarks_specs_and_the_distance_to_the_limit(tmp_path, capsys, monkeypatch):
    small = presets.Preset("small", "test", ("fashion_mnist",), {"fashion_mnist": (
        presets.Pair("mf", {"hidden": (64, 64)}, "bp-mlp", {"hidden": (64, 64)}, variant="per-batch"),
        presets.Pair("mf", {"hidden": (64, 64), "schedule": "greedy"}, "bp-mlp", {"hidden": (64, 64)}, batch_size=100))},
        epochs=5, patience=2)
    monkeypatch.setitem(bench.PRESETS, "small", small)
    full_size = speed.synthetic
    monkeypatch.setattr(speed.cases, "synthetic", lambda name, device, n, seed=0: full_size(name, device, 512))
    cases = speed.case_specs((("small", "fashion_mnist", "bp-mlp@mf+per-batch"), ("small", "fashion_mnist", "mf+per-batch"),
                              ("small", "fashion_mnist", "mf")), epochs=2)
    assert cases[1][1] == cases[0][0].key and cases[0][1] is None     # the rival knows its twin's run
    assert cases[2][0] == spec_of(small, "fashion_mnist", "mf", protocol="matched", epochs=2)   # the benchmark's spec
    rows = speed.speed(cases, out=tmp_path, root=tmp_path / "no-data")
    out = capsys.readouterr().out
    assert "float32 peaks: matmul" in out and "conv" in out.splitlines()[0] and "% of the matmul peak" in out
    assert [r["peak_kind"] for r in rows] == ["matmul"] * 3
    assert "mf+per-batch 2x64 / bp-mlp@mf+per-batch 2x64:\n    step (median of interleaved blocks) x" in out
    assert "FLOP floor x" in out and "whole training time per epoch (the two runs timed one after the other) x" in out
    floor, epoch = rows[1]["floor"], rows[1]["epoch_floor"]
    assert floor["flops_ratio"] == pytest.approx(rows[1]["step"]["ops"]["flops"] / rows[0]["step"]["ops"]["flops"])
    assert rows[1]["step"]["ops"]["flops"] == rows[1]["step"]["flops"]      # one count, two ways
    assert floor["measured"] == rows[1]["step_ratio_to_twin"] == rows[1]["interleaved"]["ratio"]
    assert rows[1]["interleaved"]["lo"] <= floor["measured"] <= rows[1]["interleaved"]["hi"]
    assert floor["flops_ratio"] < floor["with_rest"] < 1 and floor["verdict"] in out
    assert epoch["measured"] == rows[1]["epoch_ratio_to_twin"] and 0 < epoch["flops_ratio"] < 1.2 and epoch["verdict"] in out
    assert epoch["flops_ratio"] == pytest.approx(rows[1]["flops_per_epoch"] / rows[0]["flops_per_epoch"])
    # MF's backward has no input-gradient GEMMs: its part FLOPs say so
    parts = [r["step"]["part_flops"] for r in rows[:2]]
    assert parts[1]["backward"] < parts[0]["backward"] and sum(parts[0].values()) == rows[0]["step"]["flops"]
    assert [r["case"] for r in rows] == ["bp-mlp@mf+per-batch 2x64", "mf+per-batch 2x64", "mf 2x64"]
    assert [r["batch_size"] for r in rows] == [128, 128, 100] and rows[2]["spec"]["config"]["schedule"] == "greedy"
    greedy_line = next(line for line in out.splitlines() if line.strip().startswith("mf 2x64"))
    assert rows[2]["prep_s"] > 0 and "stage preparation in all" in greedy_line
    assert rows[0]["study_s_per_epoch_a100"] is None          # 2x64 is not the study's 2x1000: another amount of work
    paper_twin = speed.case_specs()[0][0]                       # the paper preset's bp-mlp@mf+per-batch, 2x1000
    assert speed.cases.study_s_per_epoch(paper_twin) == pytest.approx(44.1 / 17.7)
    assert 0 < rows[0]["fraction_of_peak"] and rows[0]["optimizer"] in (("fused",), ("foreach",))
    assert json.loads((tmp_path / "speed.json").read_text())[1]["case"] == "mf+per-batch 2x64"
    assert json.loads((tmp_path / "speed.json").read_text()) == [r.as_json() for r in rows]   # typed rows, the file's form
    with pytest.raises(TypeError):
        rows[1]["floor"]["measured"] = 0.0                                                 # frozen all the way down


def test_every_speed_case_is_a_run_of_the_paper_preset():
    cases = speed.case_specs()
    assert [str(s.entry) for s, _ in cases] == [entry for _, _, entry in speed.SPEED_CASES]
    twins = {s.key for s, _ in cases}
    assert all(twin in twins for s, twin in cases if twin)           # every rival's twin is timed too
    assert next(s for s, _ in cases if str(s.entry) == "ff").batch_size == study.STUDY_FF_BATCH


def test_a_metric_appears_in_the_csv_and_the_markdown_alike():
    rows = report.group_rows([r for r in fixture_records() if r["status"] == "ok"])
    csv_header = report.write_csv(rows).splitlines()[0].split(",")
    table_header = next(line for line in report.markdown(rows, "t").splitlines() if line.startswith("| entry |"))
    for m in report.METRICS:
        assert f"{m.name}_median" in csv_header and f"| {m.header} |" in table_header, m.name
    row = next(line for line in report.markdown(rows, "t").splitlines() if line.startswith("| mf |"))
    assert row.count("|") == table_header.count("|")


def test_the_studys_claims_are_read_against_the_paired_seeds():
    rows = report.group_rows([r for r in fixture_records() if r["status"] == "ok"])
    found = {c["metric"]: c for c in claims.judge(rows)}
    assert set(found) == {"test_acc", "train_time_s", "energy_gpu_wh", "train_memory_mib"}
    # the fixture: mf 1 pp less accurate, twice as fast, less energy and memory, on all 3 seeds;
    # its runs are not the study's configuration, and 3 seeds decide nothing
    assert found["test_acc"]["says"] == "rival better" and found["test_acc"]["place"] == "Section 4.3"
    assert found["test_acc"]["verdict"] == ("exploratory (3 of 5 seeds; the interval says contradicted, and only "
                                            "the 5-seed floor holds the decision back)")
    assert found["train_time_s"]["says"] == "twin better" and "+18.20% (x1.18)" in claims.markdown(list(found.values()))
    assert found["train_memory_mib"]["outcome"] == "not measured"          # no tensor parts in the fixture
    assert not any(c["decisive"] for c in found.values())
    md = report.markdown(rows, "t")
    assert "### The study's claims, in its words, tested here" in md
    # said once in the summary and once above the claims table, never in a row
    assert md.count("not the study's configuration") == 2
    assert not any("not the study's configuration" in line for line in md.splitlines() if line.startswith("|"))


def test_the_floor_scales_the_matmuls_carries_the_rest_and_names_what_keeps_a_rival_above_it():
    def run(matmul_s, adamw_s, outside_s, flops):         # one step: seconds by op, and its FLOPs
        seconds = matmul_s + adamw_s + outside_s
        return speed.OpProfile(seconds, flops,
                               {"aten::_fused_adamw_": adamw_s / seconds, speed.OUTSIDE: outside_s / seconds},
                               {"aten::mm": matmul_s / seconds})
    twin = run(0.030, 0.008, 0.002, 300)                   # 300 FLOPs in 30 ms of matmuls, 10 ms of the rest
    at_it = speed.Floor.of(run(0.020, 0.008, 0.002, 200), twin)
    assert at_it.flops_ratio == pytest.approx(2 / 3) and at_it.with_rest == pytest.approx(0.75)
    assert at_it.measured == pytest.approx(0.75) and at_it.distance == pytest.approx(0.125)
    assert at_it.verdict().startswith("at its floor with the rest (x0.75): the twin spends 25% of its time outside")
    assert "aten::_fused_adamw_ 20%" in at_it.verdict()
    slow_optimizer = speed.Floor.of(run(0.020, 0.013, 0.002, 200), twin)
    assert slow_optimizer.excess_s["aten::_fused_adamw_"] == pytest.approx(0.005)
    assert "aten::_fused_adamw_ takes 5.0 ms more than in the twin" in slow_optimizer.verdict()
    slow_matmuls = speed.Floor.of(run(0.025, 0.008, 0.002, 200), twin)
    assert "the matmuls (aten::mm 71% of its time) take 5.0 ms more than their FLOPs at the twin's matmul rate" \
        in slow_matmuls.verdict()
    # a ratio timed apart (interleaved blocks) replaces the profiled one; each op keeps its share
    assert speed.Floor.of(run(0.020, 0.008, 0.002, 200), twin, measured=0.68).verdict() == "at its FLOP floor"
    assert "below its FLOP floor" in speed.Floor.of(run(0.060, 0.016, 0.004, 600), twin, measured=1.8).verdict()
    epoch = speed.Floor.of(run(20.0, 8.0, 30.0, 200), run(30.0, 8.0, 2.0, 300))
    assert "outside any op takes 28.0 s more than in the twin" in epoch.verdict()
    # a rival without the twin's rest (CaFo's predictor against BP-CNN's step): between the two floors, named
    tiny = speed.Floor.of(run(0.0001, 0.0001, 0.0003, 1), twin)
    assert tiny.flops_ratio < tiny.measured < tiny.with_rest
    assert tiny.verdict() == ("below its floor with the rest (x0.25), above its FLOP floor: outside any op takes "
                              "0.3 ms more than x0.0033 the twin's time in it")
    assert tiny.text().startswith("x0.013 (FLOP floor x0.0033, +275%: below")


def test_op_profiles_split_the_matmuls_from_the_rest_on_cpu_and_on_cuda():
    from types import SimpleNamespace as Row
    cpu = [Row(key="aten::addmm", self_cpu_time_total=6000), Row(key="aten::convolution_backward", self_cpu_time_total=2000),
           Row(key="aten::_fused_adamw_", self_cpu_time_total=1000), Row(key="aten::relu", self_cpu_time_total=10)]
    matmuls, ops = speed.ops.self_seconds(cpu, "cpu")
    assert matmuls == pytest.approx({"aten::addmm": 0.006, "aten::convolution_backward": 0.002})
    assert ops == pytest.approx({"aten::_fused_adamw_": 0.001, "aten::relu": 1e-5})
    # on a GPU the kernels are rows of their own, timed on the device; the aten ops have no device time
    cuda = [Row(key="aten::mm", self_cpu_time_total=50, self_device_time_total=0),
            Row(key="sm90_xmma_gemm_f32f32_tf32f32", self_cpu_time_total=0, self_device_time_total=700),
            Row(key="cudnn::detail::dgrad_engine", self_cpu_time_total=0, self_device_time_total=100),
            Row(key="void at::native::vectorized_elementwise_kernel", self_cpu_time_total=0, self_device_time_total=100)]
    matmuls, ops = speed.ops.self_seconds(cuda, "cuda")
    assert matmuls == pytest.approx({"sm90_xmma_gemm_f32f32_tf32f32": 7e-4, "cudnn::detail::dgrad_engine": 1e-4})
    assert ops == pytest.approx({"void at::native::vectorized_elementwise_kernel": 1e-4})
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    matmul_run, sum_run = (lambda: (a @ b, 2)[1]), (lambda: (a.exp(), 1)[1])
    one, two = speed.ops.profile_interleaved([matmul_run, sum_run], torch.device("cpu"), rounds=3)
    assert one.flops == 2 * 256 ** 3 // 2 and two.flops == 0 and one.matmul_share > 0 and two.matmul_share == 0   # the share itself varies with load
    assert sum(one.op_share.values()) == pytest.approx(1 - one.matmul_share) and "aten::exp" in two.op_share
    assert one.top(1, matmuls=True)[0][0] == "aten::mm"
    assert speed.profile_ops(matmul_run, torch.device("cpu")).flops == one.flops
    # a CNN's step is set against a convolution's peak: its matmul time mostly in convolutions (CPU ops, cuDNN kernels)
    conv = speed.OpProfile(1.0, 1, {}, {"aten::mkldnn_convolution": 0.4, "aten::mm": 0.2})
    cudnn = speed.OpProfile(1.0, 1, {}, {"sm80_xmma_fprop_implicit_gemm": 0.2, "sm90_xmma_gemm_f32f32": 0.4})
    assert conv.mostly_convolutions and not cudnn.mostly_convolutions




def test_a_pairs_members_run_back_to_back_rival_first_at_even_seeds_twin_first_at_odd():
    from fwdlib.bench.plan import linked, pairs_at_seeds
    specs = preset_specs(presets.PRESETS["paper-fmnist"], ["fashion_mnist"])
    runs = plan(specs, 4)
    for seed in range(4):
        order = [r for r in runs if r.spec.seed == seed]
        for group in linked(order):           # a twin with every rival it serves (mf, mf+per-batch)
            positions = [order.index(r) for r in group]
            assert positions == list(range(positions[0], positions[0] + len(group))), seed   # back to back
            twins = [r.spec.entry.is_twin for r in group]
            assert twins == sorted(twins, reverse=seed % 2 == 1), (seed, twins)
            assert len(set(twins)) == 2
    # odd seeds mirror even ones, so a twin shared by two rivals sits as far from each both ways
    at = {s: {frozenset(r.entries for r in g): [r.entries for r in g] for seed, g in pairs_at_seeds(runs) if seed == s}
          for s in (0, 1)}
    assert at[0].keys() == at[1].keys() and all(at[0][k] == at[1][k][::-1] for k in at[0])
    # the pairs' order still rotates from seed to seed
    firsts = {str(next(r for r in runs if r.spec.seed == s).entries[0].rival_entry) for s in range(4)}
    assert len(firsts) > 1


def test_foreign_load_is_what_the_cpus_did_beyond_the_process_and_contaminates_above_the_limit():
    stat = "cpu  9 9 9 9\ncpu0 100 0 50 900 10 0 0 0 0 0\ncpu1 300 0 0 700 0 0 0 0 0 0\ncpu2 1 1 1 1\n"
    hz = os.sysconf("SC_CLK_TCK")
    assert process.busy_cpu_seconds({0, 1}, stat) == 450 / hz       # idle and iowait are not busy
    assert process.busy_cpu_seconds({0}, stat) == 150 / hz           # only the CPUs the process may use
    assert process.contamination({"foreign_load": 0.2, "foreign_cpu_s": 2.0, "cpus": 2}) is None
    why = process.contamination({"foreign_load": 1.1, "foreign_cpu_s": 2.2, "cpus": 2})
    # a window of a fifth of a second: a few 10 ms ticks make its load, so it is not judged
    assert process.contamination({"foreign_load": 0.4, "foreign_cpu_s": 0.08, "cpus": 2}) is None
    assert why.startswith("other work kept 1.10 of 2 CPUs busy during the run")
    assert process.contamination({"foreign_load": None, "cpus": 2}) is None
    assert process.contamination({}) is None                        # a record from before windows


def test_contaminated_runs_leave_time_and_energy_but_not_accuracy_and_are_counted():
    records = [r for r in fixture_records() if r["status"] == "ok"]
    spoiled = next(r for r in records if r["entries"] == ["mf"] and r["spec"]["seed"] == 2)
    spoiled["foreign_load"], spoiled["foreign_cpu_s"], spoiled["cpus"] = 1.0, 11.0, 2
    rows = report.group_rows(records)
    mf = next(r for r in rows if r["entry"] == "mf")
    assert mf["paired"]["test_acc"]["n"] == 3 and mf["paired"]["train_time_s"]["n"] == 2
    assert mf["paired"]["energy_gpu_wh"]["n"] == 2 and mf["paired"]["train_memory_mib"]["n"] == 3
    assert mf["train_time_s"]["n"] == 2 and mf["test_acc"]["n"] == 3
    md = report.markdown(rows, "t", records)
    assert "1 contaminated by other work on the machine (foreign load above 0.25 cores for at least 0.5 CPU-seconds)" in md
    assert "--rerun-contaminated" in md
    short = next(r for r in records if r["entries"] == ["mf"] and r["spec"]["seed"] == 1)
    short["foreign_load"], short["foreign_cpu_s"], short["cpus"] = 0.9, 0.1, 2      # a fifth of a second
    md = report.markdown(report.group_rows(records), "t", records)
    assert "1 contaminated" in md and "1 run(s) above that load were too short to judge" in md


def test_the_report_opens_with_a_summary_of_at_most_40_lines_and_draws_a_forest_per_metric(tmp_path):
    paths = report.write_report(fixture_records(), tmp_path, title="fixture")
    text = summary.summary_of(tmp_path)
    lines = text.rstrip().splitlines()
    assert len(lines) <= summary.MAX_LINES and "|" not in text            # sentences, no table
    line = next(l for l in lines if l.startswith("- **mf vs bp-mlp@mf**"))
    assert "Accuracy -1.00 pp: exploratory (3 of 5 seeds" in line and "Training time x0.5" in line
    assert "This run is not the study's configuration" in text and "7 runs, 6 finished, 1 failed" in text
    for metric in ("test_acc", "train_time_s", "energy_gpu_wh", "train_memory_mib"):
        path = tmp_path / f"paired_{metric}.png"
        assert path in paths and path.stat().st_size > 5000
    # a report of many pairs keeps its summary within the limit and says what it left out
    rows = report.group_rows(fixture_records())
    many = [dict(r, entry=f"{r['entry']}{i}") for i in range(60) for r in rows if r.get("paired")]
    long = summary.summary(many, fixture_records(), [], "many")
    assert len(long) <= summary.MAX_LINES and any("more pairs: see the paired table below" in l for l in long)


def test_a_busy_loop_beside_a_run_marks_it_contaminated():
    """One real run of the quick preset's MF twin with a busy loop on every CPU beside it: the run's
    record carries its CPU time and a foreign load above the limit, and says it is contaminated."""
    from fwdlib.bench.plan import PlannedRun
    # 50 epochs of the MF pair's twin, matched (no early stop): seconds, so ticks of 10 ms do not matter
    spec = spec_of(presets.PRESETS["quick"], "fashion_mnist_sample", "bp-mlp@mf", epochs=50, protocol="matched")
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        record = runner.run_one(PlannedRun(spec, (spec.entry,)), co2=False)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    assert record["status"] == "ok" and record["process_cpu_s"] > 0 and record["foreign_cpu_s"] > 0.5
    assert record["foreign_load"] > process.FOREIGN_LOAD_LIMIT, record["foreign_load"]
    assert process.contamination(record).startswith("other work kept")


def test_a_notebooks_run_folder_is_fresh_unless_it_resumes(tmp_path):
    from fwdlib.bench import run_folder

    first = run_folder(tmp_path / "bench-notebook")
    assert first == tmp_path / "bench-notebook" and not first.exists()
    first.mkdir()
    (first / "results.jsonl").write_text("{}\n")
    assert run_folder(tmp_path / "bench-notebook") == tmp_path / "bench-notebook-2"     # the earlier run kept
    (tmp_path / "bench-notebook-2").mkdir()
    assert run_folder(tmp_path / "bench-notebook") == tmp_path / "bench-notebook-3"
    assert run_folder(tmp_path / "bench-notebook", resume=True) == first                 # said, not silent
    assert (first / "results.jsonl").read_text() == "{}\n"


def test_a_time_that_other_work_spoiled_is_said_left_out_not_unmeasured():
    """Every run's time contaminated: the tables, the paired verdict and the summary say the runs
    were measured and left out (and how to run them again), not that nothing was measured."""
    from conftest import record
    spoiled = {"foreign_load": 1.5, "foreign_cpu_s": 3.0, "cpus": 2}
    records = [record(f"{entry}{seed}", seed=seed, entries=[entry], **spoiled)
               for seed in range(3) for entry in ("mf", "bp-mlp@mf")]
    rows = report.group_rows(records)
    mf = next(r for r in rows if r["entry"] == "mf")
    assert mf["train_time_s"].left_out == 3 and mf["test_acc"].left_out == 0
    text = report.markdown(rows, "t", records)
    assert "left out: other work spoiled all 3 runs (--rerun-contaminated)" in text
    assert mf["paired"]["train_time_s"].text.startswith("left out: other work on the machine spoiled 3 paired seed(s)")
    assert "Training time left out: other work on the machine spoiled 3 paired seed(s)" in summary.pair_line(mf, rows)
    assert mf["paired"]["test_acc"].estimate == 0 and mf["paired"]["train_memory_mib"].text == "not measured"
