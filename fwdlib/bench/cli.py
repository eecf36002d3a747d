"""The benchmark's command line: fwdlib bench."""
from __future__ import annotations

import sys
from pathlib import Path

from .. import data as datasets
from ..launch import ACTIONS, exit_code_of, stop_on_signals
from ..commandline import Parser, hide_secrets, one_line, said_by_command
from ..session import quick_mode
from .. import coordination
from . import pool, runner, workers
from .presets import PRESETS
from .report import title_of, write_report
from .results import ResultsLog, ResultsNotSaved
from .benchmark import DEFAULT_OUT, Benchmark
from .runner import run
from .summary import printout
from .verdicts import MARGINS, parse_margins


def main(argv=None) -> int:
    """The command's one error boundary: exit 0 done, 1 a run failed (the algorithm's fault), 2 bad
    input or environment (nothing trains, or a finished run could not be saved), 128 + N stopped
    by signal N (Ctrl-C 130, SIGTERM 143): one line each, saying what is kept and what to do."""
    parser = Parser(prog="fwdlib bench", description=runner.__doc__.split("\n\n")[0], actions=ACTIONS["bench"],
                    epilog="actions (each the flag of the same name): fwdlib bench status | report | plan | "
                           "export DIR | import DIR | remove-unit N, with --storage and --study")
    parser.add_argument("--preset", default="quick", help=f"one of: {', '.join(PRESETS)}")
    parser.add_argument("--dataset", help="comma-separated subset of the preset's datasets")
    parser.add_argument("--algorithms", help="comma-separated subset (twins follow their rival)")
    parser.add_argument("--checkpointed-twins", action="store_true",
                        help="also run each BP twin with activation checkpointing (bp-mlp+checkpoint@mf): "
                             "the memory-fair twin, beside the plain one")
    parser.add_argument("--seeds", type=int, help="runs per configuration (default: preset's, 3)")
    parser.add_argument("--protocol", default="converge", help="converge (own early stop) or matched (same epochs)")
    parser.add_argument("--epochs", type=int, help="override the epoch cap (per stage)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="results folder (resumed if it exists)")
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--data-root", help="folder holding the datasets (else $FWDLIB_DATA, cache, system)")
    parser.add_argument("--no-cuda-graphs", action="store_true", help="run every step eagerly")
    parser.add_argument("--no-co2", action="store_true", help="skip CodeCarbon")
    parser.add_argument("--idle-s", type=float, help="seconds of idle-power baseline per run (default: 3 on CUDA, else 0)")
    parser.add_argument("--retry-failed", action="store_true", help="rerun runs recorded as failed")
    parser.add_argument("--rerun-contaminated", action="store_true",
                        help="rerun runs whose time and energy other work on the machine spoiled (the report counts them)")
    parser.add_argument("--params", action="append", metavar="FILE",
                        help="best parameters from fwdlib tune (repeat for several algorithms)")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the report from OUT/results.jsonl (with --storage: from the study)")
    pooled_flags = parser.add_argument_group("a class's machines pooling seeds into one study (README: A class as one benchmark)")
    pooled_flags.add_argument("--storage", metavar="URL", help="the class's database (postgresql+psycopg://USER:PASSWORD@HOST/DB; "
                              "sqlite:///FILE.db on one machine); without it the benchmark is this machine's alone")
    pooled_flags.add_argument("--study", metavar="NAME", help="the study's name, the same on every machine")
    pooled_flags.add_argument("--status", action="store_true", help="list the study's units (planned, running by "
                              "whom and for how long, done, failed) and exit")
    pooled_flags.add_argument("--plan-only", action="store_true", help="create the study (or add --seeds) and exit")
    pooled_flags.add_argument("--export", metavar="DIR", help="append the study's records to DIR/results.jsonl and exit")
    pooled_flags.add_argument("--import", dest="import_dir", metavar="DIR",
                              help="store DIR/results.jsonl's finished (pair, seed) units in the study and exit")
    pooled_flags.add_argument("--remove-unit", type=int, metavar="N",
                              help="remove unit N's records (its number in --status) and plan it again, then exit")
    pooled_flags.add_argument("--heartbeat", type=float, default=coordination.HEARTBEAT_S, metavar="S",
                              help=f"seconds between a running unit's heartbeats (default {coordination.HEARTBEAT_S})")
    pooled_flags.add_argument("--grace", type=float, default=coordination.GRACE_S, metavar="S",
                              help=f"seconds of silence after which a unit is run by another worker (default {coordination.GRACE_S})")
    parser.add_argument("--margins", metavar="KIND=VALUE,...",
                        help="practical margins of the verdicts (default " + ",".join(
                            f"{k}={v:g}" for k, v in MARGINS.items()) + "; accuracy in pp, the others as fractions)")
    args = parser.parse_args(argv)
    for flag, value in (("--out", args.out), ("--export", args.export), ("--import", args.import_dir)):
        if value is not None and not value.strip():
            parser.error(f"{flag} is empty; name a folder (for --out the default is bench-results)")
    pooled_only = [flag for flag, on in (("--study", args.study), ("--status", args.status),
                                         ("--plan-only", args.plan_only), ("--export", args.export),
                                         ("--import", args.import_dir),
                                         ("--remove-unit", args.remove_unit is not None)) if on]
    chosen = [flag for flag, on in (("--status", args.status), ("--report-only", args.report_only),
                                    ("--plan-only", args.plan_only), ("--export", args.export),
                                    ("--import", args.import_dir), ("--remove-unit", args.remove_unit is not None)) if on]
    if len(chosen) > 1:
        parser.error(f"one action at a time, not {' and '.join(chosen)}")
    if pooled_only and not (args.storage and args.study):
        parser.error(f"{pooled_only[0]} needs --storage URL and --study NAME (the class's database and study)")
    if args.storage and not args.study:
        parser.error("--storage needs --study NAME: the study's name, the same on every machine")
    out = Path(args.out)
    worker = bool(args.storage) and not any((args.status, args.plan_only, args.export, args.import_dir,
                                             args.report_only, args.remove_unit is not None))
    try:
        with stop_on_signals():
            margins = parse_margins(args.margins)
            if args.seeds is None and args.preset == "quick" and quick_mode():
                args.seeds = 1          # the command's edge reads FWDLIB_QUICK (CI, make notebooks); the library does not
            if args.storage:
                return pooled_main(args, out, margins)
            if args.report_only:
                return report_only(out, margins)
            records = run(benchmark_of(args), co2=not args.no_co2, retry_failed=args.retry_failed,
                          rerun_contaminated=args.rerun_contaminated, margins=margins)
    except KeyboardInterrupt as stop:
        print(f"\nbench: {str(stop) or 'interrupted'}; every finished run is kept in {out / 'results.jsonl'} "
              "(the run in progress is not). To resume, run the same command again.", file=sys.stderr)
        return exit_code_of(stop)
    except ResultsNotSaved as err:
        print(f"error: {err.strerror}", file=sys.stderr)
        return 2
    except pool.DatabaseLost as err:
        print(f"error: {one_line(err)}. " + (
            "Nothing was changed; run the same command again when the database answers" if not worker else
            f"Every run this machine finished is kept in {out / 'results.jsonl'}; when the database is back, run "
            "the same command again: it uploads them before it runs anything (or run: fwdlib bench "
            f"import {out} with the same --preset, --storage and --study)"), file=sys.stderr)
        return 2
    except workers.UnitsFailed as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:        # the report or its figures: the results log itself is safe
        print(f"error: could not write the report in {out} ({err.strerror or err}); every finished run "
              f"is kept in {out / 'results.jsonl'}: free space, then run `fwdlib bench report` with the same --out", file=sys.stderr)
        return 2
    except (ValueError, datasets.DataError, RuntimeError) as err:
        said = said_by_command(err)
        print(f"error: {one_line(hide_secrets(said, args.storage) if args.storage else said)}", file=sys.stderr)
        return 2
    return _failed(records)


def _failed(records: list[dict]) -> int:
    failed = [r for r in records if r.get("status") == "failed"]
    if failed:
        print(f"error: {len(failed)} run(s) failed (first: {failed[0]['spec']['algorithm']} seed "
              f"{failed[0]['spec']['seed']}: {failed[0]['reason']}); fix the cause and rerun the same "
              "command with --retry-failed", file=sys.stderr)
        return 1
    return 0


def benchmark_of(args) -> Benchmark:
    """The benchmark the flags describe, built here, at the edge."""
    return Benchmark.of(args.preset, dataset=args.dataset, algorithms=args.algorithms, seeds=args.seeds,
                        protocol=args.protocol, epochs=args.epochs, device=args.device,
                        cuda_graphs=not args.no_cuda_graphs, params=args.params, out=args.out,
                        root=args.data_root, idle_s=args.idle_s, twin_variants=twin_variants(args))


def twin_variants(args) -> tuple[str, ...]:
    return ("checkpoint",) if args.checkpointed_twins else ()


def pooled_main(args, out: Path, margins: dict) -> int:
    """The pooled benchmark's commands (`pooled`): each opens the study and does one thing."""
    reading = args.status or args.report_only or args.export
    study = pool.Pool(args.storage, args.study, args.heartbeat, args.grace, write=not reading)
    if args.status:
        print(workers.status(study))
    elif args.report_only:
        workers.report(study, out, margins)
    elif args.export:
        workers.export(study, Path(args.export))
    elif args.remove_unit is not None:
        print(workers.remove_unit(study, args.remove_unit))
    elif args.import_dir:
        workers.import_folder(Benchmark.planned(args.preset, dataset=args.dataset, algorithms=args.algorithms,
                                                seeds=args.seeds, protocol=args.protocol, epochs=args.epochs,
                                                cuda_graphs=not args.no_cuda_graphs, params=args.params,
                                                twin_variants=twin_variants(args)),
                              study, Path(args.import_dir))
    else:
        records = workers.work(benchmark_of(args), study, plan_only=args.plan_only, retry_failed=args.retry_failed,
                              rerun_contaminated=args.rerun_contaminated, co2=not args.no_co2, margins=margins)
        return _failed(records)
    return 0


def report_only(out: Path, margins: dict | None = None) -> int:
    """The report rebuilt from OUT/results.jsonl, which is only read."""
    records = ResultsLog(out / "results.jsonl", write=False).latest()
    if not records:
        raise ValueError(f"no results in {out / 'results.jsonl'} to report on")
    write_report(records, out, title=title_of(records), margins=margins)
    print(printout(out))
    return 0
