"""The algorithms, built by name: `build("mf", input_shape=..., num_classes=..., **config)`."""
from __future__ import annotations

from .base import Algorithm, Stage, StageData
from .bp import BPCNN, BPMLP
from .cafo import CaFoDFA, CaFoRand
from .ff import ForwardForward
from .fg import ForwardGradient
from .mf import MonoForward

# The one registry: to add an algorithm, write its module (an Algorithm subclass with its name, twin,
# search space, quick-preset layers, small examples and flow) and add it to this line. Building,
# the quick preset, the tuner, the speed command's quick cases, the GPU check's graph cases and the
# flow diagrams all read it from here.
REGISTRY: dict[str, type[Algorithm]] = {cls.name: cls for cls in (
    BPMLP, BPCNN, ForwardForward, MonoForward, CaFoRand, CaFoDFA, ForwardGradient)}


def __getattr__(name: str):
    """NAMES (every registered name) and TWINS (each forward-only algorithm's BP twin), read from
    the registry when asked, so that an algorithm registered later is in them."""
    if name == "NAMES":
        return tuple(REGISTRY)
    if name == "TWINS":
        return {n: cls.twin for n, cls in REGISTRY.items() if cls.twin}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def twin_problem(cls: type[Algorithm]) -> str | None:
    """What keeps a forward-only algorithm from its pair in the quick preset, or None: its twin must
    be a registered BP twin, and its `quick` layers must give every layer argument the twin takes."""
    twin = REGISTRY.get(cls.twin)
    if twin is None:
        return f"its twin {cls.twin!r} is not registered (registered: {', '.join(REGISTRY)})"
    if twin.twin is not None or not twin.architecture:
        return f"its twin {cls.twin!r} is not a backprop twin (one with no twin of its own, and its `architecture`)"
    missing = [key for key in twin.architecture if key not in (cls.quick or {})]
    if missing:
        return (f"its `quick` layers {dict(cls.quick or {})} lack {', '.join(missing)}, which its twin "
                f"{cls.twin} needs to have the same layers")
    return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_config(name: str, config: dict) -> None:
    """Refuse values no algorithm can train with, naming the parameter and what it needs:
    learning rates > 0, weight decays and the ridge >= 0, layer widths and channel counts
    non-empty with every entry a positive integer, epoch counts positive integers."""
    for key, value in config.items():
        if key == "lr" or key.endswith("_lr"):
            ok, need = _is_number(value) and value > 0, "a number above 0, e.g. 1e-3"
        elif "weight_decay" in key or key == "ridge":
            ok, need = _is_number(value) and value >= 0, "a number, 0 or above"
        elif key in ("hidden", "channels"):
            ok = (isinstance(value, (list, tuple)) and len(value) > 0
                  and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value))
            need = "a non-empty list of positive integers, e.g. [256, 256]"
        elif key.startswith("epochs_per") or key == "dfa_epochs":
            ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
            need = "a positive integer (or None for the fit's epoch cap)"
        else:
            continue
        if not ok:
            raise ValueError(f"bad configuration for {name!r}: {key}={value!r}; {key} must be {need}")


def build(name: str, *, input_shape, num_classes: int, **config) -> Algorithm:
    """Construct a registered algorithm; `config` goes to its constructor."""
    if name not in REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; registered: {', '.join(REGISTRY)}")
    check_config(name, config)
    try:
        return REGISTRY[name](tuple(input_shape), num_classes, **config)
    except TypeError as err:
        raise TypeError(f"bad configuration for {name!r}: {err}") from err


__all__ = ["Algorithm", "Stage", "StageData", "REGISTRY", "NAMES", "TWINS", "build"]
