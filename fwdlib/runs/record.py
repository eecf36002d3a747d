"""A run's record, typed and frozen: what results.jsonl stores as one JSON line, and what the report
reads.

    record = Record.from_json(line)        # ValueError naming the field if a value is wrong
    record.test_acc, record.run_spec()     # typed fields; the RunSpec it trained
    record["test_acc"]                     # and a read-only mapping, as the JSON line reads
    record.to_json()                       # the same line back

Every record is checked field by field where it enters (`validate.record_problem`: type and range),
so a wrong value is refused with its field's name before anything computes with it. A field an
older version did not write stays absent (`"gpu_time_s" in record` is False); a field a newer one
added is kept, untouched, in `extra`.

Schema 1 is every record written before the `schema` field; schema 2 adds `schema` and
`configuration` (how the study's and the revision's presets ran this spec, decided when it was
planned, so that a report reads it instead of planning the presets again).
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..typed import ReadsAsMapping
from .entry import Entry
from .spec import RunSpec, freeze, thaw
from .validate import MAX_LINE_BYTES, record_problem

SCHEMA = 2


class RecordError(ValueError):
    """A record that cannot be used; `problem` names the field ("test_acc is not a number")."""

    def __init__(self, problem: str):
        super().__init__(f"not a usable record: {problem}")
        self.problem = problem


@dataclass(frozen=True)
class Record(ReadsAsMapping):
    # what ran
    key: str
    spec: Mapping
    entries: tuple[str, ...]
    status: str                                    # "ok" or "failed"
    schema: int = 1
    configuration: Mapping | None = None           # {"study": why not the study's (None: it is), "revision": ...}
    augmentation: str | None = None
    machine: Mapping | None = None
    versions: Mapping | None = None
    device_names: tuple[str, ...] = ()
    data_source: str | None = None
    started: str | None = None
    finished: str | None = None
    pool: Mapping | None = None                    # the study, unit and worker of a pooled run
    # what it learned
    test_acc: float | None = None
    best_val_acc: float | None = None
    epochs: int | None = None
    stopped_early: Mapping | None = None
    history: tuple[Mapping, ...] = ()
    parameters: int | None = None
    execution_mode: str | None = None
    notes: tuple[str, ...] = ()
    # what it cost: time, energy, memory
    train_time_s: float | None = None
    prep_time_s: float | None = None
    epoch_time_s: float | None = None
    wall_s: float | None = None
    gpu_time_s: float | None = None
    process_cpu_s: float | None = None
    foreign_cpu_s: float | None = None
    foreign_load: float | None = None
    cpus: int | None = None
    energy_measured_j: float | None = None
    energy_gpu_j: float | None = None
    energy_idle_subtracted_j: float | None = None
    energy_estimated_j: float | None = None
    energy_sources: tuple[str, ...] = ()
    co2_kg: float | None = None
    co2_method: str | None = None
    train_memory_bytes: int | None = None
    train_memory_parts: Mapping | None = None
    gpu_peak_allocated_bytes: int | None = None
    gpu_peak_reserved_bytes: int | None = None
    nvml_used_bytes: int | None = None
    cpu_peak_rss_bytes: int | None = None
    cpu_rss_method: str | None = None
    cpu_rss_growth_bytes: int | None = None
    # why it failed
    reason: str | None = None
    traceback: str | None = None
    # fields of a newer version, kept as they came; and which fields the line held
    extra: Mapping = field(default_factory=dict, repr=False)
    present: frozenset = field(default=frozenset(), repr=False, compare=False)

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, freeze(getattr(self, f.name)))
        if not self.present:       # built in code: every field it was given is part of the record
            object.__setattr__(self, "present", frozenset(
                f.name for f in dataclasses.fields(self) if f.name not in ("extra", "present")))

    @classmethod
    def from_mapping(cls, values: Mapping) -> Record:
        """The record a JSON object holds; RecordError (a ValueError) naming the first wrong field."""
        values = thaw(values) if isinstance(values, Mapping) else values
        problem = record_problem(values)
        if problem:
            raise RecordError(problem)
        known = {f.name for f in dataclasses.fields(cls)} - {"extra", "present"}
        return cls(**{k: v for k, v in values.items() if k in known},
                   extra={k: v for k, v in values.items() if k not in known},
                   present=frozenset(k for k in values if k in known))

    @classmethod
    def from_json(cls, line: str | bytes | bytearray | memoryview) -> Record:
        """One line of results.jsonl; RecordError (a ValueError) naming what is wrong: the line, or a field."""
        if not isinstance(line, (str, bytes, bytearray, memoryview)):
            raise RecordError(f"a {type(line).__name__} is not a line of text")
        try:
            raw = line.encode("utf-8") if isinstance(line, str) else bytes(line)
        except UnicodeEncodeError:
            raise RecordError("holds a lone surrogate, which is no UTF-8 text") from None
        if len(raw) > MAX_LINE_BYTES:
            raise RecordError(f"longer than {MAX_LINE_BYTES // 2**20} MiB")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RecordError("not UTF-8 text") from None
        try:
            values = json.loads(text)
        except (ValueError, RecursionError):           # also a number of more than 4300 digits
            raise RecordError("not valid JSON") from None
        return cls.from_mapping(values)

    def as_dict(self) -> dict[str, Any]:
        """The record as plain JSON values, with exactly the fields its line held."""
        out = {f.name: thaw(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name in self.present}
        return {**out, **thaw(self.extra)}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), default=str)

    def replace(self, **changes) -> Record:
        """The same record with some fields set (a pooled run's `pool`)."""
        return dataclasses.replace(self, present=self.present | set(changes), **changes)

    def run_spec(self, entry: Entry | str | None = None) -> RunSpec:
        """The RunSpec this run trained, as the report line `entry` names it (default: its first)."""
        return RunSpec.from_record(self.spec, entry or self.entries[0])

    # a read-only mapping of the fields the line held: the report reads records as JSON reads them
    def __getitem__(self, name: str):
        if name in self.present:
            return getattr(self, name)
        return self.extra[name]

    def __iter__(self):
        return iter([*(n for n in self.__dataclass_fields__ if n in self.present), *self.extra])

    def __len__(self) -> int:
        return len(self.present) + len(self.extra)
