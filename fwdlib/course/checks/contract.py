"""An exercise's contract, checked as properties on a battery of inputs against the reference.

For each input, in this order, a student's function must
1. give the reference's value (a known slip is named when the answer matches it on every input);
2. leave the caller's inputs as they were (a module's `.grad` included);
3. keep a floating input's dtype;
4. give the same result when called again (no hidden state, nothing accumulating in `.grad`);
5. where the answer is differentiable, pass the reference's gradient back to the inputs named by
   the case (a detached answer fails, and the message says so).
The first property that fails is named in the message, with the input it failed on (`Case.label`
says what that input is: "a row of zeros", "float64", "a batch of one").
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import math
import numbers
import re
import sys
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch.autograd.variable import Variable

from .compare import Context, compare_tensors
from .engine import Mismatch, Result, describe, generator, not_attempted, small, verdict


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
    overflow: str = Context.overflow
    same: Callable | None = None                     # (student's answer, a slip's answer) -> bool; default: compare
    extra: Sequence[Callable] = ()                   # whole-function properties: call -> (message, input) or None
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        self.names = self.params or tuple(inspect.signature(self.reference).parameters)


def stub(err: NotImplementedError) -> bool:
    """An exercise's stub ("Exercise 2.1: replace this line..."), not a NotImplementedError of the
    student's own or of torch's."""
    return not str(err) or bool(re.search(r"Exercise \d+\.\d+|your code here|replace this line", str(err), re.I))


class StudentError(Exception):
    """An exception raised inside the student's function (the check's own failures are not)."""


class Forbidden(Exception):
    """Raised inside the student's code when it calls a tool the task forbids."""


FORWARD_MODE = ("torch/_functorch/eager_transforms.py", "torch/autograd/forward_ad.py", "torch/autograd/functional.py")


@contextlib.contextmanager
def autograd_forbidden():
    """No graph can be built and every way into autograd is refused, however it was imported: the
    engine that runs every backward is swapped out, turning grad mode on raises, and a profiler
    notes any call into torch.func's transforms or forward-mode AD (raised once the call ends)."""
    def refuse(name):
        def call(*args, **kwargs):
            raise Forbidden(name)
        return call

    class Refused:                  # every backward, however it was imported, ends in the engine
        def __getattr__(self, name):
            raise Forbidden("autograd (a backward or torch.autograd.grad)")

    def set_grad(mode):
        if mode:
            raise Forbidden("torch.enable_grad / torch.set_grad_enabled(True)")
        setter(mode)

    used = []

    def watch(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.replace("\\", "/").endswith(FORWARD_MODE):
            used.append(frame.f_code.co_name)

    targets = [(torch.autograd, "grad"), (torch.autograd, "backward"), (torch.Tensor, "backward")]
    saved = [(owner, name, getattr(owner, name)) for owner, name in targets]
    engine, setter, profiler = Variable._execution_engine, torch._C._set_grad_enabled, sys.getprofile()
    with torch.no_grad():
        try:
            for owner, name, _ in saved:
                setattr(owner, name, refuse(f"{owner.__name__}.{name}"))
            Variable._execution_engine, torch._C._set_grad_enabled = Refused(), set_grad
            sys.setprofile(watch)
            yield
        finally:
            sys.setprofile(profiler)
            Variable._execution_engine, torch._C._set_grad_enabled = engine, setter
            for owner, name, original in saved:
                setattr(owner, name, original)
    if used:
        raise Forbidden(f"torch.func / forward-mode autograd ({used[0]})")


def fresh(args) -> tuple:
    """A deep copy of a case's arguments that a call may change; a module keeps its `.grad`
    (deepcopy drops it, and a case may hand over gradients a right answer must leave alone)."""
    copies = copy.deepcopy(args)
    for original, twin in zip(args, copies):
        if isinstance(original, torch.nn.Module):
            for p, q in zip(original.parameters(), twin.parameters()):
                q.grad = None if p.grad is None else p.grad.clone()
    return tuple(copies)


def sizes_of(names, args) -> dict:
    """The sizes an input shows, by where they come from: a missing factor is often one of them."""
    sizes = {}
    for name, arg in zip(names, args):
        if isinstance(arg, torch.Tensor):
            sizes.update({f"dim {d} of `{name}`": n for d, n in enumerate(arg.shape)})
        elif isinstance(arg, (list, tuple, dict)):
            sizes[f"the length of `{name}`"] = len(arg)
    return sizes


def snapshot(value):
    """A copy of an answer that a later call cannot change (a returned `.grad` is updated in place)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value)
    return copy.deepcopy(value)


def unchanged(before, after) -> bool:
    if isinstance(before, torch.Tensor):
        return isinstance(after, torch.Tensor) and before.shape == after.shape and \
            before.requires_grad == after.requires_grad and \
            bool(((before.detach() == after.detach()) | (before.isnan() & after.isnan())).all())
    if isinstance(before, torch.nn.Module):
        return all(unchanged(p, q) for p, q in zip(before.state_dict().values(), after.state_dict().values())) \
            and [m.training for m in before.modules()] == [m.training for m in after.modules()] \
            and [p.requires_grad for p in before.parameters()] == [p.requires_grad for p in after.parameters()]
    if isinstance(before, dict):
        return isinstance(after, dict) and list(before) == list(after) and \
            all(unchanged(before[k], after[k]) for k in before)
    if isinstance(before, (list, tuple)):
        return type(after) is type(before) and len(before) == len(after) and \
            all(unchanged(a, b) for a, b in zip(before, after))
    return before == after


def agrees(a, b) -> bool:
    """Two answers of the student's are the same answer (to float rounding)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.allclose(a.detach().double(), b.detach().double(), rtol=1e-6,
                                                          atol=1e-9, equal_nan=True))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(agrees(x, y) for x, y in zip(a, b))
    if isinstance(a, numbers.Real) and isinstance(b, numbers.Real) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b))
    return a == b


def doubled(value):
    if isinstance(value, (list, tuple)):
        return type(value)(doubled(v) for v in value)
    return 2 * value if isinstance(value, (torch.Tensor, numbers.Real)) else value


def gradients_changed(before, after) -> bool:
    """Whether a call touched a module's `.grad` (set, cleared or added to it)."""
    if not isinstance(before, torch.nn.Module):
        return False
    return any((p.grad is None) != (q.grad is None) or (p.grad is not None and not torch.equal(p.grad, q.grad))
               for p, q in zip(before.parameters(), after.parameters()))


def in_place_message(name, before, after) -> str:
    if isinstance(before, torch.Tensor) and before.requires_grad != after.requires_grad:
        return (f"your function switched on requires_grad of the caller's `{name}`: work on "
                f"{name}.detach().clone() (the caller's tensors must come back as they were given)")
    if isinstance(before, torch.Tensor):
        fix = f"{name}.clone()"
    elif isinstance(before, (list, tuple)) and before and isinstance(before[0], torch.Tensor):
        fix = f"[t.clone() for t in {name}]"
    else:
        fix = f"list({name})" if isinstance(before, list) else f"dict({name})"
    return f"your function changed its input `{name}` in place: work on a copy ({fix})"


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
        return Context(case.args, sizes_of(self.contract.names, case.args), case.tol, self.contract.overflow)

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

    def value(self, case: Case, got) -> str | None:
        expected = self.contract.reference(*fresh(case.args))
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

    def purity(self, case: Case, copies) -> str | None:
        for name, before, after in zip(self.contract.names, case.args, copies):
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

    def detached(self, case: Case, got) -> str | None:
        """An answer that carries an autograd graph where the reference's carries none."""
        expected = self.contract.reference(*fresh(case.args))
        pairs = zip(got, expected) if isinstance(expected, tuple) and isinstance(got, (tuple, list)) else [(got, expected)]
        for g, e in pairs:
            if isinstance(g, torch.Tensor) and g.requires_grad and isinstance(e, torch.Tensor) and not e.requires_grad:
                return ("your answer carries an autograd graph (requires_grad): return plain tensors "
                        "(.detach() them, or ask for no graph), or whatever uses them next builds on that graph")
        return None

    def dtype(self, case: Case, got) -> str | None:
        expected = self.contract.reference(*fresh(case.args))
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
                        f"where the right one is: {self.contract.overflow}")
            if not torch.allclose(g.double(), e.double(), rtol=1e-4 * case.tol, atol=1e-6 * case.tol):
                return (f"your {output} has the right value but the wrong gradient with respect to `{name}` "
                        "(a step autograd cannot follow: rounding, a comparison, .data or an in-place trick)")
        return None

    def properties(self, case: Case) -> str | None:
        copies = fresh(case.args)
        got = self.call(copies)
        return (self.value(case, got) or self.purity(case, copies) or self.detached(case, got) or self.dtype(case, got)
                or (self.contract.deterministic and self.repeat(case, copies, snapshot(got)))
                or (case.grad and self.gradient(case)) or None)


def raised_message(err: Exception, exercise: str, overflow: str = Context.overflow) -> str:
    if isinstance(err, Forbidden):
        return (f"Exercise {exercise} asks for the closed forms, without autograd, and this check "
                f"switches autograd off: your code called {err}")
    message = f"your code raised {type(err).__name__}: {err}"
    if "view size is not compatible" in str(err):
        message += " (this input is not contiguous: .reshape or .flatten work where .view cannot)"
    elif isinstance(err, OverflowError):
        message += f" ({overflow})"
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
            failure = raised_message(err, exercise, contract.overflow)
        except StudentError as err:
            failure = raised_message(err.__cause__, exercise, contract.overflow)
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
            failure = raised_message(err.__cause__, exercise, contract.overflow), "a call with other arguments"
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


__all__ = ["Case", "Contract", "check", "describe"]
