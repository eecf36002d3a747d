"""What each dataset is: its shape, classes, files and normalisation, and what its errors say."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


SAMPLE_NAME = "fashion_mnist_sample"
SAMPLE_FILE = Path(__file__).parent / "_data" / "fashion_mnist_sample.npz"
SAMPLE_MANIFEST = SAMPLE_FILE.with_suffix(".json")

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")


@dataclass(frozen=True)
class Spec:
    """What the study says about one dataset, and where its files are usually found."""
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    num_classes: int
    kind: str                      # "idx" (MNIST family) or "cifar" (python pickles)
    torchvision_class: str
    system_dirs: tuple[str, ...] = ()


SPECS = {
    "mnist": Spec((0.1307,), (0.3081,), (1, 28, 28), 10, "idx", "MNIST",
                  ("/usr/share/datasets/mnist",)),
    "fashion_mnist": Spec((0.2860,), (0.3530,), (1, 28, 28), 10, "idx", "FashionMNIST",
                          ("/usr/share/datasets/fashion-mnist",)),
    "cifar10": Spec((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), (3, 32, 32), 10,
                    "cifar", "CIFAR10"),
    "cifar100": Spec((0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761), (3, 32, 32), 100,
                     "cifar", "CIFAR100"),
}
NAMES = (*SPECS, SAMPLE_NAME)

IDX_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
             "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}
CIFAR_DIRS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


class DataError(RuntimeError):
    """A dataset could not be found or read; the message says where and how to fix it."""



def augments(name: str) -> bool:
    """Whether `name`'s training batches are augmented (CIFAR: random crop and flip)."""
    return name in SPECS and SPECS[name].kind == "cifar"
