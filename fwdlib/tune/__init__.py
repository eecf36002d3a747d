"""Hyperparameter search with Optuna: the same fair search for every algorithm.

    python -m fwdlib.tune --algorithm mf --dataset fashion_mnist_sample --trials 20
    python -m fwdlib.bench --params tune-results/mf-fashion_mnist_sample.json

The study this kit reproduces tuned each algorithm with Optuna TPE, and its own audit found the
tuning unfair: a median pruner for BP but none for the others, one sampler seed reused across
studies, weight decay searched for some algorithms only. Here every algorithm gets
- the study's search space (Spyra & Dzwinel 2025, arXiv 2511.01061; the README's "The study and
  the papers"), with weight decay searched for all of them;
- the same pruner (median by default, or none) and the same stopping rule inside each trial: the
  benchmark preset's (monitor, patience, min_delta, batch size). Algorithms trained in stages
  (CaFo's blocks, greedy MF's layers) are never pruned: epoch k of one trial may train block 2
  while epoch k of another trains block 1, and the pruner would compare the two;
- a sampler seed of its own, derived from the study's name, --seed and --worker.
The objective is validation accuracy of the restored best model; the test set is never seen.

Storage: a local SQLite file by default (rerun the command to resume an interrupted search);
journal:FILE for several worker processes on one machine; any database URL Optuna accepts
(postgresql+psycopg://...) for workers on several machines running one study together. On a
database server every running trial beats a heartbeat: a trial whose worker falls silent for the
grace period (a machine that lost power, a killed process) is failed and its parameters are run
again by a live worker. SQLite and journal files have no heartbeat; there a trial left running by
a dead process of this machine is found by its process id (when a worker starts, and while it
waits for the last trials to finish).
"""
from .cli import main, parse_overrides
from .search import tune
from .space import sampler_seed, search_space
from .storage import hide_secrets, open_storage, redact
from .workers import recover_abandoned, retry_of, status, worker_id

__all__ = ["hide_secrets", "main", "open_storage", "parse_overrides", "recover_abandoned", "redact", "retry_of",
           "sampler_seed", "search_space", "status", "tune", "worker_id"]
