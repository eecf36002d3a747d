"""Records from anywhere (a hand-edited results.jsonl, a class's database, --import) are checked
field by field before the report computes with them (fwdlib/runs/validate.py).

The property: take a complete pair of records, put any hostile value (NaN, 10**400, a string, a
list, nested junk, null) at any field; either the check names a problem, or the report, its CSV and
its figures are built from it without an error. Then the cases the third fault round found, each
named by the field the check must name, and a study in SQLite holding a bad record: --status and
--report-only still answer, and --remove-unit takes the record out.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import record
from sqlalchemy import update

from fwdlib.bench import claims, figures, pool, workers
from fwdlib.bench.cli import main
from fwdlib.bench.plan import plan, preset_specs
from fwdlib.bench.pool import Pool
from fwdlib.bench.units import plan_record, units_of
from fwdlib.bench.presets import PRESETS
from fwdlib.bench.results import ResultsLog
from fwdlib.runs.record import Record, RecordError
from fwdlib.runs.validate import NUMBERS, TEXTS, record_problem
from fwdlib.bench.report import group_rows, markdown, write_csv


def complete(entry: str, algorithm: str, seed: int = 0) -> dict:
    """A record with every field a run writes, in the kit's types."""
    history = [{"stage": "all", "epoch": e, "train_loss": 1.0 / e, "val_acc": 0.5 + 0.1 * e, "time_s": 0.2}
               for e in (1, 2)]
    done = record(f"{entry}{seed}", seed=seed, entries=[entry], history=history, best_val_acc=0.7,
                  machine={"host": "lab1", "cpu": "cpu", "gpu": None, "torch": "2"}, train_memory_bytes=2**20,
                  train_memory_parts={"saved_for_backward": 2**18, "parameters": 2**19, "gradients": 2**19}, stopped_early={"all": True},
                  cpu_peak_rss_bytes=2**28, energy_sources=["CPU: estimated"], notes=[], versions={"torch": "2"},
                  foreign_load=0.1, cpus=2, cpu_rss_growth_bytes=-4096, pool={"study": "s", "unit": "u", "worker": "w"},
                  schema=2, configuration={"study": "the study did not run on fashion_mnist_sample", "revision": None},
                  ).as_dict()
    assert done["spec"]["algorithm"] == algorithm
    done.update({name: 1.0 for name in NUMBERS if name not in done})       # every field the report may read
    done.update({name: "x" for name in TEXTS if name not in done})
    return done


def pair() -> list[dict]:
    return [complete("mf", "mf"), complete("bp-mlp@mf", "bp-mlp")]


def paths(value, prefix=()):
    """Every place in a record: keys of mappings, indices of lists, at every depth."""
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from paths(item, (*prefix, key))


PLACES = [p for p in paths(pair()[0]) if p]
TINY = st.sampled_from([5e-324, 1e-300, -0.0, 1e-10])     # subnormal and sub-measurement costs
JUNK = st.recursive(st.none() | st.booleans() | st.integers(-10**400, 10**400) | st.floats() | TINY
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                    max_leaves=8)


def put(target, place, value):
    for key in place[:-1]:
        target = target[key]
    target[place[-1]] = value


def report_of(records: list[dict]) -> None:
    """The report's tables, CSV and a figure, built; no cell of them a NaN or an infinity."""
    rows = group_rows(records)
    cells = re.split(r"[\s|,]+", markdown(rows, "t", records) + write_csv(rows))
    assert not {c.lower() for c in cells} & {"nan", "inf", "-inf", "infinity"}
    figures.learning_curves(records)


def parse_record(line: bytes):
    """(record, None), or (None, the field's problem)."""
    try:
        return Record.from_json(line), None
    except RecordError as err:
        return None, err.problem


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(PLACES), value=JUNK, which=st.integers(0, 1))
def test_any_hostile_value_is_named_by_the_check_or_harmless_to_the_report(place, value, which):
    records = pair()
    put(records[which], place, value)
    line = json.dumps(records[which]).encode()              # NaN and Infinity as JSON writes them
    parsed, problem = parse_record(line)
    if problem is None:
        report_of([parsed if i == which else r for i, r in enumerate(records)])
    else:
        assert isinstance(problem, str) and problem


def test_the_complete_pair_passes_and_reports():
    assert [record_problem(r) for r in pair()] == [None, None]
    report_of(pair())


@pytest.mark.parametrize("field,value,named", [
    ("history", "epoch 1: 0.9", "history is not a list"),
    ("history", [{"stage": "all", "val_acc": {"deep": [1]}}], "history[0].val_acc is not a number"),
    ("train_memory_bytes", 10**400, "train_memory_bytes is too large"),
    ("train_time_s", math.nan, "train_time_s is not finite"),
    ("energy_measured_j", math.inf, "energy_measured_j is not finite"),
    ("test_acc", 1.5, "test_acc 1.5 is not between 0 and 1"),
    ("epochs", -1, "epochs is negative"),
    ("machine", "x", "machine is not a mapping"),
    ("machine", {"host": ["a", "b"]}, "machine.host is not text"),
    ("pool", "x", "pool is not a mapping"),
    ("entries", "mf", "entries is not a list of texts"),
    ("spec", {"dataset": "d", "algorithm": "mf", "device": "cpu", "config": {}, "seed": 0}, "spec.protocol is missing"),
    ("train_time_s", 5e-324, "train_time_s 4.94066e-324 is below 1e-09: no measurement"),
    ("extra", json.loads("[" * 900 + "]" * 900), "extra is nested deeper than 32 levels"),
    ("pool", {"worker": "a\x00b"}, "pool.worker holds a NUL or a lone surrogate"),
    ("pool", {"worker": "\ud800"}, "pool.worker holds a NUL or a lone surrogate"),
    ("pool", {"worker": "alice\n  unit   7 done"}, "pool.worker is not one printable line of at most 300"),
    ("pool", {"worker": "x" * 301}, "pool.worker is not one printable line of at most 300"),
    ("configuration", 5, "configuration is not {study: text or null, revision: text or null}"),
    ("configuration", {}, "configuration is not {study: text or null"),
    ("configuration", {"study": 1, "revision": None}, "configuration is not {study"),
    ("schema", "two", "schema is not a version number"),
    ("schema", 0, "schema is not a version number"),
    ("extra", {"z\x00z": 1}, "has a key 'z\\x00z' that is not text, or holds a NUL"),
])
def test_each_case_of_the_fault_round_is_named_by_its_field(field, value, named):
    bad = complete("mf", "mf")
    bad[field] = value
    assert named in parse_record(json.dumps(bad).encode())[1]


def test_a_diverged_runs_nan_loss_in_its_history_is_kept():
    diverged = complete("mf", "mf")
    diverged["history"][1]["train_loss"] = math.nan
    record, problem = parse_record(json.dumps(diverged).encode())
    assert problem is None and math.isnan(record.history[1]["train_loss"])
    assert json.dumps(record.as_dict(), sort_keys=True) == json.dumps(diverged, sort_keys=True)


def test_a_study_holding_a_bad_record_still_reports_and_remove_unit_takes_it_out(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    quick = PRESETS["quick"]
    specs = preset_specs(quick, quick.datasets, ["mf"], protocol="converge", device="cpu", cuda_graphs=True)
    db = Pool(url, "lab", heartbeat_s=1, grace_s=60)
    db.join(plan_record("quick", "converge", specs), units_of(plan(specs, 2)))
    bad = pair()
    bad[0]["train_memory_bytes"] = 10**400
    for _ in range(2):
        unit, _, _ = db.claim("w")
        db.finish(unit, [Record.from_mapping(r) for r in pair()], "w")
    db._call(lambda c: c.execute(update(pool.UNITS).where(pool.UNITS.c.unit == unit).values(records=json.dumps(bad))))
    study = ["--storage", url, "--study", "lab"]
    assert main([*study, "--status"]) == 0
    assert main([*study, "--report-only", "--out", str(tmp_path / "r")]) == 0
    said = capsys.readouterr().out
    assert "study lab unit 1 record 1: train_memory_bytes is too large; skipped" in said
    assert main([*study, "--remove-unit", "1"]) == 0
    assert "removed the records of unit 1" in capsys.readouterr().out
    units = Pool(url, "lab").units()
    assert [u["state"] for u in units] == ["done", "planned"] and units[1]["records"] is None
    assert len(Pool(url, "lab").records()) == 2 and capsys.readouterr().out == ""
    assert main([*study, "--remove-unit", "7"]) == 2
    assert "study lab has no unit 7; `fwdlib bench status` lists" in capsys.readouterr().err
    assert workers.status(Pool(url, "lab")).count("\n") == 3


def test_a_run_stored_in_two_units_counts_once_and_status_keeps_one_line_per_unit(tmp_path, capsys):
    """Rows edited by hand: one unit's records copied into another, a label with a newline."""
    quick = PRESETS["quick"]
    specs = preset_specs(quick, quick.datasets, ["mf"], protocol="converge", device="cpu", cuda_graphs=True)
    db = Pool(f"sqlite:///{tmp_path}/s.db", "lab", heartbeat_s=1, grace_s=60)
    db.join(plan_record("quick", "converge", specs), units_of(plan(specs, 2)))
    copy = [dict(r, key=r["key"] + "-copy") for r in pair()]      # the same runs under keys edited by hand
    for records in (pair(), copy):
        unit, _, _ = db.claim("w")
        db.finish(unit, [Record.from_mapping(r) for r in records], "w")
    db._call(lambda c: c.execute(update(pool.UNITS).values(label="x\n  unit   7 done forged")))
    assert len(db.records()) == 2 and "of another unit; skipped" in capsys.readouterr().out
    db._call(lambda c: c.execute(update(pool.UNITS).values(position=0)))        # an edit repeats a position
    assert main(["--storage", f"sqlite:///{tmp_path}/s.db", "--study", "lab", "--remove-unit", "0"]) == 0
    assert sorted(u["records"] is None for u in db.units()) == [False, True]    # that one unit alone
    assert workers.status(db).count("\n") == 3 and "x\\n  unit   7 done forged" in workers.status(db)


@settings(max_examples=100, deadline=None)
@given(dropped=st.sets(st.sampled_from(sorted(set(complete("mf", "mf")) - {"key", "spec", "entries", "status",
                                                                          "test_acc", "epochs", "train_time_s",
                                                                          "energy_measured_j", "energy_estimated_j",
                                                                          "history"}))),
       extra=st.dictionaries(st.from_regex(r"zz_[a-z]{1,8}", fullmatch=True),
                             st.one_of(st.integers(-10, 10), st.lists(st.booleans(), max_size=3),
                                       # text a database stores (the check refuses a NUL or a lone surrogate)
                                       st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                               max_size=5)),
                             max_size=3))
def test_a_record_reads_back_exactly_the_line_it_came_from(dropped, extra):
    """Any valid line, with fields an older version did not write left out and fields of a newer
    version added: the typed record holds the same fields, no more, and writes the same line back."""
    line = {k: v for k, v in complete("mf", "mf").items() if k not in dropped} | extra
    record = Record.from_json(json.dumps(line))
    assert json.loads(record.to_json()) == line
    assert set(record) == set(line) and all(name not in record for name in dropped)
    assert set(record.extra) - {"payload"} == set(extra) and record.test_acc == line["test_acc"]


def test_a_record_is_frozen_all_the_way_down():
    record = Record.from_mapping(complete("mf", "mf"))
    with pytest.raises(TypeError):
        record["test_acc"] = 1.0
    with pytest.raises(TypeError):
        record.spec["config"]["hidden"] = [1]
    with pytest.raises(TypeError):
        record.history[0]["val_acc"] = 1.0
    with pytest.raises(AttributeError):
        record.history.append({})
    assert record.run_spec().algorithm == "mf" and record.replace(test_acc=0.25).test_acc == 0.25


def test_a_wrong_field_is_named_by_from_json():
    line = complete("mf", "mf") | {"epochs": "three"}
    with pytest.raises(ValueError, match="not a usable record: epochs is not a number"):
        Record.from_json(json.dumps(line))
    with pytest.raises(ValueError, match="not valid JSON"):
        Record.from_json('{"key": ')
    with pytest.raises(ValueError, match="lone surrogate"):
        Record.from_json('{"key": "\ud800"}')
    assert Record.from_json(memoryview(json.dumps(complete("mf", "mf")).encode())).key == "mf0"


LANDED = Path(__file__).parent / "fixtures" / "landed-0.2.0"


def test_a_results_file_of_the_landed_version_reports_the_same_verdicts(monkeypatch):
    """tests/fixtures/landed-0.2.0: `bench --preset quick --seeds 5 --epochs 2 --algorithms mf,bp-mlp,cafo-rand`
    as commit 1a36c9e (schema 1) wrote it, and the verdicts and claims that commit's report gave it
    (verdicts_of.py there, run with that commit on PYTHONPATH)."""
    done = subprocess.run([sys.executable, str(LANDED / "verdicts_of.py"), str(LANDED / "results.jsonl")],
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == json.loads((LANDED / "verdicts.json").read_text())
    assert "fashion_mnist_sample mf train_memory_mib" in json.loads(done.stdout)["verdicts"]


def test_a_record_of_this_version_carries_its_configuration_so_no_report_plans_the_presets_again(monkeypatch):
    from fwdlib.bench import plan as plans
    records = ResultsLog(LANDED / "results.jsonl", write=False).latest()
    assert {r.schema for r in records} == {1}
    stamped = [r.replace(schema=2, configuration=plans.configuration(r)) for r in records]
    monkeypatch.setattr(plans, "study_configuration", lambda *a: pytest.fail("a report planned the presets again"))
    rows = group_rows(stamped)
    assert all(row["configuration"]["study"] == "the study did not run on fashion_mnist_sample" for row in rows)
    claims.judge(rows)


def test_every_landed_run_keeps_its_key_and_the_kernels_are_a_field_of_the_spec(sample):
    """A run's key is the hash of its spec's record: a field added since (the optimizers' kernels)
    is stored only where it is not the default, so every landed run resumes as the same run."""
    from fwdlib.algorithms.base import implementation_of
    from fwdlib.runs.build import build_model
    records = ResultsLog(LANDED / "results.jsonl", write=False).latest()
    assert all(r.run_spec().key == r.key for r in records) and len(records) == 25
    fused = records[0].run_spec()
    foreach = fused.replace(kernels="foreach")
    assert foreach.key != fused.key and foreach.record()["kernels"] == "foreach" and "kernels" not in fused.record()
    assert type(foreach).from_record(foreach.record(), foreach.entry) == foreach
    assert {implementation_of(o) for o in build_model(foreach, sample).optimizers()} == {"foreach"}
    assert {implementation_of(o) for o in build_model(fused, sample).optimizers()} == {"fused"}
    bad = complete("mf", "mf")
    bad["spec"]["kernels"] = "turbo"
    assert parse_record(json.dumps(bad).encode())[1] == "spec.kernels 'turbo' is not one of fused, foreach"
