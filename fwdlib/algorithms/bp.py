"""The backprop twins: the same layers as each forward-only rival, trained end to end.

One cross-entropy loss on the output; `loss.backward()` sends its gradient through every
layer (this is exactly what FF, CaFo and MF avoid).

Each twin also runs with activation checkpointing (`checkpoint=True`, the entry variant
"bp-mlp+checkpoint@mf"): the memory-fair twin. Each block keeps only its input for the backward
pass and is run a second time there, one block at a time (`Recomputed`): memory traded for a
second forward. The gradients, and so the whole training, are the plain twin's.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import LR_BP, WD_BP, Algorithm, accuracy_count, conv_blocks, make_optimizer, mlp_layers, require_images


class Recomputed(torch.autograd.Function):
    """`block(x)` without its activations: the forward pass keeps only the block's input; the
    backward pass runs the block again, with gradients on, and backpropagates through that copy.
    While it does, the copy's activations exist, one block's at a time, on top of the inputs of the
    blocks before it (those after it were released as the pass went through them; the memory
    meter counts all of it). The gradients go to the parameters' .grad, as
    loss.backward() puts them (torch.autograd.grad through a block is not supported), and the rerun
    must compute what the first run did: no dropout or autocast inside a block (the twins have none;
    torch.utils.checkpoint keeps their state for the rerun, at the price of a longer story)."""

    @staticmethod
    def forward(ctx, block, x, *parameters):
        ctx.block = block
        ctx.save_for_backward(x)
        return block(x)                  # a Function's forward records no graph: nothing else is kept

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        x = x.detach().requires_grad_(ctx.needs_input_grad[1])
        with torch.enable_grad(), batch_statistics_only(ctx.block):
            out = ctx.block(x)                                   # the second forward
        # into the parameters' .grad, as the plain backward pass puts them (the parameters are inputs
        # above only so that the pass reaches this block when its input needs no gradient)
        torch.autograd.backward(out, grad)
        return None, x.grad, *(None for _ in ctx.block.parameters())   # x.grad: None for the images


@contextlib.contextmanager
def batch_statistics_only(block: nn.Module):
    """The second forward normalises with the batch's statistics, as the first did, but leaves the
    running averages alone: updated twice, they would make a different model from the plain twin."""
    norms = [m for m in block.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


def run_block(block: nn.Module, x: torch.Tensor, checkpoint: bool) -> torch.Tensor:
    """`block(x)`, recomputed in the backward pass when `checkpoint` (and gradients are on)."""
    if checkpoint and torch.is_grad_enabled():
        return Recomputed.apply(block, x, *block.parameters())
    return block(x)


class BackpropTwin(Algorithm):
    """Shared step: forward, one loss, full backward, one optimizer step."""

    search_space = (LR_BP, WD_BP)
    variants = {"checkpoint": {"checkpoint": True}}
    flow = {"title": "Backprop (BP): one loss, gradients through every layer",
            "layers": [("x", "input"), ("Linear+ReLU 1", "trained"), ("Linear+ReLU 2", "trained"), ("head", "trained")],
            "losses": [("cross-entropy", (1, 2, 3))], "detach": False}

    def train_step(self, x, y, stage):
        logits = self.logits(x)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), "correct": accuracy_count(logits.detach(), y)}


class BPMLP(BackpropTwin):
    """Linear+ReLU hidden layers (`hidden` widths) and a Linear head, AdamW. With `checkpoint`,
    each Linear+ReLU is a recomputed block: it kept only its input anyway (the ReLU's output is the
    next Linear's input), so this saves nothing: while a block reruns its activations come back, and
    the peak is the plain twin's."""

    name = "bp-mlp"
    architecture = ("hidden",)
    examples = {"": {"hidden": (64, 64)}, "checkpoint": {"hidden": (64, 64), "checkpoint": True}}

    def __init__(self, input_shape, num_classes, *, hidden=(1000, 1000), lr=1e-3,
                 weight_decay=1e-4, optimizer="adamw", checkpoint=False):
        super().__init__()
        self.hidden = mlp_layers(math.prod(input_shape), tuple(hidden))
        self.head = nn.Linear(hidden[-1], num_classes)
        self.optimizer = make_optimizer(self.parameters(), optimizer, lr, weight_decay)
        self.checkpoint = bool(checkpoint)
        self.blocks = [nn.Sequential(layer, nn.ReLU()) for layer in self.hidden]   # the same layers, not registered twice

    def logits(self, x):
        a = x.flatten(1)
        for block in self.blocks:
            a = run_block(block, a, self.checkpoint)
        return self.head(a)


class BPCNN(BackpropTwin):
    """CaFo's three conv blocks (32/128/512 channels) and one Linear head, AdamW."""

    name = "bp-cnn"
    architecture = ("channels",)
    examples = {"": {"channels": (4, 8, 8)}, "checkpoint": {"channels": (4, 8, 8), "checkpoint": True}}

    def __init__(self, input_shape, num_classes, *, channels=(32, 128, 512), lr=1e-3,
                 weight_decay=1e-4, optimizer="adamw", checkpoint=False):
        super().__init__()
        self.checkpoint = bool(checkpoint)
        self.blocks = conv_blocks(input_shape, tuple(channels))
        with torch.no_grad():
            out = self.features(torch.zeros(2, *input_shape))
        self.head = nn.Linear(out.shape[1], num_classes)
        self.optimizer = make_optimizer(self.parameters(), optimizer, lr, weight_decay)

    def features(self, x):
        for block in self.blocks:
            x = run_block(block, x, self.checkpoint)
        return x.flatten(1)

    def logits(self, x):
        require_images(x, self.name)
        return self.head(self.features(x))
