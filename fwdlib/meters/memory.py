"""Training memory, measured the same way for every algorithm on every device.

A training step needs, besides the batch:
- the tensors autograd saves for the backward pass (activations, mostly), at their peak;
- the parameters (and buffers), their gradients, and the optimizer's state (Adam: two tensors
  per parameter);
- for algorithms trained in stages, the features or activations cached for the stage (CaFo's
  block outputs, greedy MF's frozen layers' activations), held for the whole stage;
- for forward gradients, the random directions forward mode carries beside the values: nothing
  autograd saves, so the algorithm counts them (`Algorithm.tangent_bytes`): a whole parameter-sized
  direction for Baydin's global loss, one layer's activities at a time for the local one.

The saved tensors are counted with `torch.autograd.graph.saved_tensors_hooks`: every tensor
autograd packs is counted once (a ReLU's output that the next Linear also saves is one tensor,
not two), from when it is saved until autograd releases it. Parameters that autograd saves (a
weight, for the input gradient) are counted as parameters. This works on CPU, CUDA and MPS alike,
unlike the CUDA allocator's peak (GPU only) or a process's resident memory (which every earlier
run in the process shares), so both members of a pair are measured on equal terms everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch



@dataclass(frozen=True)
class StepMemory:
    """Bytes of one training step, by part; `total` is their sum."""
    saved_for_backward: int
    parameters: int
    gradients: int
    optimizer_state: int
    stage_cache: int = 0
    tangents: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class _Held:
    """A saved tensor, counted while autograd keeps it."""

    def __init__(self, tensor: torch.Tensor, meter: "SavedTensors"):
        self.tensor, self.meter = tensor, meter
        self.key = (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)
        meter.hold(self.key, tensor.numel() * tensor.element_size())

    def __del__(self):
        self.meter.release(self.key)


class SavedTensors:
    """Context manager: the peak bytes of tensors saved for backward inside it, each counted
    once however many operations save it; tensors sharing memory with `exclude` are skipped."""

    def __init__(self, exclude=()):
        self.excluded = {t.data_ptr() for t in exclude}
        self.counts: dict = {}
        self.live = self.peak = 0

    def hold(self, key, nbytes: int) -> None:
        if key not in self.counts:
            self.counts[key] = [0, nbytes]
            self.live += nbytes
            self.peak = max(self.peak, self.live)
        self.counts[key][0] += 1

    def release(self, key) -> None:
        entry = self.counts.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.counts[key]

    def _pack(self, tensor):
        return tensor if tensor.data_ptr() in self.excluded else _Held(tensor, self)

    @staticmethod
    def _unpack(held):
        return held.tensor if isinstance(held, _Held) else held

    def __enter__(self) -> "SavedTensors":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def stage_cache_bytes(stage_data, data) -> int:
    """Bytes of what a stage trains on that is not the dataset itself (features, activations)."""
    return sum(_bytes([part.x]) for part, original in ((stage_data.train, data.train), (stage_data.val, data.val))
               if part.x is not original.x)


def step_memory(algorithm, saved: SavedTensors, stage_cache: int = 0) -> StepMemory:
    """The parts of a step's memory, read after the step ran under `saved`."""
    state = [v for o in algorithm.optimizers() for s in o.state.values() for v in s.values()
             if isinstance(v, torch.Tensor)]
    return StepMemory(saved_for_backward=saved.peak,
                      parameters=_bytes(algorithm.parameters()) + _bytes(algorithm.buffers()),
                      gradients=_bytes(p.grad for p in algorithm.parameters() if p.grad is not None),
                      optimizer_state=_bytes(state), stage_cache=stage_cache, tangents=algorithm.tangent_bytes)
