"""Checks of the course's exercises, one module per lesson: `check.ex2_1(rms_normalise)` tests the
exercise's contract as properties (contract.py) on a battery of inputs against the reference and
names the property that failed, or says which it checked. Each check returns a `Result` that is
truthy when it passed, so a notebook can assert it. `make mutants` measures how many wrong answers
generated from the references each check rejects.
"""
from __future__ import annotations

import re
from types import SimpleNamespace

from . import lesson00, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07, lesson08
from .compare import compare_tensors
from .engine import Result, experiment_data, solved
from .quizzes import QUIZZES, quiz

EXERCISES = {name: fn for lesson in (lesson00, lesson01, lesson02, lesson03, lesson04, lesson05, lesson06, lesson07,
                                                           lesson08)
             for name, fn in vars(lesson).items() if re.fullmatch(r"ex\d+_\d+", name)}
check = SimpleNamespace(**EXERCISES, quiz=quiz, solved=solved, experiment_data=experiment_data)

__all__ = ["EXERCISES", "QUIZZES", "Result", "check", "compare_tensors", "experiment_data", "quiz", "solved"]
