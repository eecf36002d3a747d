"""How fast a training step is, where its time goes, and how far it is from the machine's limit.

    fwdlib speed                      # every case; --only mf+per-batch,bp-mlp@mf+per-batch

Each case is a run of the `paper` preset, its RunSpec as the benchmark would train it (the
same batch, config and augmentation); the command only caps its epochs. For each: seconds per epoch (beside the study's A100 figure), and
for one eager step the time of its parts:

    forward      everything not listed below (the algorithm's own passes, its losses)
    backward     every .backward() call
    optimizer    every optimizer.step()
    extra pass   passes an algorithm makes besides learning (FF's neutral-label pass for its head)

plus the step's matrix-multiply FLOPs (counted by torch.utils.flop_counter) divided by its time,
against the peak the same device reaches on one large torch.mm in the same dtype (on one large
3x3 convolution for a step whose matmul time is mostly convolutions): a printed "fraction of the
limit" on any machine, CPU or GPU.

steps     where a step's time goes (parts, FLOPs), interleaved rival-against-twin timing
ops       where a run's time goes operation by operation (torch.profiler), the matmuls apart
floor     the FLOP floor of a rival against its twin, per step and per epoch, and what keeps it above
cases     every case timed: the command fwdlib speed
"""
from ..launch import lazy

NAMES = {**{n: f".floor:{n}" for n in ("FLOOR_TOLERANCE", "Floor", "fit_ops")},
         **{n: f".ops:{n}" for n in ("MATMULS", "OUTSIDE", "OpProfile", "profile_ops")},
         **{n: f".cases:{n}" for n in ("SPEED_CASES", "case_specs", "describe", "label", "main", "speed",
                                          "study_s_per_epoch", "synthetic", "timing_data")},
         **{n: f".steps:{n}" for n in ("PARTS", "StepBreakdown", "conv_peak", "first_stage_batch",
                                       "first_stage_breakdown", "interleaved_step_ratio", "matmul_peak",
                                       "step_breakdown")}}
__getattr__ = lazy(__name__, NAMES)     # `fwdlib speed` imports torch inside fwdlib.launch's boundary
__all__ = sorted(NAMES)
