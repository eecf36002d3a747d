"""The library's floors: every import points down (or stays inside its own floor), so no circle."""
import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fwdlib

PACKAGE = Path(fwdlib.__file__).parent
# floor of each top-level part of fwdlib; a part imports only parts on lower floors, or itself
FLOORS = {"launch": 0, "__main__": 8, "session": 0, "files": 0, "processes": 0, "commandline": 0, "typed": 0, "coordination": 1, "graphs": 0, "meters": 0, "data": 1, "algorithms": 2, "train": 3, "runs": 4,
          "bench": 5, "tune": 6, "speed": 6, "course": 7, "gpu_check": 8}


def part_of(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_parts(path: Path) -> set[str]:
    """The parts of fwdlib that `path` imports (relative imports resolved against its package)."""
    here = path.relative_to(PACKAGE).parent.parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
            target = (*base, *(node.module.split(".") if node.module else ()))
            found |= {target[0]} if target else {alias.name for alias in node.names}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found |= {n.split(".")[1] for n in names if n.startswith("fwdlib.")}
    return found


def modules():
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p != PACKAGE / "__init__.py"]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_import_points_down(path):
    mine = part_of(path)
    assert mine in FLOORS, f"{mine} has no floor: add it to FLOORS (and to fwdlib/__init__.py's map)"
    for other in imported_parts(path) - {mine}:
        assert FLOORS[other] < FLOORS[mine], f"{path.name} ({mine}, floor {FLOORS[mine]}) imports {other} (floor {FLOORS[other]})"


# bench/ has floors of its own: describing a run, the study and its plans, what results say,
# running them, the commands. A module imports its own floor or the ones below.
BENCH_FLOORS = {
    **dict.fromkeys(("stats",), 0),
    **dict.fromkeys(("study", "presets", "params", "plan", "units", "verdicts", "results", "benchmark"), 1),
    **dict.fromkeys(("claims", "figures", "summary", "report"), 2),
    **dict.fromkeys(("runner", "pool"), 3),
    **dict.fromkeys(("workers", "cli", "__main__", "__init__"), 4),
}


def bench_imports(path: Path) -> set[str]:
    """The modules of bench/ that `path` (a module of bench/) imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fwdlib.bench."):
            found.add(node.module.split(".")[2])
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "bench").glob("*.py")), ids=lambda p: p.name)
def test_every_import_inside_bench_points_down(path):
    mine = path.stem
    assert mine in BENCH_FLOORS, f"bench/{path.name} has no floor: add it to BENCH_FLOORS"
    for other in bench_imports(path) - {mine}:
        assert BENCH_FLOORS[other] <= BENCH_FLOORS[mine], \
            f"bench/{path.name} (floor {BENCH_FLOORS[mine]}) imports {other} (floor {BENCH_FLOORS[other]})"


def test_no_module_is_a_big_room():
    sizes = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in modules()}
    assert max(sizes.values()) <= 400, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_the_short_names_the_notebooks_use_still_work():
    from fwdlib import checks, energy, memory, plots, report, study

    assert energy.EnergyMeter and memory.step_memory and report.write_report and study.STUDY
    assert plots.flow_diagram and checks.check.ex1_1
    assert (energy.__name__, plots.__name__) == ("fwdlib.meters.energy", "fwdlib.course.plots")
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        fwdlib.nothing  # noqa: B018


def test_the_run_floor_loads_no_database_plotting_or_search_library():
    """A reader of results needs the run's types, not the apps that make them."""
    code = ("import sys; from fwdlib import RunSpec, Record; from fwdlib.runs import build_model, fit_spec; "
            "print(sorted(m for m in ('sqlalchemy', 'matplotlib', 'optuna') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# The roles every command has, named alike in each (README: Names); any other module name is one
# module's alone, so that a name means one thing.
SHARED_ROLES = {"__init__", "__main__", "cli", "workers"}


def test_each_module_name_has_one_meaning():
    stems: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        stems.setdefault(path.stem, []).append(str(path.relative_to(PACKAGE)))
    twice = {stem: paths for stem, paths in stems.items() if len(paths) > 1 and stem not in SHARED_ROLES}
    assert not twice, f"one name, several modules: {twice}; name each for what it holds (README: Names)"
    readme = (PACKAGE.parent / "README.md").read_text()
    guide = readme[readme.index("### Names"):readme.index("## Licence")]
    named = set(re.findall(r"`((?:[a-z_]+/)?[a-z_]+\.py)`", guide)) - {"tests/test_layers.py"}
    assert named and all(list(PACKAGE.glob(p)) for p in named), \
        f"the naming guide names modules that are not there: {sorted(p for p in named if not list(PACKAGE.glob(p)))}"
