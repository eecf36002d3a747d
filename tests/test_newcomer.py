"""A fifth algorithm is its own module and one registry line: nothing else of the kit is edited, and
it is built, benchmarked against its twin, tuned, profiled, given its GPU graph case and drawn."""
import subprocess
import sys
import textwrap

TOY = textwrap.dedent('''
    """A toy forward-only algorithm: each layer learns from its own read-out, its input detached."""
    import math

    import torch.nn.functional as F
    from torch import nn

    from fwdlib.algorithms.base import Algorithm, Param, make_optimizer, mlp_layers


    class Toy(Algorithm):
        name = "toy"
        twin = "bp-mlp"
        search_space = (Param("lr", 1e-4, 1e-2),)
        quick = {"hidden": (32, 32)}
        examples = {"": {"hidden": (16,)}}
        flow = {"title": "Toy: a read-out per layer", "layers": [("x", "input"), ("layer 1", "trained")],
                "losses": [("CE", (1,))], "detach": True}

        def __init__(self, input_shape, num_classes, *, hidden=(32, 32), lr=1e-3):
            super().__init__()
            self.hidden = mlp_layers(math.prod(input_shape), tuple(hidden))
            self.heads = nn.ModuleList(nn.Linear(w, num_classes) for w in hidden)
            self.optimizer = make_optimizer(self.parameters(), "adamw", lr, 0.0)

        def train_step(self, x, y, stage):
            a, loss = x.flatten(1), 0.0
            for layer, head in zip(self.hidden, self.heads):
                a = F.relu(layer(a.detach()))
                loss = loss + F.cross_entropy(head(a), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            return {"loss": loss.detach()}

        def logits(self, x):
            a = x.flatten(1)
            for layer in self.hidden:
                a = F.relu(layer(a))
            return self.heads[-1](a)
''')

SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    out = Path(sys.argv[1])
    sys.path.insert(0, str(out))
    from toy import Toy
    from fwdlib import algorithms
    algorithms.REGISTRY["toy"] = Toy                                  # the one registry line

    model = algorithms.build("toy", input_shape=(1, 28, 28), num_classes=10)
    print("built", type(model).__name__)

    from fwdlib import bench
    records = bench.run(bench.Benchmark.of("quick", algorithms="toy", seeds=1, epochs=1, out=out / "bench", device="cpu",
                                            verbose=False), co2=False, verbose=False)
    report = (out / "bench" / "report.md").read_text()
    print("benchmarked", sorted(e for r in records for e in r["entries"]), {r["status"] for r in records},
          "| toy |" in report, "toy: the study did not run toy" in report)

    from fwdlib.tune import main as tune
    print("tuned", tune(["--algorithm", "toy", "--trials", "1", "--epochs", "1", "--device", "cpu", "--no-figures",
                         "--storage", f"sqlite:///{out}/tune.db", "--out", str(out / "toy.json")]),
          json.loads((out / "toy.json").read_text())["params"])

    from fwdlib.speed import main as speed
    code = speed(["--preset", "quick", "--only", "toy", "--epochs", "1", "--device", "cpu",      # its twin follows
                  "--out", str(out / "speed")])
    print("profiled", code, [row["case"] for row in json.loads((out / "speed" / "speed.json").read_text())])

    from fwdlib.gpu_check import graph_cases
    from fwdlib.course.flows import flow_diagram
    print("graphed", graph_cases()["toy"], type(flow_diagram("toy")).__name__)
''')


def test_a_fifth_algorithm_needs_its_module_and_one_registry_line(tmp_path):
    (tmp_path / "toy.py").write_text(TOY)
    (tmp_path / "script.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(tmp_path / "script.py"), str(tmp_path)], capture_output=True,
                          text=True, timeout=600)
    said = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]
    assert "built Toy" in said
    assert "benchmarked ['bp-mlp@toy', 'toy'] {'ok'} True True" in said
    assert "tuned 0 {'lr':" in said
    assert "profiled 0 ['toy 2x32', 'bp-mlp@toy 2x32']" in said
    assert "graphed {'hidden': (16,)} Figure" in said


def test_a_newcomer_that_cannot_have_a_fair_twin_is_refused_with_the_reason(monkeypatch):
    """Its twin missing, not a BP twin, or without the newcomer's layers: the quick preset says which,
    in one line, rather than comparing it with a network of other layers."""
    import re

    import pytest

    from fwdlib import algorithms
    from fwdlib.bench.plan import entries_of
    from fwdlib.bench.presets import PRESETS
    quick = PRESETS["quick"]
    for twin, layers, why in (("nope", {"hidden": (8,)}, "its twin 'nope' is not registered"),
                              ("mf", {"hidden": (8,)}, "its twin 'mf' is not a backprop twin"),
                              ("bp-cnn", {"hidden": (8,)}, "its `quick` layers {'hidden': (8,)} lack channels"),
                              ("bp-mlp", {}, "its `quick` layers {} lack hidden")):
        toy = type("Toy", (algorithms.Algorithm,), {"name": "toy", "twin": twin, "quick": layers})
        monkeypatch.setitem(algorithms.REGISTRY, "toy", toy)
        with pytest.raises(ValueError, match=re.escape(f"the registered algorithm toy cannot run in the quick preset: {why}")):
            entries_of(quick, quick.datasets[0])
