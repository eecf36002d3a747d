"""CUDA graphs for training steps: one replay instead of hundreds of kernel launches.

At batch 128 the study's networks are launch-bound: the GPU waits for Python to queue each
small kernel. A CUDA graph records one whole training step (forward, backward, optimizer step)
once and replays it with a single launch. Recipe (PyTorch's "whole network capture"):

1. run a few real steps on a side stream (allocations and autotuning settle);
2. capture one step into a graph, reading from static input tensors;
3. for every later batch of the same shape, copy it into the static inputs and replay.

Requirements met by fwdlib's algorithms: fixed shapes, no host synchronisation inside a step,
and capturable optimizers: `GraphedStep` sets `capturable=True` on every optimizer the algorithm
lists in `optimizers()` before its first step, and turns each learning rate into a tensor on the
GPU (AdamW, and fused SGD), so that a schedule (`set_lr`) changes what the graph reads instead of
a number baked into it. (A foreach SGD's learning rate stays a number: a schedule on it needs
eager steps, `cuda_graphs=False`.)
A batch of another shape (the last, partial one) runs eagerly. On CPU or MPS the step always
runs eagerly.
"""
from __future__ import annotations

import torch

WARMUP_STEPS = 3


class GraphedStep:
    """Callable like `algorithm.train_step(x, y, stage)`, replaying a CUDA graph when it can."""

    def __init__(self, algorithm, stage, warmup_steps: int = WARMUP_STEPS):
        self.algorithm, self.stage, self.warmup_steps = algorithm, stage, warmup_steps
        self.steps, self.graph, self.failure = 0, None, None
        self.side_stream = torch.cuda.Stream()
        for optimizer in algorithm.optimizers():
            if not optimizer.state:                   # graph-safe step counters live on the GPU
                for group in optimizer.param_groups:
                    if "capturable" in group:
                        group["capturable"] = True
                    if "capturable" in group or group.get("fused"):   # kernels that read a tensor lr
                        device = group["params"][0].device
                        group["lr"] = torch.as_tensor(group["lr"], dtype=torch.float32, device=device)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.failure is not None:
            return self.algorithm.train_step(x, y, self.stage)
        if self.graph is not None:
            if x.shape != self.static_x.shape:
                return self.algorithm.train_step(x, y, self.stage)
            self.static_x.copy_(x)
            self.static_y.copy_(y)
            self.graph.replay()
            return {k: v.clone() for k, v in self.static_out.items()}   # the next replay overwrites
        self.steps += 1
        if self.steps <= self.warmup_steps:          # real training steps, on a side stream
            self.side_stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(self.side_stream):
                out = self.algorithm.train_step(x, y, self.stage)
            torch.cuda.current_stream().wait_stream(self.side_stream)
            return out
        self.static_x, self.static_y = x.clone(), y.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.static_out = self.algorithm.train_step(self.static_x, self.static_y, self.stage)
        except Exception as err:  # noqa: BLE001 - a step that cannot be captured still trains
            self.failure = f"capture failed, running eagerly: {type(err).__name__}: {err}"
            torch.cuda.synchronize()
            return self.algorithm.train_step(x, y, self.stage)
        self.graph = graph
        self.graph.replay()                           # capture does not run the step: run it now
        return {k: v.clone() for k, v in self.static_out.items()}


def execution_mode(requested: bool, device: torch.device) -> str:
    """What `fit` will actually do, for the report."""
    if not requested:
        return "eager"
    return "cuda-graph" if device.type == "cuda" else f"eager (CUDA graphs need CUDA; device is {device.type})"
