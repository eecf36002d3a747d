"""A benchmark entry: what one line of the report is, written as the study names it.

    rival               "mf"                  a forward-only algorithm, run as the study ran it
    rival+variant       "mf+per-batch"        the kit's variant of it, beside the study's
    twin@rival          "bp-mlp@mf"           the rival's backprop twin (same layers)
    twin@rival+variant  "bp-mlp@mf+per-batch" the twin of the variant
    twin+way@rival      "bp-mlp+checkpoint@mf" the twin run another way (its `variants`: the
                                              checkpointed twin), beside the plain one

One parser (`Entry.parse`) and one formatter (`str(entry)`); nothing else takes names apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

NAME = r"[a-z][a-z0-9-]*"
GRAMMAR = re.compile(rf"(?:(?P<twin>{NAME})(?:\+(?P<twin_variant>{NAME}))?@)?(?P<rival>{NAME})(?:\+(?P<variant>{NAME}))?")


@dataclass(frozen=True, order=True)
class Entry:
    rival: str                      # the forward-only algorithm the entry is about
    twin: str | None = None         # the BP algorithm that trains, for a twin entry
    variant: str | None = None      # the kit's variant of the rival ("per-batch"), None: the study's
    twin_variant: str | None = None  # the twin's other way ("checkpoint"), None: the plain twin

    def __post_init__(self):
        if self.twin_variant and not self.twin:
            raise ValueError(f"a twin variant ({self.twin_variant}) needs a twin")

    @classmethod
    def parse(cls, text: str) -> Entry:
        match = GRAMMAR.fullmatch(str(text))
        if not match:
            raise ValueError(f"{text!r} is not an entry; write rival, rival+variant, twin@rival, "
                             "twin@rival+variant or twin+way@rival (e.g. mf, mf+per-batch, bp-mlp@mf, "
                             "bp-mlp+checkpoint@mf)")
        return cls(match["rival"], match["twin"], match["variant"], match["twin_variant"])

    def __str__(self) -> str:
        return ((f"{self.twin_name}@" if self.twin else "") + self.rival
                + (f"+{self.variant}" if self.variant else ""))

    @property
    def twin_name(self) -> str | None:
        """The twin as the report names it: "bp-mlp", or "bp-mlp+checkpoint" for a twin variant."""
        return self.twin and self.twin + (f"+{self.twin_variant}" if self.twin_variant else "")

    @property
    def algorithm(self) -> str:
        """The algorithm that trains: the twin's for a twin entry, else the rival's."""
        return self.twin or self.rival

    @property
    def is_twin(self) -> bool:
        return self.twin is not None

    @property
    def rival_entry(self) -> Entry:
        """The entry this one is compared with (a twin's rival), or itself for a rival."""
        return Entry(self.rival, variant=self.variant)

    @property
    def plain_twin(self) -> Entry:
        """A twin variant's plain twin (bp-mlp@mf for bp-mlp+checkpoint@mf); itself otherwise."""
        return Entry(self.rival, self.twin, self.variant)

    def twin_of(self, twin: str, variant: str | None = None) -> Entry:
        """This rival's twin entry: Entry("mf").twin_of("bp-mlp") is bp-mlp@mf; with variant
        "checkpoint", bp-mlp+checkpoint@mf."""
        return Entry(self.rival, twin, self.variant, variant)
