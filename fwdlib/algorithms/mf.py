"""Mono-Forward (Gong, Li & Abdulla 2025): every hidden layer learns from its own class scores.

Layer i computes a_i = ReLU(a_{i-1} W_i^T + b_i) and owns a projection matrix M_i (C x h_i).
Its goodness G_i = a_i M_i^T is a row of C class logits, and its local loss is
L_i = cross_entropy(G_i, y). The input a_{i-1} is detached, so only W_i, b_i and M_i learn
from L_i. With E = softmax(G_i) - Y the gradients are

    dM_i = E^T a_i / B,   delta_i = (E M_i) * 1[z_i > 0],   dW_i = delta_i^T a_{i-1} / B,
    db_i = mean(delta_i).

Because of the detach, the sum of all local losses has exactly these per-layer gradients, so the
`per-batch` schedule does one backward of sum(L_i) and one optimizer step, as backprop does, and
none of its input-gradient GEMMs (the per-layer losses add a few small operations of their own).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split, batches
from .base import LR_BP, WD_BP, Algorithm, Param, Stage, StageData, accuracy_count, accuracy_of_each, make_optimizer, mlp_layers

SCHEDULES = ("per-batch", "greedy")
PREDICTIONS = ("last", "sum")
INITS = ("torch", "he-uniform")


def _greedy(config): return config.get("schedule") == "greedy"


class MonoForward(Algorithm):
    name = "mf"
    twin = "bp-mlp"
    # The study's space; weight decay added (it fixed 0) in the twin's range.
    search_space = (LR_BP, WD_BP, Param("epochs_per_layer", 5, 30, epochs=True, applies=_greedy))
    quick = {"hidden": (256, 256)}
    examples = {"": {"hidden": (64, 64)}, "greedy": {"hidden": (64, 64), "schedule": "greedy", "epochs_per_layer": 2}}
    flow = {"title": "Mono-Forward (MF): each layer's own projection M_i and cross-entropy",
            "layers": [("x", "input"), ("layer 1", "trained"), ("layer 2", "trained"), ("layer 3", "trained")],
            "losses": [("CE(a₁M₁ᵀ, y)", (1,)), ("CE(a₂M₂ᵀ, y)", (2,)), ("CE(a₃M₃ᵀ, y)", (3,))],
            "detach": True, "projections": True}

    def __init__(self, input_shape, num_classes, *, hidden=(1000, 1000), lr=1e-3,
                 weight_decay=0.0, optimizer="adamw", schedule="per-batch", prediction="last",
                 epochs_per_layer=None, init="torch"):
        super().__init__()
        for option, value, allowed in (("schedule", schedule, SCHEDULES), ("prediction", prediction, PREDICTIONS),
                                       ("init", init, INITS)):
            if value not in allowed:
                raise ValueError(f"unknown {option} {value!r}; choose one of {allowed}")
        self.layers = mlp_layers(math.prod(input_shape), tuple(hidden))
        if init == "he-uniform":     # the study's: U(-sqrt(6/fan_in), sqrt(6/fan_in)), zero bias
            for layer in self.layers:
                nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        self.projections = nn.ParameterList(
            nn.Parameter(torch.empty(num_classes, width)) for width in hidden)
        for m in self.projections:
            nn.init.kaiming_uniform_(m, a=math.sqrt(5))   # nn.Linear's rule: U(+-1/sqrt(width)), the study's too
        self.schedule, self.prediction, self.epochs_per_layer = schedule, prediction, epochs_per_layer
        self.optimizer_config = (optimizer, lr, weight_decay)
        self.optimizer = make_optimizer(self.parameters(), *self.optimizer_config)

    # ------------------------------------------------------------------ the math
    def layer_forward(self, i: int, a_below: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(a_i, G_i) of layer i from the layer below, whose activity is detached."""
        a = F.relu(self.layers[i](a_below.detach()))
        return a, a @ self.projections[i].T

    def layer_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        """G_1 ... G_L for a batch: every layer's class scores (for teaching and `sum`)."""
        a, scores = x.flatten(1), []
        for i in range(len(self.layers)):
            a, g = self.layer_forward(i, a)
            scores.append(g)
        return scores

    def local_losses(self, x: torch.Tensor, y: torch.Tensor, scores: list[torch.Tensor] | None = None
                     ) -> list[torch.Tensor]:
        """L_1 ... L_L: each layer's cross-entropy on its own G_i (pass `scores` if computed)."""
        return [F.cross_entropy(g, y) for g in (self.layer_logits(x) if scores is None else scores)]

    def logits(self, x):
        scores = self.layer_logits(x)
        return scores[-1] if self.prediction == "last" else torch.stack(scores).sum(0)

    # ------------------------------------------------------------------ schedules
    def stages(self):
        if self.schedule == "per-batch":
            return [Stage("all")]
        return [Stage(f"layer{i + 1}", max_epochs=self.epochs_per_layer)
                for i in range(len(self.layers))]

    def begin_stage(self, stage, data):
        if self.schedule == "per-batch":
            return super().begin_stage(stage, data)
        i = self._layer_index(stage)
        # Greedy: layer i trains on cached activations of the frozen layers below, computed
        # once instead of every batch (un-augmented: the cache fixes the inputs).
        self.optimizer = make_optimizer(
            [*self.layers[i].parameters(), self.projections[i]], *self.optimizer_config)
        return StageData(self._activations_below(i, data.train), self._activations_below(i, data.val))

    def _layer_index(self, stage: Stage) -> int:
        return int(stage.name.removeprefix("layer")) - 1

    @torch.no_grad()
    def _activations_below(self, i: int, split: Split, chunk: int = 4096) -> Split:
        parts = []
        for x, _ in batches(split, chunk):
            a = x.flatten(1)
            for j in range(i):
                a, _ = self.layer_forward(j, a)
            parts.append(a)
        return Split(torch.cat(parts), split.y)

    def train_step(self, x, y, stage):
        if self.schedule == "per-batch":
            scores = self.layer_logits(x)
            loss = torch.stack(self.local_losses(x, y, scores)).sum()   # exact: inputs are detached
        else:
            _, last = self.layer_forward(self._layer_index(stage), x)
            scores, loss = [last], F.cross_entropy(last, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.detach(), "correct": accuracy_count(scores[-1].detach(), y)}

    def eval_step(self, x, y, stage):
        if self.schedule == "per-batch":
            return super().eval_step(x, y, stage)
        _, g = self.layer_forward(self._layer_index(stage), x)   # the local validation loss
        return F.cross_entropy(g, y, reduction="sum"), accuracy_count(g, y)

    def layer_accuracy(self, split: Split, batch_size: int = 1024) -> list[float]:
        """Accuracy of each layer's own G_i on a split."""
        return accuracy_of_each(self, self.layer_logits, split, batch_size)
