"""An exercise's contract, checked as properties on a battery of inputs against the reference.

For each input, in this order, a student's function must
1. give the reference's value (a known slip is named when the answer matches it on every input);
2. leave the caller's inputs as they were (a module's `.grad`, training flags and requires_grad
   included; arguments the task lets it update keep their requires_grad);
3. return no autograd graph where the reference returns none, and keep a floating input's dtype;
4. give the same result when called again (no hidden state, nothing accumulating in `.grad`);
5. where the answer is differentiable, pass the reference's gradient back to the inputs named by
   the case (a detached answer fails, and the message says so).
The first property that fails is named in the message, with the input it failed on (`Case.label`
says what that input is: "a row of zeros", "float64", "a batch of one").
"""
from __future__ import annotations

import contextlib
import inspect
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from .calls import Forbidden, StudentError, autograd_forbidden, stub
from .compare import Context, compare_tensors
from .engine import Mismatch, Result, describe, generator, not_attempted, small, verdict
from .inputs import agrees, doubled, fresh, gradients_changed, in_place_message, sizes_of, snapshot, unchanged


@dataclass(frozen=True)
class Case:
    """One input of the battery: its arguments, what it is, the arguments the answer must be
    differentiable in, and a tolerance multiplier (inputs of large magnitude round more)."""
    args: tuple
    label: str = "a random input"
    grad: tuple[str, ...] = ()
    tol: float = 1.0


@dataclass
class Contract:
    exercise: str
    reference: Callable
    cases: Sequence[Case]
    compare: Callable = compare_tensors
    slips: Sequence[tuple[Callable, str]] = ()       # (a plausible wrong answer, the message that names it)
    params: tuple[str, ...] = ()                     # the arguments' names as the task writes them
    mutable: tuple[str, ...] = ()                    # arguments the task allows to change in place
    deterministic: bool = True
    forbid_autograd: bool = False
    output: str = "result"                           # what the answer is, in messages: "loss", "probability"
    nonfinite: str = Context.nonfinite
    same: Callable | None = None                     # (student's answer, a slip's answer) -> bool; default: compare
    extra: Sequence[Callable] = ()                   # whole-function properties: call -> (message, input) or None
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        self.names = self.params or tuple(inspect.signature(self.reference).parameters)


class Checker:
    """Runs a contract's properties on one student's function."""

    def __init__(self, contract: Contract, student):
        self.contract, self.student = contract, student

    def call(self, args, forbid=None):
        forbid = self.contract.forbid_autograd if forbid is None else forbid
        try:
            with autograd_forbidden() if forbid else contextlib.nullcontext():
                return self.student(*args)
        except NotImplementedError as err:
            if stub(err):
                raise
            raise StudentError(err) from err
        except Exception as err:
            raise StudentError(err) from err

    def context(self, case: Case) -> Context:
        return Context(case.args, sizes_of(self.contract.names, case.args), case.tol, self.contract.nonfinite)

    def slip(self) -> str | None:
        """The message of the first known slip the student's answers match on every input where
        the slip gives an answer: one matching input could be another mistake that agrees there."""
        for wrong, message in self.contract.slips:
            try:
                compared = 0
                for case in self.contract.cases:
                    try:
                        wrong_answer = wrong(*fresh(case.args))
                    except Exception:  # noqa: BLE001 - the slip has no answer here
                        continue
                    answer = self.call(fresh(case.args))
                    if self.contract.same is not None:
                        if not self.contract.same(answer, wrong_answer):
                            raise Mismatch("not this slip")
                    else:
                        self.contract.compare(answer, wrong_answer, self.context(case))
                    compared += 1
            except Exception:  # noqa: BLE001 - not this slip
                continue
            if compared:
                return message
        return None

    def value(self, case: Case, got, expected) -> str | None:
        if got is Ellipsis:
            raise NotImplementedError
        try:
            self.contract.compare(got, expected, self.context(case))
        except Mismatch as err:
            return self.slip() or str(err)
        except Exception as err:  # noqa: BLE001 - the check's own failure, not the student's
            return (f"the check could not compare your answer ({type(err).__name__}: {err}); you returned "
                    f"{describe(got)[:200]}")
        return None

    def purity(self, left, copies) -> str | None:
        """The student's call must leave its inputs as the reference's call leaves them (unchanged,
        but for a BatchNorm's running statistics, which a forward in training mode updates)."""
        for name, before, after in zip(self.contract.names, left, copies):
            if name in self.contract.mutable:              # values may change; requires_grad may not
                if isinstance(before, torch.Tensor) and before.requires_grad != after.requires_grad:
                    return in_place_message(name, before, after)
                continue
            if gradients_changed(before, after):
                return (f"your function changed the `.grad` of `{name}`'s parameters (it left gradients there, "
                        "cleared the ones it was given or added to them): torch.autograd.grad returns the "
                        "gradients without touching `.grad`")
            if not unchanged(before, after):
                return in_place_message(name, before, after)
        return None

    @staticmethod
    def detached(got, expected) -> str | None:
        """An answer that carries an autograd graph where the reference's carries none."""
        pairs = zip(got, expected) if isinstance(expected, tuple) and isinstance(got, (tuple, list)) else [(got, expected)]
        for g, e in pairs:
            if isinstance(g, torch.Tensor) and g.requires_grad and isinstance(e, torch.Tensor) and not e.requires_grad:
                return ("your answer carries an autograd graph (requires_grad): return plain tensors "
                        "(.detach() them, or ask for no graph), or whatever uses them next builds on that graph")
        return None

    @staticmethod
    def dtype(got, expected) -> str | None:
        pairs = zip(got, expected) if isinstance(expected, tuple) else [(got, expected)]
        for g, e in pairs:
            if isinstance(e, torch.Tensor) and e.is_floating_point() and g.dtype != e.dtype:
                return (f"for {e.dtype} inputs you returned {g.dtype}: keep the input's dtype (a .float(), "
                        "a float32 tensor built inside or a NumPy round trip changed it)")
        return None

    def repeat(self, case: Case, copies, got) -> str | None:
        # A module is used again as it is, as a training loop would; everything else afresh.
        again = [c if isinstance(c, torch.nn.Module) else a for a, c in zip(fresh(case.args), copies)]
        second = self.call(again)
        if agrees(second, got):
            return None
        if agrees(second, doubled(got)):
            return ("a second call returned twice the first result: gradients accumulate in `.grad` "
                    "(zero them before the backward, or use torch.autograd.grad)")
        return ("a second call on the same input returned a different result: the function keeps hidden state "
                "or draws random numbers without a fixed seed")

    def gradient(self, case: Case) -> str | None:
        names, output = self.contract.names, self.contract.output
        index = [names.index(n) for n in case.grad]

        def leaves():
            args = list(fresh(case.args))
            for i in index:
                args[i] = args[i].detach().clone().requires_grad_(True)
            return args

        got_args, ref_args = leaves(), leaves()
        got, expected = self.call(got_args, forbid=False), self.contract.reference(*ref_args)
        if not isinstance(got, torch.Tensor) or not got.requires_grad:
            return (f"your {output} is detached: no gradient reaches {', '.join(f'`{n}`' for n in case.grad)} (a "
                    ".detach(), .item(), torch.tensor(...), a NumPy round trip or torch.no_grad() cut the graph)")
        weights = torch.randn(expected.shape, generator=generator(0), dtype=expected.dtype)
        theirs = torch.autograd.grad((got * weights).sum(), [got_args[i] for i in index], allow_unused=True)
        ours = torch.autograd.grad((expected * weights).sum(), [ref_args[i] for i in index], allow_unused=True)
        for name, g, e in zip(case.grad, theirs, ours):
            if g is None:
                if e is not None and bool(e.abs().gt(0).any()):
                    return f"no gradient reaches `{name}` from your {output} (it is computed from a detached copy)"
                continue
            e = torch.zeros_like(g) if e is None else e
            bad = ~torch.isfinite(g) & torch.isfinite(e)
            if bool(bad.any()):
                return (f"the gradient of your {output} with respect to `{name}` is not finite on this input, "
                        f"where the right one is: {self.contract.nonfinite}")
            if not torch.allclose(g.double(), e.double(), rtol=1e-4 * case.tol, atol=1e-6 * case.tol):
                return (f"your {output} has (nearly) the right value but not the right gradient with respect to "
                        f"`{name}`: a constant or factor slightly off, or a step autograd cannot follow (rounding, "
                        "a comparison, .data)")
        return None

    def properties(self, case: Case) -> str | None:
        copies, left = fresh(case.args), fresh(case.args)
        expected = self.contract.reference(*left)
        got = self.call(copies)
        return (self.value(case, got, expected) or self.purity(left, copies) or self.detached(got, expected)
                or self.dtype(got, expected)
                or (self.contract.deterministic and self.repeat(case, copies, snapshot(got)))
                or (case.grad and self.gradient(case)) or None)


def raised_message(err: Exception, exercise: str, nonfinite: str = Context.nonfinite) -> str:
    if isinstance(err, Forbidden):
        return (f"Exercise {exercise} asks for the closed forms, without autograd, and this check "
                f"switches autograd off: your code called {err}")
    message = f"your code raised {type(err).__name__}: {err}"
    if "view size is not compatible" in str(err):
        message += " (this input is not contiguous: .reshape or .flatten work where .view cannot)"
    elif isinstance(err, OverflowError):
        message += f" ({nonfinite})"
    return message


def check_each(exercise: str, student, settings, failure: Callable, success: str) -> Result:
    """A check of a whole process (a sampler, a training step), setting by setting:
    failure(student, *setting) names the first property the student broke there, or gives None."""
    if student is Ellipsis or student is None:
        print(f"Exercise {exercise} not attempted yet")
        return verdict(exercise, False)
    for setting, label in settings:
        try:
            found = failure(student, *setting)
        except Exception as err:  # noqa: BLE001 - the student's bug, reported as feedback
            if isinstance(err, NotImplementedError) and stub(err):
                print(not_attempted(exercise, err))
                return verdict(exercise, False)
            found = raised_message(err, exercise)
        if found:
            print(f"✗ Exercise {exercise}: {found}.\n  Failing input ({label})")
            return verdict(exercise, False)
    print(f"✓ Exercise {exercise}: {success}.")
    return verdict(exercise, True)


def check(contract: Contract, student) -> Result:
    """Every property on every input; the first failure is printed with its input. Warnings that the
    battery's edge cases provoke (a std over one unit, say) are the check's noise, not the student's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _check(contract, student)


def _check(contract: Contract, student) -> Result:
    exercise = contract.exercise
    if student is Ellipsis or student is None:
        print(f"Exercise {exercise} not attempted yet")
        return verdict(exercise, False)
    checker = Checker(contract, student)
    for number, case in enumerate(contract.cases):
        example = ", ".join(small(a) for a in case.args)
        try:
            failure = checker.properties(case)
        except NotImplementedError as err:
            if number == 0:                # a stub; raised on a later input it is the student's own gap
                print(not_attempted(exercise, err))
                return verdict(exercise, False)
            failure = raised_message(err, exercise, contract.nonfinite)
        except StudentError as err:
            failure = raised_message(err.__cause__, exercise, contract.nonfinite)
        except Exception as err:  # noqa: BLE001 - the check's own failure: said so, not blamed on the student
            failure = (f"the check itself failed on your answer ({type(err).__name__}: {err}); this is a bug in the "
                       "check, not necessarily in your code")
        if failure:
            print(f"✗ Exercise {exercise}: {failure}.\n  Failing input ({case.label}): ({example})")
            return verdict(exercise, False)
    for prop in contract.extra:
        try:
            failure = prop(checker.call)
        except StudentError as err:
            failure = raised_message(err.__cause__, exercise, contract.nonfinite), "a call with other arguments"
        except Mismatch as err:
            failure = str(err), "a call with other arguments"
        if failure:
            print(f"✗ Exercise {exercise}: {failure[0]}.\n  Failing input ({failure[1]})")
            return verdict(exercise, False)
    checked = ["values", "inputs left as they were"] + (["a second call agrees"] if contract.deterministic else []) \
        + (["gradients"] if any(c.grad for c in contract.cases) else []) \
        + (["without autograd"] if contract.forbid_autograd else [])
    print(f"✓ Exercise {exercise}: right on {len(contract.cases)} inputs ({', '.join(checked)}).")
    return verdict(exercise, True)

