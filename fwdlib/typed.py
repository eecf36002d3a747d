"""Frozen rows that read as mappings: a typed, immutable result that code and notebooks written
against its JSON form read unchanged (`row["test_acc"]` is `row.test_acc`).

The kit's results (a run's Record, a report's Row, a Verdict, a Summary) are frozen dataclasses:
built once with every field, never changed in place, each field typed. Reading them by name as well
keeps a results.jsonl, a notebook and the report's own code on one vocabulary.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping


class ReadsAsMapping(Mapping):
    """A dataclass that also reads as a read-only mapping of its fields."""

    def __getitem__(self, name: str):
        if name in self.__dataclass_fields__:
            return getattr(self, name)
        raise KeyError(name)

    def __iter__(self):
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)

    def replace(self, **changes):
        """A copy with some fields set: the way a result changes."""
        return dataclasses.replace(self, **changes)
