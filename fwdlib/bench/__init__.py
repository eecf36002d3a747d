"""The head-to-head benchmark: every forward-only algorithm against its backprop twin.

    python -m fwdlib.bench --preset quick                # the default: embedded sample, CPU minutes
    python -m fwdlib.bench --preset paper-fmnist --device cuda
    python -m fwdlib.bench --preset speed                # seconds per epoch beside the study's

Fairness: both members of a pair get the same data split, batch size, epoch cap, stopping rule
(metric, patience, min_delta), warm-up and execution mode; several seeds run interleaved
(seed-major, the algorithm order rotated each seed) so drift and heat favour no one.

Nothing is lost: each finished run is appended at once to OUT/results.jsonl as one JSON line
(flushed and fsynced), keyed by a hash of its full configuration. Running the same command again
skips finished runs; a failed run is recorded with its reason and the others go on.
"""
from .cli import main
from .presets import PRESETS, Pair, Preset
from .results import ResultsLog, ResultsNotSaved
from .runner import PROTOCOLS, run

__all__ = ["PRESETS", "PROTOCOLS", "Pair", "Preset", "ResultsLog", "ResultsNotSaved", "main", "run"]
