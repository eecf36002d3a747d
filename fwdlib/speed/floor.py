"""The FLOP floor: how fast a rival would be against its twin if every FLOP cost the same.

Per step, the ratio of the two steps' counted FLOPs; per epoch of the whole training, the ratio of
the FLOPs a short fit counts (stage preparation, steps and validation). A measured time ratio at
the floor means the rival runs its arithmetic as efficiently as its twin.

Only the matmuls' time shrinks with the FLOPs. The rest of the twin's time (the optimizer over the
same parameters, elementwise ops, Python between ops) is work a rival like MF does alike, so
`Floor` also gives the floor with the rest: the twin's matmul time scaled by the FLOP ratio, plus
the rest of its time as it is. Set against that, the operation furthest above its share names what
keeps a rival above its floor (`ops.profile_ops` measures each op's share).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import data as datasets
from ..runs.build import build_model, fit_spec
from ..runs.spec import RunSpec
from ..session import seed_all
from .ops import MATMULS, OpProfile, profile_ops

FLOOR_TOLERANCE = 0.05          # "at its floor": a measured ratio within 5% of it


def duration(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if abs(seconds) < 1 else f"{seconds:.1f} s"


def shares(ops: list) -> str:
    """"aten::mm 40%, aten::addmm 20%": [op, share] pairs as a reader reads them."""
    return ", ".join(f"{op} {share:.0%}" for op, share in ops)


def as_ratio(value: float) -> str:
    """Two decimals, or two significant digits where those would print 0.00 (CaFo's predictor step)."""
    return f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


@dataclass
class Floor:
    """A rival's time against its twin's: the measured ratio, the FLOP floor (the counted FLOPs'
    ratio) and the floor with the rest (see the module). Per op, the seconds a rival step (or
    epoch) spends in it above each floor: `excess_s` above the floor with the rest (the matmuls
    above their FLOPs at the twin's matmul rate, every other op above the twin's own time in it),
    `excess_flops_s` above the FLOP floor (every op above the twin's time in it times the ratio)."""
    measured: float
    flops_ratio: float
    twin_matmul_share: float
    excess_s: dict
    excess_flops_s: dict
    twin_rest: list             # the twin's largest ops outside the matmuls: [op, share of its time]
    rival_matmuls: list         # the rival's largest matmul ops: [op, share of its time]

    @classmethod
    def of(cls, rival: OpProfile, twin: OpProfile, measured: float | None = None) -> Floor:
        """`measured`: the time ratio as timed apart from the profiles (interleaved blocks, whole fits);
        by default the ratio of the profiled times."""
        measured = rival.seconds / twin.seconds if measured is None else measured
        ratio = rival.flops / twin.flops
        # each op's time in units of one twin step: the rival's at the measured ratio, the twin's
        rival_s = {MATMULS: measured * rival.matmul_share, **{op: measured * s for op, s in rival.op_share.items()}}
        twin_s = {MATMULS: twin.matmul_share, **twin.op_share}
        ops = {*rival_s, *twin_s}

        def above(floor_share) -> dict:
            return {op: (rival_s.get(op, 0.0) - floor_share(op)) * twin.seconds for op in ops}

        return cls(measured, ratio, twin.matmul_share,
                   above(lambda op: twin_s.get(op, 0.0) * (ratio if op == MATMULS else 1)),
                   above(lambda op: twin_s.get(op, 0.0) * ratio), [list(kv) for kv in twin.top()],
                   [list(kv) for kv in rival.top(2, matmuls=True)])

    @property
    def with_rest(self) -> float:
        """The floor with the rest: the twin's matmul share scaled by the FLOP ratio, the rest as it is."""
        return self.flops_ratio * self.twin_matmul_share + 1 - self.twin_matmul_share

    @property
    def distance(self) -> float:
        """How far the measured ratio lies above the FLOP floor (negative: below it)."""
        return self.measured / self.flops_ratio - 1

    def verdict(self) -> str:
        """Where the measured ratio lies: at or below the FLOP floor; at the floor with the rest (and
        why that lies higher); or above the FLOP floor, named by the op furthest above its share.
        (A rival whose step has little of the twin's rest, like CaFo's predictor, can lie between
        the two floors.)"""
        if self.distance <= FLOOR_TOLERANCE:
            return "at its FLOP floor" if self.distance >= -FLOOR_TOLERANCE else "below its FLOP floor"
        with_rest = f"its floor with the rest (x{as_ratio(self.with_rest)})"
        if abs(self.measured / self.with_rest - 1) <= FLOOR_TOLERANCE:
            return (f"at {with_rest}: the twin spends {1 - self.twin_matmul_share:.0%} of its time outside "
                    f"matmuls ({shares(self.twin_rest)}), work that does not shrink with the FLOPs")
        if self.measured > self.with_rest:
            op, seconds = max(self.excess_s.items(), key=lambda kv: kv[1])
            where = "their FLOPs at the twin's matmul rate" if op == MATMULS else "in the twin"
            return f"above {with_rest}: {self._named(op)} {duration(seconds)} more than {where}"
        op, seconds = max(self.excess_flops_s.items(), key=lambda kv: kv[1])
        return (f"below {with_rest}, above its FLOP floor: {self._named(op)} {duration(seconds)} more than "
                f"x{as_ratio(self.flops_ratio)} the twin's time in {'them' if op == MATMULS else 'it'}")

    def _named(self, op: str) -> str:
        """An op and its verb; the matmuls with the rival's largest among them."""
        return f"{op} takes" if op != MATMULS else f"the matmuls ({shares(self.rival_matmuls)} of its time) take"

    def text(self) -> str:
        return (f"x{as_ratio(self.measured)} (FLOP floor x{as_ratio(self.flops_ratio)}, {100 * self.distance:+.0f}%: "
                f"{self.verdict()})")


def fit_ops(spec: RunSpec, data: datasets.Dataset, n_train: int | None = None) -> OpProfile:
    """One epoch of the whole training as `speed` times it (stage preparation, steps, validation),
    operation by operation, from a short fit over the first examples: every part scales with the
    examples, so two runs' profiles divide into the floor of their epoch times. (A closed-form
    solve, e.g. CaFo's `mse` predictors, is not a matmul and is not counted in the FLOPs.)"""
    n = n_train or 16 * spec.batch_size
    small = datasets.first(data, n, max(1, round(n * len(data.val) / len(data.train))))
    models = []
    for _ in range(2):                      # one fit counted, one profiled; built outside both
        seed_all(spec.seed)
        models.append(build_model(spec, small))

    def fit() -> int:
        return fit_spec(models.pop(), small, spec.replace(cuda_graphs=False)).epochs

    return profile_ops(fit, data.device)
