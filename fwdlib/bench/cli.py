"""The benchmark's command line: python -m fwdlib.bench."""
from __future__ import annotations

import sys
from pathlib import Path

from .. import data as datasets
from ..utils import Parser, exit_code_of, stop_on_signals
from . import runner
from .presets import PRESETS
from .report import write_report
from .results import ResultsLog, ResultsNotSaved
from .runner import DEFAULT_OUT, run
from .verdicts import MARGINS, parse_margins


def main(argv=None) -> int:
    """The command's one error boundary: exit 0 done, 1 a run failed (the algorithm's fault), 2 bad
    input or environment (nothing trains, or a finished run could not be saved), 128 + N stopped
    by signal N (Ctrl-C 130, SIGTERM 143): one line each, saying what is kept and what to do."""
    parser = Parser(prog="python -m fwdlib.bench", description=runner.__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quick", help=f"one of: {', '.join(PRESETS)}")
    parser.add_argument("--dataset", help="comma-separated subset of the preset's datasets")
    parser.add_argument("--algorithms", help="comma-separated subset (twins follow their rival)")
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
    parser.add_argument("--params", action="append", metavar="FILE",
                        help="best parameters from python -m fwdlib.tune (repeat for several algorithms)")
    parser.add_argument("--report-only", action="store_true", help="rebuild the report from OUT/results.jsonl")
    parser.add_argument("--margins", metavar="KIND=VALUE,...",
                        help="practical margins of the verdicts (default " + ",".join(
                            f"{k}={v:g}" for k, v in MARGINS.items()) + "; accuracy in pp, the others as fractions)")
    args = parser.parse_args(argv)
    if not args.out.strip():
        parser.error("--out is empty; name the results folder (default bench-results)")
    out = Path(args.out)
    try:
        with stop_on_signals():
            margins = parse_margins(args.margins)
            if args.report_only:
                return report_only(out, margins)
            records = run(args.preset, dataset=args.dataset, algorithms=args.algorithms, seeds=args.seeds,
                          protocol=args.protocol, out=out, device=args.device,
                          cuda_graphs=not args.no_cuda_graphs, epochs=args.epochs, root=args.data_root,
                          co2=not args.no_co2, idle_s=args.idle_s, retry_failed=args.retry_failed,
                          params=args.params, margins=margins)
    except KeyboardInterrupt as stop:
        print(f"\nbench: {stop}; every finished run is kept in {out / 'results.jsonl'} (the run in progress "
              "is not). To resume, run the same command again.", file=sys.stderr)
        return exit_code_of(stop)
    except ResultsNotSaved as err:
        print(f"error: {err.strerror}", file=sys.stderr)
        return 2
    except OSError as err:        # the report or its figures: the results log itself is safe
        print(f"error: could not write the report in {out} ({err.strerror or err}); every finished run "
              f"is kept in {out / 'results.jsonl'}: free space, then run with --report-only", file=sys.stderr)
        return 2
    except (ValueError, datasets.DataError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = [r for r in records if r.get("status") == "failed"]
    if failed:
        print(f"error: {len(failed)} run(s) failed (first: {failed[0]['spec']['algorithm']} seed "
              f"{failed[0]['spec']['seed']}: {failed[0]['reason']}); fix the cause and rerun the same "
              "command with --retry-failed", file=sys.stderr)
        return 1
    return 0


def report_only(out: Path, margins: dict | None = None) -> int:
    """The report rebuilt from OUT/results.jsonl, which is only read."""
    records = ResultsLog(out / "results.jsonl", write=False).latest()
    if not records:
        raise ValueError(f"no results in {out / 'results.jsonl'} to report on")
    write_report(records, out, title="from results.jsonl", margins=margins)
    print((out / "report.md").read_text())
    return 0
