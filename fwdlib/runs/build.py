"""One spec, built and trained: the benchmark's runs, the tuner's trials, the speed command's
cases and the GPU check all train a `RunSpec` through these few lines, so none of them can train it
differently."""
from __future__ import annotations

import dataclasses

from .. import algorithms as registry, data as datasets
from ..algorithms.base import optimizer_kernels
from ..train import fit
from .spec import RunSpec


def dataset_for(spec: RunSpec, data: datasets.Dataset) -> datasets.Dataset:
    """The data as the spec trains on it: without augmentation where the pair has none (a rival
    that trains on cached features cannot augment, so neither does its twin)."""
    return dataclasses.replace(data, augment=False) if spec.augment is False and data.augment else data


def build_model(spec: RunSpec, data: datasets.Dataset) -> registry.Algorithm:
    with optimizer_kernels(spec.kernels):
        return registry.build(spec.algorithm, input_shape=data.input_shape, num_classes=data.num_classes,
                              **spec.config)


def fit_spec(model, data: datasets.Dataset, spec: RunSpec, **options):
    """Train `model` as `spec` says: its batch, stopping rule, seed, execution mode and
    augmentation."""
    with optimizer_kernels(spec.kernels):          # stages build optimizers too (greedy MF, CaFo's predictors)
        return fit(model, dataset_for(spec, data), epochs=spec.rule.epochs, batch_size=spec.batch_size,
                   monitor=spec.rule.monitor, patience=spec.rule.patience, min_delta=spec.rule.min_delta,
                   seed=spec.seed, cuda_graphs=spec.cuda_graphs, progress=False, **options)


WARMUP_STEPS = 5


def warm_up(spec: RunSpec, data: datasets.Dataset) -> None:
    """The same untimed warm-up for every run: a throwaway model trains on a few batches
    (kernels load, autotuning settles, allocator pools grow), in the execution mode the timed
    run will use, so that a CUDA graph's capture never lands in the first timed epoch."""
    small = datasets.first(data, WARMUP_STEPS * spec.batch_size)
    one_epoch = spec.replace(rule=dataclasses.replace(spec.rule, epochs=1))
    fit_spec(build_model(spec, small), small, one_epoch, restore_best=False)
