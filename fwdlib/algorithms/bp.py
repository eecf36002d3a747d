"""The backprop twins: the same layers as each forward-only rival, trained end to end.

One cross-entropy loss on the output; `loss.backward()` sends its gradient through every
layer (this is exactly what FF, CaFo and MF avoid).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import LR_BP, WD_BP, Algorithm, accuracy_count, conv_blocks, make_optimizer, mlp_layers, require_images


class BackpropTwin(Algorithm):
    """Shared step: forward, one loss, full backward, one optimizer step."""

    search_space = (LR_BP, WD_BP)
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
    """Linear+ReLU hidden layers (`hidden` widths) and a Linear head, AdamW."""

    name = "bp-mlp"
    architecture = ("hidden",)
    examples = {"": {"hidden": (64, 64)}}

    def __init__(self, input_shape, num_classes, *, hidden=(1000, 1000), lr=1e-3,
                 weight_decay=1e-4, optimizer="adamw"):
        super().__init__()
        self.hidden = mlp_layers(math.prod(input_shape), tuple(hidden))
        self.head = nn.Linear(hidden[-1], num_classes)
        self.optimizer = make_optimizer(self.parameters(), optimizer, lr, weight_decay)

    def logits(self, x):
        a = x.flatten(1)
        for layer in self.hidden:
            a = F.relu(layer(a))
        return self.head(a)


class BPCNN(BackpropTwin):
    """CaFo's three conv blocks (32/128/512 channels) and one Linear head, AdamW."""

    name = "bp-cnn"
    architecture = ("channels",)
    examples = {"": {"channels": (4, 8, 8)}}

    def __init__(self, input_shape, num_classes, *, channels=(32, 128, 512), lr=1e-3,
                 weight_decay=1e-4, optimizer="adamw"):
        super().__init__()
        self.blocks = conv_blocks(input_shape, tuple(channels))
        with torch.no_grad():
            out = self.features(torch.zeros(2, *input_shape))
        self.head = nn.Linear(out.shape[1], num_classes)
        self.optimizer = make_optimizer(self.parameters(), optimizer, lr, weight_decay)

    def features(self, x):
        for block in self.blocks:
            x = block(x)
        return x.flatten(1)

    def logits(self, x):
        require_images(x, self.name)
        return self.head(self.features(x))
