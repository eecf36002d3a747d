"""The mutant generator of scripts/mutants.py: each operator the issue asks for makes its mutant,
mutants are single-point and distinct, and the list of equivalent mutants is well formed."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import mutants  # noqa: E402


def made(source):
    return {code.split("\n", 1)[1].strip() for _, code in mutants.mutants(source)}


def test_each_operator_makes_its_mutant():
    source = '''def f(x, y, lr, optimizer):
    z = x.pow(2).sum(dim=1, keepdim=True) - y.clone()
    if lr < 0.5 and x is not None:
        optimizer.step()
    return torch.sigmoid(z / lr)[:, :3], sorted(set(y)), f2(x, y)
'''
    bodies = "\n".join(made(source))
    for mutant in ("x.pow(2).sum(dim=1, keepdim=True) + y.clone()",            # arithmetic swapped
                   "x.pow(2).mean(dim=1, keepdim=True)",                       # sum and mean swapped
                   "x.pow(2).sum(dim=2, keepdim=True)", "x.pow(2).sum(dim=0, keepdim=True)",   # the dim moved
                   "x.pow(2).sum(dim=1, keepdim=False)", "x.pow(2).sum(keepdim=True)",         # keepdim, dim dropped
                   "x.pow(3)", "lr <= 0.5", "lr > 0.5", "lr < 1.5", " or x is not None",      # constants, comparisons
                   "x is None", "- y\n", ", set(y), f2(x, y))", "return ((z / lr)[:, :3]",       # a call removed
                   "f2(y, x)", "(lr / z)", "[:, 3:]", "z * lr",                                # arguments, operands, slices
                   ".detach()", "optimizer.step()\n        optimizer.zero_grad()", "pass"):    # calls added, removed
        assert mutant in bodies, mutant


def test_mutants_are_distinct_and_differ_from_the_reference():
    source = "def f(a, b):\n    return a - b + 1\n"
    codes = [code for _, code in mutants.mutants(source)]
    assert len(codes) == len(set(codes)) and all(code.strip() != source.strip() for code in codes)


def test_the_equivalent_mutants_file_names_a_reason_for_each():
    listed = mutants.equivalents()
    assert listed and all(len(why.split()) >= 5 for why in listed.values())
    assert all(exercise.count(".") == 1 for exercise, _ in listed)


def test_every_exercise_check_has_a_reference_to_mutate():
    from fwdlib.course.checks import EXERCISES
    found, _ = mutants.references()
    assert set(found) == {name[2:].replace("_", ".") for name in EXERCISES}
