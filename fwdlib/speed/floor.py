"""The FLOP floor: how fast a rival would be against its twin if every FLOP cost the same.

Per step, the ratio of the two steps' counted FLOPs; per epoch of the whole training, the ratio of
the FLOPs a short fit counts (stage preparation, steps and validation). A measured time ratio at
the floor means the rival runs its arithmetic as efficiently as its twin. The optimizer's step is
memory-bound and the same work in both members (the same parameters, give or take MF's C x h
projections), so it does not shrink with the FLOPs: `Floor` also gives the floor with it added,
and names the part whose time lies furthest above its FLOPs at the twin's rate.
"""
from __future__ import annotations

from dataclasses import dataclass

from torch.utils.flop_counter import FlopCounterMode

from .. import data as datasets
from ..bench.runner import build_model, fit_spec
from ..bench.spec import RunSpec
from ..utils import seed_all
from .steps import StepBreakdown

FLOOR_TOLERANCE = 0.05          # "at its floor": a measured ratio within 5% of it


@dataclass
class Floor:
    """A rival's step against its twin's: the measured time ratio, the FLOP floor (the counted
    FLOPs' ratio), and the floor with the optimizer: the rival's FLOPs at the rate the twin runs
    its own (twin FLOPs / its step without the optimizer) plus the rival's optimizer step, which is
    memory-bound and the same work in both. `excess_ms`: each part's time above its FLOPs at the
    twin's rate (the optimizer: above the twin's), which names what keeps a rival above."""
    measured: float
    flops_ratio: float
    with_optimizer: float
    excess_ms: dict

    @classmethod
    def of(cls, rival: StepBreakdown, twin: StepBreakdown, measured: float | None = None) -> Floor:
        """`measured`: the step ratio as timed apart from the breakdowns (interleaved blocks)."""
        twin_rate = twin.flops / (twin.step - twin.optimizer)
        part_flops = rival.part_flops or {"forward": rival.flops}
        excess = {part: 1e3 * (seconds - (twin.optimizer if part == "optimizer"
                                          else part_flops.get(part, 0) / twin_rate))
                  for part, seconds in rival.parts.items()}
        return cls(measured or rival.step / twin.step, rival.flops / twin.flops,
                   (rival.flops / twin_rate + rival.optimizer) / twin.step, excess)

    @property
    def distance(self) -> float:
        """How far the measured ratio lies above the FLOP floor (negative: below it)."""
        return self.measured / self.flops_ratio - 1

    def verdict(self) -> str:
        if self.distance <= FLOOR_TOLERANCE:
            return "at its FLOP floor" if self.distance >= -FLOOR_TOLERANCE else "below its FLOP floor"
        if self.measured <= self.with_optimizer * (1 + FLOOR_TOLERANCE):
            return (f"above it by the optimizer's step, the same work in both (floor with it "
                    f"x{self.with_optimizer:.2f})")
        part, ms = max(self.excess_ms.items(), key=lambda kv: kv[1])
        return (f"above its floor with the optimizer (x{self.with_optimizer:.2f}): its {part} takes {ms:.1f} ms "
                "more than its FLOPs at the twin's rate")

    def text(self) -> str:
        return (f"x{self.measured:.2f} (FLOP floor x{self.flops_ratio:.2f}, {100 * self.distance:+.0f}%: "
                f"{self.verdict()})")


def fit_flops_per_epoch(spec: RunSpec, data: datasets.Dataset, n_train: int | None = None) -> float:
    """Matmul and convolution FLOPs per epoch of the whole training as `speed` times it (stage
    preparation, steps, validation), counted on a short fit over the first examples: every part
    scales with the examples, so two runs' counts divide into the floor of their epoch times.
    (A closed-form solve, e.g. CaFo's `mse` predictors, is not a matmul and is not counted.)"""
    n = n_train or 4 * spec.batch_size
    small = datasets.first(data, n, max(1, round(n * len(data.val) / len(data.train))))
    seed_all(spec.seed)
    model = build_model(spec, small)
    with FlopCounterMode(display=False) as counter:
        history = fit_spec(model, small, spec.replace(cuda_graphs=False))
    return counter.get_total_flops() / history.epochs
