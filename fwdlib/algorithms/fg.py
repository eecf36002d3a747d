"""Forward gradients (Baydin et al. 2022, "Gradients without backpropagation", arXiv 2202.08587):
a gradient estimated by forward passes alone.

Draw a random tangent v ~ N(0, I) shaped like the parameters theta. Forward-mode differentiation
(`torch.func.jvp`) carries v through the same pass that computes the loss L(theta) and returns
its directional derivative d = grad L . v, with no activation kept for a backward pass. The
forward gradient

    g = d v = (grad L . v) v,      E[g] = E[v v^T] grad L = grad L

is an unbiased estimate of the gradient whose variance grows with the number of values one
tangent perturbs: E|g|^2 = (n + 2)|grad L|^2 for n of them. Two ways to use it:

    loss="global"   Baydin's algorithm: one loss on the head, one tangent over every weight
                    (n = every parameter: hundreds of thousands, so its steps are mostly noise)
    loss="local"    Ren et al. 2023 ("Scaling forward gradient with local losses", arXiv
                    2210.03310): layer i owns a head M_i (C x h_i) and the loss
                    L_i = cross_entropy(a_i M_i^T, y) on a detached input, as in Mono-Forward,
                    and the tangent perturbs activities, not weights: each example's
                    pre-activation z_i (n = h_i) and class scores s_i (n = C). With the estimated
                    g_z = (dL/dz . u) u per example, the weight gradient is g_z^T a_{i-1}, one GEMM.

Cost of a step, per example, in multiply-adds of the GEMMs (widths d_0..d_L, C classes,
F = sum d_{i-1} d_i + d_L C the forward): the tangent of a Linear layer's output is
x dW^T + dx W^T, two GEMMs beside the primal one. "global" therefore costs 3F (torch.func.jvp
multiplies the first layer's input tangent too, though it is zero: 3 GEMMs where 2 would do),
BP's 3F - d_0 d_1, with no backward. "local" costs sum 2 d_{i-1} d_i + 4 d_i C: per layer its
forward, the GEMM that turns g_z into the weight gradient, and its small head (MF's count). What
both save is memory: nothing is kept for a backward pass. tests/test_fg.py counts them.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jvp

# Forward mode loads torch's decompositions on its first use, scripting them with torch.jit.script,
# which this torch deprecates: a FutureWarning of torch's own on a student's screen. Loaded here, quietly.
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", FutureWarning)
    importlib.import_module("torch._decomp.decompositions_for_jvp")

from .base import LR_BP, WD_BP, Algorithm, accuracy_count, make_optimizer, mlp_layers

LOSSES = ("global", "local")


def forward_gradient(loss_of, params: dict[str, torch.Tensor], has_aux: bool = False):
    """(loss, g[, aux]): the loss at `params` and its forward gradient g = (grad L . v) v for one
    random tangent v ~ N(0, I), from one forward-mode pass."""
    tangent = {name: torch.randn_like(p) for name, p in params.items()}
    loss, slope, *aux = jvp(loss_of, (params,), (tangent,), has_aux=has_aux)
    return (loss.detach(), {name: slope * v for name, v in tangent.items()}, *aux)


def activity_gradient(losses_of, activity: torch.Tensor, has_aux: bool = False):
    """(mean loss, g[, aux]): each example's forward gradient of its own loss with respect to its
    row of `activity`, for one random tangent u per example: g_b = (dl_b/dactivity_b . u_b) u_b."""
    tangent = torch.randn_like(activity)
    losses, slopes, *aux = jvp(losses_of, (activity,), (tangent,), has_aux=has_aux)
    return (losses.mean(), slopes[:, None] * tangent, *aux)


class ForwardGradient(Algorithm):
    name = "fg"
    twin = "bp-mlp"
    # BP's space: learning rate and weight decay (the papers tune the learning rate alone)
    search_space = (LR_BP, WD_BP)
    quick = {"hidden": (256, 256)}
    examples = {"": {"hidden": (64, 64)}, "global": {"hidden": (64, 64), "loss": "global"}}
    flow = {"title": "Forward gradient (FG, local losses): each layer's slope along a random direction, no backward",
            "layers": [("x", "input"), ("layer 1", "trained"), ("layer 2", "trained")],
            "losses": [("CE(a₁M₁ᵀ, y) along u₁", (1,)), ("CE(a₂M₂ᵀ, y) along u₂", (2,))],
            "detach": True, "projections": True}

    def __init__(self, input_shape, num_classes, *, hidden=(1000, 1000), lr=3e-4, weight_decay=0.0,
                 optimizer="adamw", loss="local"):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {LOSSES}")
        self.loss = loss
        self.hidden = mlp_layers(math.prod(input_shape), tuple(hidden))
        if loss == "global":        # bp-mlp's layers exactly: hidden layers and one head
            self.head = nn.Linear(hidden[-1], num_classes)
        else:                       # each layer's own head, as MF's projections (nn.Linear's init)
            self.heads = nn.ModuleList(nn.Linear(width, num_classes, bias=False) for width in hidden)
        self.optimizer = make_optimizer(self.parameters(), optimizer, lr, weight_decay)

    # ------------------------------------------------------------------ the math
    def logits(self, x):
        a = x.flatten(1)
        for layer in self.hidden:
            a = F.relu(layer(a))
        return self.head(a) if self.loss == "global" else self.heads[-1](a)

    forward = logits                # what functional_call runs

    def global_step(self, x, y):
        """One tangent for every parameter; the head's loss."""
        def loss_of(p):
            logits = functional_call(self, p, (x,))
            return F.cross_entropy(logits, y), logits.detach()

        params = {name: p.detach() for name, p in self.named_parameters()}
        self.tangent_bytes = sum(p.numel() * p.element_size() for p in params.values())   # one direction, whole
        return forward_gradient(loss_of, params, has_aux=True)

    def local_step(self, x, y):
        """Per layer, on a detached input: the forward gradient of its own loss with respect to
        each example's pre-activation z and class scores s (the activities), then the weight
        gradients from them, one GEMM each."""
        a, total, grads, scale = x.flatten(1), 0.0, {}, 1.0 / len(y)
        # one layer's directions at a time: each example's z and class scores
        self.tangent_bytes = max(len(y) * (layer.out_features + self.heads[0].out_features) * a.element_size()
                                 for layer in self.hidden)
        for i, (layer, head) in enumerate(zip(self.hidden, self.heads)):
            z, m = F.linear(a, layer.weight.detach(), layer.bias.detach()), head.weight.detach()

            def losses_of(z):
                scores = F.relu(z) @ m.T
                return F.cross_entropy(scores, y, reduction="none"), scores.detach()

            loss, g_z, scores = activity_gradient(losses_of, z, has_aux=True)
            _, g_s = activity_gradient(lambda s: F.cross_entropy(s, y, reduction="none"), scores)
            below, a = a, F.relu(z)
            total = total + loss
            grads.update({f"hidden.{i}.weight": scale * g_z.T @ below, f"hidden.{i}.bias": scale * g_z.sum(0),
                          f"heads.{i}.weight": scale * g_s.T @ a})
        return total, grads, scores

    def train_step(self, x, y, stage):
        loss, grads, logits = (self.global_step if self.loss == "global" else self.local_step)(x, y)
        for name, p in self.named_parameters():
            p.grad = grads[name]
        self.optimizer.step()
        return {"loss": loss, "correct": accuracy_count(logits, y)}
