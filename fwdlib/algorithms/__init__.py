"""The algorithms, built by name: `build("mf", input_shape=..., num_classes=..., **config)`."""
from __future__ import annotations

from .base import Algorithm, Stage, StageData
from .bp import BPCNN, BPMLP
from .cafo import CaFoDFA, CaFoRand
from .ff import ForwardForward
from .mf import MonoForward

REGISTRY: dict[str, type[Algorithm]] = {
    "bp-mlp": BPMLP, "bp-cnn": BPCNN, "ff": ForwardForward,
    "cafo-rand": CaFoRand, "cafo-dfa": CaFoDFA, "mf": MonoForward,
}
# Each forward-only algorithm and the BP twin with the same layers.
TWINS = {"ff": "bp-mlp", "mf": "bp-mlp", "cafo-rand": "bp-cnn", "cafo-dfa": "bp-cnn"}
NAMES: tuple[str, ...] = tuple(REGISTRY)


def build(name: str, *, input_shape, num_classes: int, **config) -> Algorithm:
    """Construct a registered algorithm; `config` goes to its constructor."""
    if name not in REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; registered: {', '.join(NAMES)}")
    try:
        return REGISTRY[name](tuple(input_shape), num_classes, **config)
    except TypeError as err:
        raise TypeError(f"bad configuration for {name!r}: {err}") from err


__all__ = ["Algorithm", "Stage", "StageData", "REGISTRY", "NAMES", "TWINS", "build"]
