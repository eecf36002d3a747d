"""What a check compares besides values: copies of the inputs a call may change, whether it changed
them (a module's `.grad`, training flags and requires_grad included), and whether two answers of
the student's are the same answer."""
from __future__ import annotations

import copy
import math
import numbers

import numpy as np
import torch


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
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True))
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
    if isinstance(before, torch.nn.Module):
        return (f"your function changed `{name}` (its weights, buffers, training mode or requires_grad): leave "
                "the module as it was given (no .eval(), no optimizer step, no requires_grad_)")
    if isinstance(before, torch.Tensor):
        fix = f"{name}.clone()"
    elif isinstance(before, (list, tuple)) and before and isinstance(before[0], torch.Tensor):
        fix = f"[t.clone() for t in {name}]"
    else:
        fix = f"list({name})" if isinstance(before, list) else f"dict({name})"
    return f"your function changed its input `{name}` in place: work on a copy ({fix})"
