"""What is searched: each algorithm's search space (the study's, weight decay for all), and a
sampler seed of each study's own."""
from __future__ import annotations

import hashlib

from ..commandline import BadValue
from .. import algorithms as registry

def search_space(algorithm: str, config: dict, epochs: int, only=None) -> tuple[dict, dict]:
    """(searched, fixed): searched maps name -> (low, high, kind) with kind "log" or "int";
    fixed holds epoch counts the epoch cap pins to one value."""
    # each algorithm declares the study's space next to its math (weight decay added where the study
    # fixed it, in the twin's range)
    params = [p for p in registry.REGISTRY[algorithm].search_space if p.applies is None or p.applies(config)]
    if only:
        unknown = sorted(set(only) - {p.name for p in params})
        if unknown:
            raise BadValue("only", f"names {', '.join(unknown)}, which {algorithm} with this configuration "
                             f"does not search; its space: {', '.join(p.name for p in params) or 'empty'}")
        params = [p for p in params if p.name in only]
    searched, fixed = {}, {}
    for p in params:
        if not p.epochs:
            searched[p.name] = (p.low, p.high, "log")
            continue
        high = min(int(p.high), epochs)        # no stage may outrun the trial's epoch cap
        low = min(int(p.low), high)
        if low == high:
            fixed[p.name] = high
        else:
            searched[p.name] = (low, high, "int")
    if not searched:
        raise ValueError(f"nothing to search for {algorithm} with configuration {config}"
                         + (f" (fixed by --epochs {epochs}: {fixed})" if fixed else "")
                         + ": choose parameters it uses (--only), a configuration that trains them, "
                           "or a larger --epochs")
    return searched, fixed


def sampler_seed(study_name: str, seed: int, worker: int = 0, stored: int = 0) -> int:
    """A seed of the study's own: two studies (or two workers) never share one by accident, and
    a resumed search (`stored` trials already in the study) continues instead of replaying."""
    digest = hashlib.sha256(f"{study_name}|{seed}|{worker}|{stored}".encode()).hexdigest()
    return int(digest[:8], 16)
