"""Data: the study's four datasets and an embedded Fashion-MNIST sample, resident on the device.

`load(name)` returns a `Dataset` whose `train`, `val` and `test` splits are already normalised
float32 tensors on the device, split as in Spyra & Dzwinel (2025): MNIST keeps the first 50k
training images for training and the last 10k for validation; the other sets hold out a seeded
random 10%. Batches are index slices of those tensors (no DataLoader, no per-batch copy).

Where full datasets come from, in order: `root` (or $FWDLIB_DATA), the user cache, system dataset
directories (Debian's dataset-fashion-mnist), then a torchvision download.
"""
from .catalog import (CIFAR10_CLASSES, FASHION_CLASSES, IDX_FILES, NAMES, SAMPLE_FILE, SAMPLE_MANIFEST,
                      SAMPLE_NAME, SPECS, DataError, Spec, augments)
from .sources import available, load, locate, read_idx
from .tensors import Dataset, Split, batches, draw_crops, first, random_crop_flip, unnormalise

__all__ = ["CIFAR10_CLASSES", "FASHION_CLASSES", "IDX_FILES", "NAMES", "SAMPLE_FILE", "SAMPLE_MANIFEST",
           "SAMPLE_NAME", "SPECS", "DataError", "Dataset", "Spec", "Split", "augments", "available", "batches",
           "draw_crops", "first", "load", "locate", "random_crop_flip", "read_idx", "unnormalise"]
