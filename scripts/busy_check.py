"""How much a busy laptop costs each lesson (`make busy-check`).

    python scripts/busy_check.py [--limit 2] [--bench-limit 2.5] [--no-bench] [NOTEBOOK ...]

Runs every lesson in quick mode as a student does (a fresh kernel, the CPU), first on the quiet
machine and then beside one busy process (`python -c "while True: pass"`) it starts and stops
itself, and prints each lesson's two times and their ratio; then times `make bench`'s quick preset
both ways. Exits 1 when a lesson's ratio passes --limit or the benchmark's passes --bench-limit.
Run it on a machine with nothing else to do: the quiet times are the yardstick.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import store_outputs  # noqa: E402


def busy_process() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def bench_seconds() -> float:
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fwdlib", "bench", "--preset", "quick", "--no-co2", "--out", out],
                       check=True, capture_output=True, env={**os.environ, "FWDLIB_QUICK": "1", "CUDA_VISIBLE_DEVICES": ""})
        return time.perf_counter() - start


def timed(busy: bool, job):
    other = busy_process() if busy else None
    try:
        return job()
    finally:
        if other:
            other.kill()
            other.wait()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=2.0, help="largest busy/quiet ratio of a lesson")
    parser.add_argument("--bench-limit", type=float, default=2.5, help="largest ratio of the quick benchmark")
    parser.add_argument("--no-bench", action="store_true", help="time the lessons only")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every lesson")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs; one busy process beside each second run")
    print(f"{'':34s} {'quiet':>8s} {'busy':>8s} {'ratio':>6s}")
    failed = []
    lessons = [p.resolve() for p in args.notebooks] or store_outputs.LESSONS
    jobs = [(p.name, lambda p=p: store_outputs.execute(p, refuse_disturbed=False)[1]) for p in lessons]
    for name, job in jobs + ([] if args.no_bench else [("make bench (quick preset)", bench_seconds)]):
        quiet, busy = timed(False, job), timed(True, job)
        limit = args.bench_limit if name.startswith("make bench") else args.limit
        ratio = busy / quiet
        print(f"{name:34s} {quiet:7.1f}s {busy:7.1f}s {ratio:5.2f}x" + ("  <- above the limit" if ratio > limit else ""),
              flush=True)
        if ratio > limit:
            failed.append(name)
    if failed:
        print(f"slower than {args.limit}x (lessons) or {args.bench_limit}x (benchmark) beside one busy process: "
              + ", ".join(failed))
        return 1
    print("every lesson within its limit beside one busy process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
