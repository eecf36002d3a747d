"""Mutation testing of the exercise checks: does each check reject the wrong answers a student
could write, generated from the reference solution rather than listed by hand?

    python scripts/mutants.py                  # every exercise; exit 1 below the thresholds
    python scripts/mutants.py --only 2.1,6.3   # some exercises
    python scripts/mutants.py --show 2.1       # print each mutant of 2.1 and whether it was rejected

Each reference solution (the function a solution notebook passes to `check.exN_M`) is parsed with
the `ast` module and changed in one place at a time: arithmetic and comparison operators swapped,
numbers moved by one, booleans flipped, a keyword such as `dim` or `keepdim` dropped, `sum` and
`mean` (and other reductions) swapped, a call removed (`clone`, `sorted`, `float`, `sigmoid`, ...)
or added (`detach` on the result, `zero_grad` after a step's calls), a statement removed, two
arguments or two operands swapped, a slice turned around. Every check runs on every mutant (a
mutant that runs for more than TIMEOUT seconds counts as rejected: a student would see a check
that never ends). The ast module, not mutmut or cosmic-ray: those mutate files of a package and
rerun a test suite per mutant, where these references live in notebooks, need operators of
tensor code (dims, keepdim, reductions, detach) and must run in-process in seconds.

A mutant that survives and computes the same function for every input the task allows is
listed in scripts/equivalent_mutants.txt with why; the score leaves those out. A listed mutant
that no longer exists, or that the check now rejects, is an error: the list stays true.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import io
import math
import re
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EQUIVALENT = ROOT / "scripts" / "equivalent_mutants.txt"
TIMEOUT = 10.0
TOTAL, PER_EXERCISE = 0.95, 0.90
CHECK_CALL = re.compile(r"^check\.ex(\d+)_(\d+)\((\w+)\)", re.M)

BINARY = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div], ast.Div: [ast.Mult, ast.FloorDiv],
          ast.FloorDiv: [ast.Div], ast.Mod: [ast.FloorDiv], ast.Pow: [ast.Mult], ast.MatMult: [ast.Mult]}
ORDERED = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult)
COMPARE = {ast.Lt: [ast.LtE, ast.Gt], ast.LtE: [ast.Lt, ast.GtE], ast.Gt: [ast.GtE, ast.Lt], ast.GtE: [ast.Gt, ast.LtE],
           ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.In: [ast.NotIn], ast.NotIn: [ast.In],
           ast.Is: [ast.IsNot], ast.IsNot: [ast.Is]}
REDUCTIONS = {"sum": "mean", "mean": "sum", "max": "min", "min": "max", "argmax": "argmin", "argmin": "argmax",
              "median": "mean", "softmax": "log_softmax", "log_softmax": "softmax", "amax": "amin"}
DROPPABLE_KEYWORDS = {"dim", "axis", "keepdim", "keepdims", "minlength", "generator"}


# ------------------------------------------------------------------ the references, from the solution notebooks
def references() -> tuple[dict, dict]:
    """exercise -> (function name, its def's source) and exercise -> the namespace its cell ran in."""
    import nbformat
    import numpy as np
    import torch
    import torch.nn.functional as F

    import fwdlib
    from fwdlib import algorithms, data, stats, train
    from fwdlib.algorithms import ff
    found, spaces = {}, {}
    for path in sorted((ROOT / "solutions").glob("*.ipynb")):
        namespace = {"torch": torch, "F": F, "np": np, "math": math, "fwdlib": fwdlib, "algorithms": algorithms,
                     "data": data, "stats": stats, "train": train, "ff": ff}
        for cell in nbformat.read(path, as_version=4).cells:
            calls = CHECK_CALL.findall(cell.source) if cell.cell_type == "code" else []
            if not calls:
                continue
            code = "\n".join(line for line in cell.source.splitlines() if not line.startswith("check."))
            code = code.replace("# BEGIN SOLUTION", "").replace("# END SOLUTION", "")
            exec(compile(code, str(path), "exec"), namespace)  # noqa: S102 - the course's own solutions
            tree = ast.parse(code)
            for lesson, number, name in calls:
                (node,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
                found[f"{lesson}.{number}"] = (name, ast.unparse(node))
                spaces[f"{lesson}.{number}"] = namespace
    return found, spaces


# ------------------------------------------------------------------ mutants
MODULES = {"torch", "F", "np", "math", "ff", "fwdlib", "stats", "train", "algorithms", "data", "cafo"}


def _is_function(func: ast.AST) -> bool:
    """A plain function (float, sorted, torch.sigmoid, np.median), not a method of a value (x.clone)."""
    if isinstance(func, ast.Name):
        return True
    while isinstance(func, ast.Attribute):
        func = func.value
    return isinstance(func, ast.Name) and func.id in MODULES


def _alternatives(node: ast.AST):
    """(what changed, the node that replaces `node`) for each mutation of one node."""
    text = ast.unparse
    if isinstance(node, ast.BinOp):
        for op in BINARY.get(type(node.op), []):
            yield "operator", ast.BinOp(node.left, op(), node.right)
        if isinstance(node.op, ORDERED):
            yield "operands swapped", ast.BinOp(node.right, node.op, node.left)
    elif isinstance(node, ast.AugAssign):
        for op in BINARY.get(type(node.op), []):
            yield "operator", ast.AugAssign(node.target, op(), node.value)
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        for op in COMPARE.get(type(node.ops[0]), []):
            yield "comparison", ast.Compare(node.left, [op()], node.comparators)
    elif isinstance(node, ast.BoolOp):
        yield "boolean operator", ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), node.values)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        yield "unary operator removed", node.operand
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield "boolean flipped", ast.Constant(not node.value)
    elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        for step in (1, -1):
            yield "number moved by one", ast.Constant(node.value + step)
    elif isinstance(node, ast.Attribute) and node.attr in REDUCTIONS:
        yield "reduction swapped", ast.Attribute(node.value, REDUCTIONS[node.attr], node.ctx)
    elif isinstance(node, ast.Attribute) and node.attr == "T":
        yield "transpose removed", node.value
    elif isinstance(node, ast.Slice) and (node.lower is None) != (node.upper is None):
        yield "slice turned around", ast.Slice(node.upper, node.lower, node.step)
    if isinstance(node, ast.Call):
        for i, kw in enumerate(node.keywords):
            if kw.arg in DROPPABLE_KEYWORDS:
                yield f"keyword {kw.arg} dropped", ast.Call(node.func, node.args, node.keywords[:i] + node.keywords[i + 1:])
        if _is_function(node.func):
            if len(node.args) == 1 and not node.keywords and not isinstance(node.args[0], ast.Starred):
                yield "call removed", node.args[0]
        elif isinstance(node.func, ast.Attribute):          # a method: x.clone() -> x, x.pow(2) -> x
            yield "call removed", node.func.value
        for i in range(len(node.args) - 1):
            swapped = list(node.args)
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
            if text(swapped[i]) != text(swapped[i + 1]):
                yield "arguments swapped", ast.Call(node.func, swapped, node.keywords)
    if isinstance(node, ast.Return) and node.value is not None:
        detached = ast.Call(ast.Attribute(node.value, "detach", ast.Load()), [], [])
        yield "detach added", ast.Return(detached)


def _nodes(function: ast.FunctionDef) -> list[ast.AST]:
    """The nodes a mutation may change, in a fixed order: the body, not the signature."""
    signature = {id(n) for n in ast.walk(function.args)}
    return [n for statement in function.body for n in ast.walk(statement) if id(n) not in signature]


def _bodies(function: ast.FunctionDef) -> list[list]:
    return [n.body for n in ast.walk(function) if isinstance(getattr(n, "body", None), list)]


def _statements(function: ast.FunctionDef):
    """(what changed, body number, statement index, the new statements) for removed calls and
    an added zero_grad after each statement of a step that is given an optimizer."""
    takes_optimizer = "optimizer" in [a.arg for a in function.args.args]
    for b, body in enumerate(_bodies(function)):
        for i, statement in enumerate(body):
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
                yield "statement removed", b, i, [ast.Pass()]
            if takes_optimizer and isinstance(statement, ast.Expr):
                yield "zero_grad added", b, i, [statement, ast.parse("optimizer.zero_grad()").body[0]]


def _replace(tree: ast.AST, target: ast.AST, replacement: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is target:
                setattr(parent, field, replacement)
                return
            if isinstance(value, list) and any(item is target for item in value):
                value[[id(item) for item in value].index(id(target))] = replacement
                return
    raise AssertionError("the node to mutate is not in the tree")


def _short(node) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def mutants(source: str) -> list[tuple[str, str]]:
    """Every single-point mutant of a function's source: (a description, the mutant's source).
    Each mutant is made on a fresh copy, its replacement built from the copy's own nodes."""
    tree = ast.parse(source)
    out, seen = [], {ast.unparse(tree)}

    def keep(description, mutated):
        code = ast.unparse(ast.fix_missing_locations(mutated))
        if code not in seen:
            seen.add(code)
            out.append((description, code))

    for index, node in enumerate(_nodes(tree.body[0])):
        for k in range(len(list(_alternatives(node)))):
            mutated = copy.deepcopy(tree)
            target = _nodes(mutated.body[0])[index]
            kind, replacement = list(_alternatives(target))[k]
            where = f"L{node.lineno}:{node.col_offset} {kind}: {_short(node)}"
            _replace(mutated, target, replacement)
            keep(f"{where} -> {_short(replacement)}", mutated)
    for kind, b, i, _ in list(_statements(tree.body[0])):
        mutated = copy.deepcopy(tree)
        body = _bodies(mutated.body[0])[b]
        new = [change for change in _statements(mutated.body[0]) if change[:3] == (kind, b, i)][0][3]
        statement = body[i]
        body[i:i + 1] = new
        keep(f"L{statement.lineno}:{statement.col_offset} {kind}: {_short(statement)}", mutated)
    return out


# ------------------------------------------------------------------ running the checks on them
class Timeout(BaseException):
    """A mutant ran too long (BaseException: a check's `except Exception` must not swallow it)."""


def _alarm(signum, frame):
    raise Timeout


def rejected(exercise: str, name: str, code: str, namespace: dict) -> bool:
    """Whether the exercise's check refuses this mutant of the reference."""
    from fwdlib.course.checks import EXERCISES
    space = dict(namespace)
    exec(compile(code, f"<mutant of {exercise}>", "exec"), space)  # noqa: S102 - mutants of our own solutions
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, TIMEOUT)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return not EXERCISES["ex" + exercise.replace(".", "_")](space[name])
    except Timeout:
        return True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def equivalents() -> dict:
    """(exercise, mutant description) -> why it computes the same function."""
    listed = {}
    for number, line in enumerate(EQUIVALENT.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ")]
        if len(parts) != 3 or not parts[2]:
            raise SystemExit(f"{EQUIVALENT.name}:{number}: expected 'exercise | mutant | why', got {line!r}")
        listed[(parts[0], parts[1])] = parts[2]
    return listed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated exercises, e.g. 2.1,6.3")
    parser.add_argument("--show", help="print every mutant of this exercise and its fate")
    args = parser.parse_args(argv)
    found, spaces = references()
    wanted = set(args.only.split(",")) if args.only else set(found) if not args.show else {args.show}
    listed = equivalents()
    errors, totals = [], defaultdict(int)
    print(f"{'exercise':9s}{'mutants':>8s}{'equivalent':>11s}{'rejected':>9s}{'score':>8s}{'seconds':>9s}")
    for exercise in sorted(wanted, key=lambda e: tuple(map(int, e.split(".")))):
        name, source = found[exercise]
        start, counts = time.perf_counter(), defaultdict(int)
        for description, code in mutants(source):
            killed = rejected(exercise, name, code, spaces[exercise])
            equivalent = (exercise, description) in listed
            if args.show:
                print(f"  {'rejected ' if killed else 'EQUIVALENT' if equivalent else 'SURVIVED '} {description}")
            if equivalent and killed:
                errors.append(f"{exercise} | {description}: listed as equivalent, but the check rejects it")
            elif not killed and not equivalent:
                errors.append(f"{exercise} | {description}: survived")
            counts["mutants"] += 1
            counts["equivalent"] += equivalent and not killed
            counts["rejected"] += killed
        live = {d for (e, d) in listed if e == exercise} - {d for d, _ in mutants(source)}
        errors += [f"{exercise} | {d}: listed as equivalent, but no such mutant exists" for d in sorted(live)]
        scored = counts["mutants"] - counts["equivalent"]
        score = counts["rejected"] / scored if scored else 1.0
        if score < PER_EXERCISE:
            errors.append(f"{exercise}: score {score:.0%} below {PER_EXERCISE:.0%}")
        print(f"{exercise:9s}{counts['mutants']:8d}{counts['equivalent']:11d}{counts['rejected']:9d}{score:8.0%}"
              f"{time.perf_counter() - start:9.1f}")
        for key in counts:
            totals[key] += counts[key]
    scored = totals["mutants"] - totals["equivalent"]
    total = totals["rejected"] / scored if scored else 1.0
    if total < TOTAL:
        errors.append(f"total score {total:.1%} below {TOTAL:.0%}")
    for error in errors:
        print("  " + error)
    print(f"mutation score: {totals['rejected']} of {scored} non-equivalent mutants rejected ({total:.1%})")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
