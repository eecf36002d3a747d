"""Cascaded Forward (Zhao et al. 2023): a cascade of conv blocks, each with its own predictor.

Block i (Conv3x3 -> ReLU -> MaxPool2x2 -> BatchNorm) feeds block i+1; its flattened output
h_i (D_i values) feeds a linear predictor W_i (D_i x C) trained on its own loss. Nothing flows
back into the blocks from the predictors. The prediction sums every block's softmax (sparsemax
for the sparsemax loss) and takes the argmax.

Blocks are either frozen at random initialisation (`cafo-rand`) or pre-trained with Direct
Feedback Alignment (`cafo-dfa`): the output error e = softmax(logits) - onehot(y) of a linear
output layer on the last block reaches every block i through a fixed random matrix B_i
(C x D_i), and e B_i is used as that block's output gradient. Each block then runs its own small
backward; no full backprop pass is ever computed.

BatchNorm of fixed blocks: before features are extracted, each block's running mean and variance
are set to the exact statistics of its training-set input, and the blocks stay in eval mode from
then on, so the cached training features and the test-time features use the same normalisation.
(Training predictors on batch-statistics features but testing with untrained running statistics
drops accuracy badly.)

Predictors: `mse` is solved in closed form (ridge regression onto one-hot targets, with an
unpenalised bias: the CaFo paper states no choice, and an unpenalised intercept is the textbook one),
`ce` and `sl` (sparsemax loss) by gradient descent on features cached once per block.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..data import Split, batches
from .base import (Algorithm, Param, Stage, StageData, accuracy_count, accuracy_of_each, block_out_dims,
                   conv_blocks, make_optimizer, require_images)

LOSSES = ("ce", "mse", "sl")
AGGREGATIONS = ("softmax", "sparsemax", "logits")


def sparsemax(z: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row onto the probability simplex (Martins & Astudillo 2016).

    p_j = max(z_j - tau, 0), with tau chosen so the p_j sum to 1: sort z descending, keep the
    largest k with 1 + k z_(k) > z_(1) + ... + z_(k), tau = (z_(1) + ... + z_(k) - 1) / k.
    """
    return (z - sparsemax_threshold(z)).clamp(min=0)


def sparsemax_threshold(z: torch.Tensor) -> torch.Tensor:
    sorted_z, _ = z.sort(dim=1, descending=True)
    cumulative = sorted_z.cumsum(1)
    k = torch.arange(1, z.shape[1] + 1, device=z.device, dtype=z.dtype)
    support = (1 + k * sorted_z > cumulative).sum(1, keepdim=True)      # |S(z)| >= 1
    return (cumulative.gather(1, support - 1) - 1) / support.to(z.dtype)


def sparsemax_loss(z: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L(z, y) = -z_y + 1/2 sum_{j in S} (z_j^2 - tau^2) + 1/2; its gradient is sparsemax(z) - onehot(y)."""
    tau = sparsemax_threshold(z)
    in_support = (z > tau).to(z.dtype)
    loss = -z.gather(1, y[:, None]).squeeze(1) + 0.5 * ((z.pow(2) - tau.pow(2)) * in_support).sum(1) + 0.5
    return loss.mean() if reduction == "mean" else loss.sum()


def ridge_solution(h: torch.Tensor, targets: torch.Tensor, lam: float, intercept: bool = False) -> torch.Tensor:
    """W minimising ||H W - Y||^2 + lam ||W||^2: W = (H^T H + lam I)^-1 H^T Y.
    intercept: H's last column is the bias's column of ones, whose row of W is not penalised."""
    return ridge_from_sums(h.T @ h, h.T @ targets, lam, intercept)


def ridge_from_sums(gram: torch.Tensor, cross: torch.Tensor, lam: float, intercept: bool = False) -> torch.Tensor:
    """The same W from H^T H and H^T Y, which can be summed over chunks of H. With `intercept`
    the penalty is lam * diag(1, ..., 1, 0): shrinking the bias would pull every prediction
    towards 0 instead of towards the mean target, as in textbook ridge regression (and
    scikit-learn's Ridge)."""
    penalty = torch.full((len(gram),), float(lam), dtype=gram.dtype, device=gram.device)
    if intercept:
        penalty[-1] = 0.0
    return torch.linalg.solve(gram + torch.diag(penalty), cross)


def with_bias(h: torch.Tensor) -> torch.Tensor:
    """Append a column of ones so the bias is one more weight row."""
    return torch.cat([h, torch.ones(len(h), 1, dtype=h.dtype, device=h.device)], 1)


class CascadedForward(Algorithm):
    name = "cafo"
    quick = {"channels": (8, 16, 32)}
    augments = False                       # its predictors train on cached block features

    def __init__(self, input_shape, num_classes, *, blocks="rand", channels=(32, 128, 512),
                 loss="ce", lr=1e-3, weight_decay=0.0, optimizer="adamw", ridge=1.0,
                 aggregate=None, epochs_per_block=None, dfa_lr=1e-4, dfa_weight_decay=0.0,
                 dfa_epochs=None, feature_chunk=1024):
        super().__init__()
        if blocks not in ("rand", "dfa"):
            raise ValueError(f"blocks must be 'rand' or 'dfa', got {blocks!r}")
        if loss not in LOSSES:
            raise ValueError(f"unknown predictor loss {loss!r}; choose one of {LOSSES}")
        aggregate = aggregate or ("sparsemax" if loss == "sl" else "softmax")
        if aggregate not in AGGREGATIONS:
            raise ValueError(f"unknown aggregate {aggregate!r}; choose one of {AGGREGATIONS}")
        self.name = f"cafo-{blocks}"
        self.num_classes, self.loss_kind, self.aggregate = num_classes, loss, aggregate
        self.blocks = conv_blocks(input_shape, tuple(channels))
        dims = block_out_dims(input_shape, tuple(channels))
        self.predictors = nn.ModuleList(nn.Linear(d, num_classes) for d in dims)
        self.optimizer_config = (optimizer, lr, weight_decay)
        self.ridge, self.epochs_per_block, self.chunk = ridge, epochs_per_block, feature_chunk
        self.dfa, self.dfa_epochs = blocks == "dfa", dfa_epochs
        self.frozen = not self.dfa
        self.blocks.requires_grad_(self.dfa)
        if self.dfa:
            self.dfa_head = nn.Linear(dims[-1], num_classes)
            for i, d in enumerate(dims):   # fixed random feedback, never trained
                self.register_buffer(f"feedback{i}", torch.randn(num_classes, d) / num_classes ** 0.5)
            self.dfa_optimizer = make_optimizer([*self.blocks.parameters(), *self.dfa_head.parameters()],
                                                optimizer, dfa_lr, dfa_weight_decay)
        self._cache: Split | None = None      # features of the block below, for the next stage
        self._cache_val: Split | None = None

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen:                        # fixed blocks always normalise with fixed statistics
            self.blocks.eval()
        return self

    # ------------------------------------------------------------------ stages
    def stages(self):
        predictor_stages = [Stage(f"block{i + 1}", max_epochs=self.epochs_per_block,
                                  closed_form=self.loss_kind == "mse")
                            for i in range(len(self.blocks))]
        return ([Stage("dfa", max_epochs=self.dfa_epochs)] if self.dfa else []) + predictor_stages

    def begin_stage(self, stage, data):
        if stage.name == "dfa":
            return StageData(data.train, data.val, data.augment)
        i = self._block_index(stage)
        require_images(data.train.x, self.name)
        if not self.frozen:                    # after DFA, fix the blocks
            self.blocks.requires_grad_(False)
            self.frozen = True
        below_train = data.train if i == 0 else self._cache
        below_val = data.val if i == 0 else self._cache_val
        self._cache = Split(self.calibrated_features(i, below_train.x), data.train.y)
        self._cache_val = Split(self._chunked(self.blocks[i], below_val.x), data.val.y)
        self.predictor_optimizer = make_optimizer(self.predictors[i].parameters(), *self.optimizer_config)
        return StageData(Split(self._cache.x.flatten(1), data.train.y),
                         Split(self._cache_val.x.flatten(1), data.val.y))

    @staticmethod
    def _block_index(stage: Stage) -> int:
        """0-based block of a predictor stage ("block2" -> 1)."""
        return int(stage.name.removeprefix("block")) - 1

    def end_stage(self, stage):
        if stage.name == f"block{len(self.blocks)}":
            self._cache = self._cache_val = None

    @torch.no_grad()
    def calibrated_features(self, i: int, inputs: torch.Tensor) -> torch.Tensor:
        """Block i's eval-mode output for every input, its BatchNorm's statistics first set to the
        exact mean and variance over `inputs`. One pass of the layers before the BatchNorm: their
        outputs both give the statistics and, normalised in place, are the features."""
        pre_bn, bn = self.blocks[i][:-1], self.blocks[i][-1]
        features = self._chunked(pre_bn, inputs)
        self.calibrate_batchnorm(bn, features)
        self.blocks[i].eval()
        for start in range(0, len(features), self.chunk):
            features[start:start + self.chunk] = bn(features[start:start + self.chunk])
        return features

    @torch.no_grad()
    def calibrate_batchnorm(self, bn: nn.BatchNorm2d, u: torch.Tensor) -> None:
        """Set the BatchNorm's statistics to the exact mean/variance of its inputs `u` (in float64)."""
        total, total_sq, count = 0.0, 0.0, 0
        for start in range(0, len(u), self.chunk):
            part = u[start:start + self.chunk].double()
            total = total + part.sum((0, 2, 3))
            total_sq = total_sq + part.pow(2).sum((0, 2, 3))
            count += part.numel() // part.shape[1]
        mean = total / count
        bn.running_mean.copy_(mean)
        bn.running_var.copy_((total_sq / count - mean.pow(2)) * count / max(count - 1, 1))

    @torch.no_grad()
    def _chunked(self, layers: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
        """`layers` over every input in chunks, so that memory stays bounded, written into one tensor
        (no list of chunks and concatenated copy of it side by side)."""
        out = None
        for start in range(0, len(inputs), self.chunk):
            part = layers(inputs[start:start + self.chunk])
            if out is None:
                out = part.new_empty(len(inputs), *part.shape[1:])
            out[start:start + len(part)] = part
        return out

    # ------------------------------------------------------------------ learning
    def predictor_loss(self, logits, y, reduction="mean"):
        if self.loss_kind == "ce":
            return F.cross_entropy(logits, y, reduction=reduction)
        if self.loss_kind == "sl":
            return sparsemax_loss(logits, y, reduction)
        per_sample = (logits - F.one_hot(y, self.num_classes).to(logits.dtype)).pow(2).sum(1)
        return per_sample.mean() if reduction == "mean" else per_sample.sum()

    def train_step(self, x, y, stage):
        if stage.name == "dfa":
            return self.dfa_step(x, y)
        predictor = self.predictors[self._block_index(stage)]
        logits = predictor(x)
        loss = self.predictor_loss(logits, y)
        self.predictor_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.predictor_optimizer.step()
        return {"loss": loss.detach(), "correct": accuracy_count(logits.detach(), y)}

    def dfa_step(self, x, y):
        """One DFA update: every block gets e B_i as its output gradient; local backwards only."""
        require_images(x, self.name)
        outputs, h = [], x
        for block in self.blocks:
            h = block(h.detach())              # detached: no gradient crosses a block boundary
            outputs.append(h)
        logits = self.dfa_head(outputs[-1].flatten(1).detach())
        loss = F.cross_entropy(logits, y)
        self.dfa_optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward([loss, *outputs], [None, *self.feedback_signals(logits, y, outputs)])
        self.dfa_optimizer.step()
        return {"loss": loss.detach(), "correct": accuracy_count(logits.detach(), y)}

    def feedback_signals(self, logits: torch.Tensor, y: torch.Tensor, outputs: list[torch.Tensor]
                         ) -> list[torch.Tensor]:
        """What DFA hands each block as the gradient of its output: e B_i, shaped like the output,
        with e = (softmax(logits) - onehot(y)) / B, the error of the mean cross-entropy."""
        error = (logits.softmax(1) - F.one_hot(y, self.num_classes).to(logits.dtype)).detach() / len(y)
        # in the output's own memory layout (channels-last): a gradient in another layout would make
        # every op of the block's backward convert it
        return [torch.empty_like(out).copy_((error @ getattr(self, f"feedback{i}")).view_as(out))
                for i, out in enumerate(outputs)]

    def feedback_alignment(self, x: torch.Tensor, y: torch.Tensor) -> list[float]:
        """Per block, the angle in degrees between the output gradient DFA hands it, e B_i, and
        the one backprop would hand it, dL/dh_i (through the blocks above and the DFA head).
        Below 90 degrees DFA's step still goes downhill; Nokland (2016) shows that training
        pulls the forward weights into alignment with the fixed B_i."""
        self.eval()                               # batch statistics would differ between passes
        outputs, h = [], x
        for block in self.blocks:
            h = block(h)                          # not detached: backprop's gradient needs the whole path
            outputs.append(h)
        logits = self.dfa_head(outputs[-1].flatten(1))
        true = torch.autograd.grad(F.cross_entropy(logits, y), outputs)
        angles = []
        for grad, signal in zip(true, self.feedback_signals(logits, y, outputs)):
            a, b = grad.flatten(), signal.flatten()
            angles.append(math.degrees(math.acos(float((a @ b) / (a.norm() * b.norm() + 1e-30)))))
        return angles

    def solve(self, stage, data: StageData) -> None:
        """Ridge regression onto one-hot targets, accumulated in chunks, in float64."""
        i = self._block_index(stage)
        dim = data.train.x.shape[1] + 1
        solve_device = data.train.x.device if data.train.x.device.type == "cuda" else torch.device("cpu")
        gram = torch.zeros(dim, dim, dtype=torch.float64, device=solve_device)
        cross = torch.zeros(dim, self.num_classes, dtype=torch.float64, device=solve_device)
        for x, y in batches(data.train, self.chunk):
            h = with_bias(x.to(solve_device, torch.float64))
            gram += h.T @ h
            cross += h.T @ F.one_hot(y.to(solve_device), self.num_classes).double()
        w = ridge_from_sums(gram, cross, self.ridge, intercept=True)
        predictor = self.predictors[i]
        with torch.no_grad():
            predictor.weight.copy_(w[:-1].T.to(predictor.weight))
            predictor.bias.copy_(w[-1].to(predictor.bias))

    def eval_step(self, x, y, stage):
        if stage.name == "dfa":
            logits = self.dfa_head(self.block_outputs(x)[-1].flatten(1))
            return F.cross_entropy(logits, y, reduction="sum"), accuracy_count(logits, y)
        logits = self.predictors[self._block_index(stage)](x)
        return self.predictor_loss(logits, y, reduction="sum"), accuracy_count(logits, y)

    # ------------------------------------------------------------------ prediction
    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's output for x, in order (block i reads block i-1's output)."""
        require_images(x, self.name)
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return outputs

    def block_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [p(h.flatten(1)) for p, h in zip(self.predictors, self.block_outputs(x))]

    def combine(self, logits: list[torch.Tensor], blocks=None) -> torch.Tensor:
        """Sum over the chosen blocks of softmax / sparsemax / raw logits."""
        chosen = [logits[i] for i in (blocks if blocks is not None else range(len(logits)))]
        transform = {"softmax": lambda z: z.softmax(1), "sparsemax": sparsemax,
                     "logits": lambda z: z}[self.aggregate]
        return torch.stack([transform(z) for z in chosen]).sum(0)

    def logits(self, x):
        return self.combine(self.block_logits(x))

    def block_accuracy(self, split: Split, batch_size: int = 1024) -> list[float]:
        """Accuracy of each block's predictor alone."""
        return accuracy_of_each(self, self.block_logits, split, batch_size)


def _trained_predictors(config): return config.get("loss", "ce") != "mse"


# The study's spaces (predictors trained by gradient descent; the closed-form ridge has none).
PREDICTOR_SPACE = (Param("lr", 2e-4, 5e-3, applies=_trained_predictors),
                   Param("weight_decay", 1e-7, 1e-4, applies=_trained_predictors))


class CaFoRand(CascadedForward):
    name = "cafo-rand"
    twin = "bp-cnn"
    search_space = (*PREDICTOR_SPACE, Param("epochs_per_block", 80, 500, epochs=True, applies=_trained_predictors))
    examples = {"": {"channels": (4, 8, 8)}}
    flow = {"title": "CaFo-Rand: random frozen blocks, one trained predictor per block",
            "layers": [("image", "input"), ("block 1", "frozen"), ("block 2", "frozen"), ("block 3", "frozen")],
            "predictors": True, "detach": True}

    def __init__(self, input_shape, num_classes, **config):
        super().__init__(input_shape, num_classes, blocks="rand", **config)


class CaFoDFA(CascadedForward):
    name = "cafo-dfa"
    twin = "bp-cnn"
    search_space = (*PREDICTOR_SPACE, Param("epochs_per_block", 80, 180, epochs=True, applies=_trained_predictors),
                    Param("dfa_lr", 2e-5, 5e-4), Param("dfa_weight_decay", 1e-7, 1e-4))
    examples = {"": {"channels": (4, 8, 8), "dfa_epochs": 2}}
    flow = {"title": "CaFo-DFA: blocks first trained by fixed random feedback, then frozen",
            "layers": [("image", "input"), ("block 1", "trained"), ("block 2", "trained"), ("block 3", "trained")],
            "predictors": True, "detach": True, "feedback": True}

    def __init__(self, input_shape, num_classes, **config):
        super().__init__(input_shape, num_classes, blocks="dfa", **config)
