"""The tuner's command line: fwdlib tune."""
from __future__ import annotations

import json
import sys

import optuna
from sqlalchemy.exc import SQLAlchemyError

from .. import algorithms as registry
from .. import data as datasets
from ..launch import ACTIONS, exit_code_of
from ..commandline import Parser, as_tuple, hide_secrets, said_by_command
from . import search
from ..coordination import GRACE_S, HEARTBEAT_S
from .search import NoCompletedTrial, tune
from .search_spec import DEFAULT_STORAGE, SearchSpec
from .workers import status


def parse_overrides(items) -> dict:
    """--set key=value pairs, values as JSON (hidden=[256,256], schedule="greedy" or greedy)."""
    overrides = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    return overrides


def main(argv=None) -> int:
    parser = Parser(prog="fwdlib tune", description=search.__doc__.split("\n\n")[0], actions=ACTIONS["tune"])
    parser.add_argument("--algorithm",
                        help=f"one of {', '.join(registry.NAMES)}, or an entry such as bp-mlp@mf or mf+per-batch")
    parser.add_argument("--dataset", default=datasets.SAMPLE_NAME, help=", ".join(datasets.NAMES))
    parser.add_argument("--preset", help="the benchmark preset whose run is tuned (default: the first that runs "
                                         "the dataset: quick for the sample, paper-fmnist for fashion_mnist)")
    parser.add_argument("--trials", type=int, default=20, help="finished trials the study should hold")
    parser.add_argument("--epochs", type=int, help="epoch cap per trial and stage (default: the preset's)")
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help="sqlite:///FILE, journal:FILE or a database URL")
    parser.add_argument("--study", help="study name (default: ALGORITHM-DATASET)")
    parser.add_argument("--seed", type=int, default=0, help="training seed; with the study name, the sampler's")
    parser.add_argument("--worker", type=int, default=0, help="this worker's number, when several share a study")
    parser.add_argument("--out", help="best-parameters file (default: tune-results/STUDY.json)")
    parser.add_argument("--pruner", default="median", help="median or none: the same for every algorithm")
    parser.add_argument("--only", help="comma-separated subset of the search space")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="change the base configuration")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--data-root", help="folder holding the datasets")
    parser.add_argument("--no-figures", action="store_true", help="skip the history and importance plots")
    parser.add_argument("--heartbeat", type=float, default=HEARTBEAT_S, metavar="S",
                        help=f"database storage: seconds between a running trial's heartbeats (default {HEARTBEAT_S})")
    parser.add_argument("--grace", type=float, default=GRACE_S, metavar="S",
                        help="seconds of silence after which a trial's worker counts as dead and the trial is "
                             "failed and retried: on a database server, silent heartbeats; in a SQLite or journal "
                             f"file, a trial no worker has signed (default {GRACE_S})")
    parser.add_argument("--status", action="store_true",
                        help="print every trial of the study (state, worker, value, running time, retries) and exit")
    args = parser.parse_args(argv)
    if not args.algorithm and not (args.status and args.study):
        parser.error("--algorithm is required (for `fwdlib tune status`, --study NAME will do instead)")
    # One error boundary: 0 done, 1 no trial completed (the algorithm's outcome), 2 bad input or
    # environment, 128 + N stopped by signal N; every message without the storage's secrets.
    try:
        if args.status:
            print(status(args.study or f"{args.algorithm}-{args.dataset}", args.storage))
            return 0
        wanted = SearchSpec.of(args.algorithm, args.dataset, trials=args.trials, epochs=args.epochs,
                                 preset=args.preset, storage=args.storage, study=args.study, seed=args.seed,
                                 worker=args.worker, out=args.out, pruner=args.pruner, only=as_tuple(args.only),
                                 overrides=parse_overrides(args.set), device=args.device,
                                 heartbeat_s=args.heartbeat, grace_s=args.grace)
        tune(wanted, root=args.data_root, figures=not args.no_figures)
    except KeyboardInterrupt as stop:
        print(f"\ntune: {str(stop) or 'interrupted'}. To resume, run the same command again.", file=sys.stderr)
        return exit_code_of(stop)
    except NoCompletedTrial as err:
        print(f"error: {hide_secrets(str(err), args.storage)}", file=sys.stderr)
        return 1
    except (ValueError, datasets.DataError, RuntimeError, TypeError) as err:
        print(f"error: {hide_secrets(said_by_command(err), args.storage)}", file=sys.stderr)
        return 2
    except (OSError, optuna.exceptions.OptunaError, SQLAlchemyError) as err:   # the disk, the database
        print(f"error: the storage or a file could not be written ({type(err).__name__}: "
              f"{hide_secrets(str(err).splitlines()[0] if str(err) else '', args.storage)}); free space or fix the "
              "path, then run the same command again: finished trials are kept", file=sys.stderr)
        return 2
    return 0
