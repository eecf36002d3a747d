"""A pooled study's units and the plan every worker of it must agree on.

A unit is one (pair, seed): a rival and its twin at one seed, run back to back on one machine (the
pooled benchmark's module pool.py says why). The plan names the preset, protocol, kit and torch
versions and every entry's settings; a worker whose plan differs is refused with the difference.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch

from ..meters.backends import package_version
from .plan import PlannedRun, pairs_at_seeds
from ..runs.record import Record, RecordError
from ..runs.spec import RunSpec


def neutral(spec: RunSpec) -> RunSpec:
    """The spec as the plan holds it: any machine runs it, on the device it has."""
    return spec.replace(device="any")


@dataclass(frozen=True)
class Unit:
    """The runs of one (pair, seed), in the order they train."""
    seed: int
    runs: tuple[PlannedRun, ...]

    @property
    def key(self) -> str:
        keys = sorted(neutral(r.spec).key for r in self.runs)
        return hashlib.sha256(" ".join(keys).encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        rivals = sorted({str(e.rival_entry) for r in self.runs for e in r.entries})
        return f"{self.runs[0].spec.dataset} {'/'.join(rivals)} seed {self.seed}"


def units_of(runs: list[PlannedRun]) -> list[Unit]:
    """A plan's runs grouped into units: at each seed, the runs linked by a rival they serve
    (`plan.pairs_at_seeds`), in the plan's counterbalanced order."""
    return [Unit(seed, tuple(group)) for seed, group in pairs_at_seeds(runs)]


def plan_record(preset: str, protocol: str, specs: list[RunSpec]) -> dict:
    """What every worker of a study must agree on: the preset, the kit and torch that run it, and
    every entry's settings (the seeds are not part of it: `--seeds` adds them)."""
    return {"preset": preset, "protocol": protocol, "fwdlib": package_version("fwdlib"),
            "torch": torch.__version__.split(".")[0],
            "runs": {f"{s.dataset} {s.entry}": neutral(s).replace(seed=0).settings() for s in specs}}


def plan_problem(stored: str) -> str | None:
    """Why a stored plan is not one `plan_record` wrote (an edited or damaged row), or None."""
    try:
        plan = json.loads(stored)
    except (ValueError, RecursionError):
        return "not JSON"
    if not isinstance(plan, dict):
        return "not a mapping"
    wrong = next((k for k in ("preset", "protocol", "fwdlib", "torch") if not isinstance(plan.get(k), str)), None)
    if wrong:
        return f"{wrong} is not text"
    runs = plan.get("runs")
    if not isinstance(runs, dict) or not all(isinstance(v, dict) for v in runs.values()):
        return "runs is not a mapping of each entry's settings"
    return None


def plan_difference(study: dict, mine: dict) -> str | None:
    """Why a worker with plan `mine` may not join a study planned as `study`, or None."""
    for field, what in (("preset", "preset"), ("protocol", "protocol"), ("fwdlib", "fwdlib version"),
                        ("torch", "torch major version")):
        if study[field] != mine[field]:
            return f"the study runs {what} {study[field]}, this worker {mine[field]}"
    theirs, ours = set(study["runs"]), set(mine["runs"])
    if theirs != ours:
        return ("the study runs other entries: " + "; ".join(
            part for part in (f"only the study has {', '.join(sorted(theirs - ours))}" if theirs - ours else "",
                              f"only this worker has {', '.join(sorted(ours - theirs))}" if ours - theirs else "")
            if part) + " (run with the study's --dataset and --algorithms)")
    for name in sorted(ours):
        if study["runs"][name] != mine["runs"][name]:
            a, b = study["runs"][name], mine["runs"][name]
            changed = [f"{k}: study {a.get(k)!r}, this worker {b.get(k)!r}" for k in sorted(set(a) | set(b))
                       if a.get(k) != b.get(k)]
            return f"the study's {name} run has other settings ({'; '.join(changed)})"
    return None


def plan_key(record: dict) -> str:
    """A record's run as the plan names it, whatever device ran it: computed from its spec, so a
    stored key edited by hand cannot make one run count twice."""
    return neutral(RunSpec.from_record(record["spec"], record["entries"][0])).key


def stored_records(text: str | None, where: str) -> list[Record]:
    """The records of one unit as its study stores them (a JSON list), each checked; one that
    fails is skipped with a line naming `where`, its place in the list and its field."""
    if not text:
        return []
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        found = None
    if not isinstance(found, list):
        print(f"bench: {where} holds no list of records; skipped (fwdlib bench remove-unit N removes it)")
        return []
    kept = []
    for i, values in enumerate(found):
        try:
            kept.append(Record.from_mapping(values))
        except RecordError as err:
            print(f"bench: {where} record {i + 1}: {err.problem}; skipped (fwdlib bench remove-unit N removes it)")
    return kept
