"""Where the data comes from and how it is read: IDX and CIFAR files, the embedded sample, the
user cache, system dataset folders, a torchvision download; `load` returns a checked `Dataset`."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import struct
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_write
from ..session import pick_device
from .catalog import CIFAR10_CLASSES, CIFAR_DIRS, DataError, FASHION_CLASSES, IDX_FILES, NAMES, SAMPLE_FILE, SAMPLE_MANIFEST, SAMPLE_NAME, SPECS, Spec, augments
from .tensors import Dataset, Split


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw) of unsigned bytes into a NumPy array.

    Format: 2 zero bytes, a type byte (0x08 = uint8), the number of dimensions, then one
    big-endian uint32 per dimension, then the data.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DataError(f"{path} is truncated or corrupt ({err}); delete it so fwdlib "
                        "finds or downloads a good copy") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number); delete or replace it")
    if raw[2] != 0x08:
        raise DataError(f"{path} holds IDX type 0x{raw[2]:02x}; fwdlib reads uint8 (0x08) only")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated: its header is incomplete; delete it")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(f"{path} is truncated or corrupt: its header promises {expected} bytes "
                        f"of data for shape {shape}, the file holds {len(raw) - header}; "
                        "delete it so fwdlib finds or downloads a good copy")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def _find_idx(directory: Path) -> dict[str, Path] | None:
    """The four IDX files in `directory` (gzip or raw), or None when any is missing."""
    found = {}
    for key, stem in IDX_FILES.items():
        for candidate in (directory / f"{stem}.gz", directory / stem):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def _read_idx_set(files: dict[str, Path]) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(path) for key, path in files.items()}
    for part in ("train", "test"):
        if len(arrays[f"{part}_x"]) != len(arrays[f"{part}_y"]):
            raise DataError(f"{files[part + '_x']} and {files[part + '_y']} disagree in length")
    return arrays


def _read_cifar(directory: Path, name: str) -> dict[str, np.ndarray]:
    """Read torchvision's python-pickle CIFAR layout (from `directory`, or its .tar.gz)."""
    label_key = b"labels" if name == "cifar10" else b"fine_labels"
    parts = {"train": [f"data_batch_{i}" for i in range(1, 6)] if name == "cifar10" else ["train"],
             "test": ["test_batch"] if name == "cifar10" else ["test"]}
    arrays = {}
    for part, files in parts.items():
        xs, ys = [], []
        for file in files:
            path = directory / file
            try:
                with open(path, "rb") as f:
                    batch = pickle.load(f, encoding="bytes")
                xs.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(batch[label_key], dtype=np.int64))
            except (OSError, EOFError, pickle.UnpicklingError, KeyError, ValueError) as err:
                raise DataError(f"{path} is truncated or corrupt ({err!r}); delete it") from err
        arrays[f"{part}_x"], arrays[f"{part}_y"] = np.concatenate(xs), np.concatenate(ys)
    return arrays


def _cifar_classes(directory: Path, name: str) -> tuple[str, ...]:
    if name == "cifar10":
        return CIFAR10_CLASSES
    with open(directory / "meta", "rb") as f:
        return tuple(label.decode() for label in pickle.load(f, encoding="bytes")[b"fine_label_names"])


# ----------------------------------------------------------------------------- resolution

def user_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fwdlib"


def _candidate_dirs(name: str, directory: Path) -> list[Path]:
    """Layouts accepted under one place: the files themselves, a name folder, torchvision's."""
    spec = SPECS[name]
    if spec.kind == "idx":
        return [directory, directory / name, directory / spec.torchvision_class / "raw"]
    return [directory / CIFAR_DIRS[name], directory / name / CIFAR_DIRS[name]]


def _find_in(name: str, directory: Path) -> Path | None:
    """The folder under `directory` that holds `name`'s files (checked, not read), or None."""
    for candidate in _candidate_dirs(name, directory):
        if SPECS[name].kind == "idx":
            if _find_idx(candidate):
                return candidate
        elif (candidate / ("test_batch" if name == "cifar10" else "test")).is_file():
            return candidate
    return None


def _expected_files(name: str) -> str:
    if SPECS[name].kind == "idx":
        return ", ".join(f"{stem}[.gz]" for stem in IDX_FILES.values())
    return f"{CIFAR_DIRS[name]}/ from torchvision"


def check_labels(arrays: dict[str, np.ndarray], num_classes: int, where: str) -> None:
    """Labels must be one integer per image, each a class index: anything else (an image file
    given as the label file, values out of range) would train quietly wrong."""
    for part in ("train", "test"):
        x, y = arrays[f"{part}_x"], arrays[f"{part}_y"]
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(f"{where}: the {part} labels have shape {y.shape}, expected ({len(x)},) "
                            "(one label per image); is an image file standing in for the label file?")
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise DataError(f"{where}: {part} labels range over {int(y.min())}..{int(y.max())}, but this "
                            f"dataset has classes 0..{num_classes - 1}; the label file is wrong or damaged")


def _read_folder(name: str, folder: Path):
    """(arrays, classes, folder) of `name` read from `folder`."""
    if SPECS[name].kind == "idx":
        classes = FASHION_CLASSES if name == "fashion_mnist" else tuple(map(str, range(10)))
        return _read_idx_set(_find_idx(folder)), classes, folder
    return _read_cifar(folder, name), _cifar_classes(folder, name), folder


def _download(name: str, cache: Path) -> Path:
    """Download through torchvision into a temporary folder, then move into the cache.

    Each file lands with an atomic rename, so an interrupted download leaves no half file
    that a later run would trust.
    """
    import torchvision

    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        getattr(torchvision.datasets, SPECS[name].torchvision_class)(tmp, train=True, download=True)
        getattr(torchvision.datasets, SPECS[name].torchvision_class)(tmp, train=False, download=True)
        if SPECS[name].kind == "idx":
            source, target = Path(tmp) / SPECS[name].torchvision_class / "raw", cache / name
            wanted = [f"{stem}.gz" for stem in IDX_FILES.values()]
        else:
            source, target = Path(tmp) / CIFAR_DIRS[name], cache / CIFAR_DIRS[name]
            wanted = [p.name for p in source.iterdir() if p.is_file()]
        target.mkdir(parents=True, exist_ok=True)
        for file in wanted:
            atomic_write(target / file, (source / file).read_bytes())
    return cache


def _places(name: str, root) -> list[tuple[str, Path]]:
    """Where `name` is looked for, in order: root or $FWDLIB_DATA, the user cache, system."""
    places = []
    explicit = root if root is not None else os.environ.get("FWDLIB_DATA")
    if explicit:
        places.append(("root" if root is not None else "$FWDLIB_DATA", Path(explicit)))
    places.append(("user cache", user_cache()))
    return places + [("system", Path(d)) for d in SPECS[name].system_dirs]


def available(name: str, root=None) -> bool:
    """Whether `name`'s files are already on this machine (nothing is read or downloaded)."""
    return name == SAMPLE_NAME or any(_find_in(name, place) for _, place in _places(name, root))


def locate(name: str, root=None, download: bool = True):
    """(arrays, classes, folder) of `name`, looked for in the documented order; one error
    listing every place tried when it is nowhere."""
    tried = []
    for label, place in _places(name, root):
        folder = _find_in(name, place)
        if folder:
            return _read_folder(name, folder)
        where = f"{label}: {', '.join(map(str, _candidate_dirs(name, place)))}"
        tried.append(f"  - {where}")
        if label in ("root", "$FWDLIB_DATA"):    # a place the user named: never pass it over in silence
            why = ("is a file, not a folder" if place.is_file() else "does not exist" if not place.exists()
                   else f"does not hold {name}'s files ({_expected_files(name)})")
            if label == "root":
                raise DataError(f"root={str(place)!r} {why}. Looked in {where}. Fix: point root at the "
                                "folder that holds the files, or leave it unset to search the usual places")
            print(f"data: warning: $FWDLIB_DATA={str(place)!r} {why}; looking in the usual places instead")
    if download:
        try:
            folder = _find_in(name, _download(name, user_cache()))
            if folder:
                return _read_folder(name, folder)
            tried.append(f"  - download into {user_cache()}: finished but files not readable")
        except Exception as err:  # noqa: BLE001 - any download failure is reported with the rest
            tried.append(f"  - torchvision download into {user_cache()}: {type(err).__name__}: {err}")
    else:
        tried.append("  - torchvision download: skipped (download=False)")
    debian = (" On Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist."
              if name == "fashion_mnist" else "")
    raise DataError(
        f"could not find dataset {name!r}. Places tried:\n" + "\n".join(tried) +
        f"\nFix: put the files in one of these places, point FWDLIB_DATA (or root=) at a folder "
        f"that holds them, or allow a download with network access.{debian} "
        f"For a small offline set use load({SAMPLE_NAME!r})."
    )


# ----------------------------------------------------------------------------- the sample

def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_sample() -> dict[str, np.ndarray]:
    if not SAMPLE_FILE.is_file() or not SAMPLE_MANIFEST.is_file():
        raise DataError(f"the embedded sample {SAMPLE_FILE} is missing; reinstall fwdlib or run "
                        "python scripts/make_sample.py")
    manifest = json.loads(SAMPLE_MANIFEST.read_text())
    if sha256(SAMPLE_FILE) != manifest["sha256"]:
        raise DataError(f"the embedded sample {SAMPLE_FILE} does not match its manifest's "
                        "sha256 (damaged copy); reinstall fwdlib or run python scripts/make_sample.py")
    with np.load(io.BytesIO(SAMPLE_FILE.read_bytes())) as npz:
        return {key: npz[key] for key in ("train_x", "train_y", "test_x", "test_y")}


# ----------------------------------------------------------------------------- load



def load(name: str, *, root: str | Path | None = None, device=None, val_fraction: float | None = None,
         seed: int = 0, download: bool = True) -> Dataset:
    """Load `name` with the study's splits and normalisation, resident on `device`.

    val_fraction: None gives the study's validation split (MNIST: the last 10,000 training
    images; the others: a random 10%). A number sets the fraction: on MNIST the last images
    (the study's kind of split), elsewhere a random draw with `seed`."""
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    if val_fraction is not None and not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}")
    device = pick_device(device)
    if name == SAMPLE_NAME:
        arrays, classes = _read_sample(), FASHION_CLASSES
        spec = SPECS["fashion_mnist"]
        source = (f"embedded sample of Fashion-MNIST ({SAMPLE_FILE.name}: "
                  f"{len(arrays['train_y'])} train + {len(arrays['test_y'])} test images), "
                  "NOT the full dataset")
    else:
        arrays, classes, where = locate(name, root, download)
        spec = SPECS[name]
        source = f"{name} from {where}"
    check_labels(arrays, spec.num_classes, source)

    train_x, train_y = arrays["train_x"], arrays["train_y"]
    if name == "mnist":                       # the study: first 50k train, last 10k validation
        n_train = 50_000 if val_fraction is None else len(train_y) - int(round(val_fraction * len(train_y)))
        train_idx, val_idx = np.arange(n_train), np.arange(n_train, len(train_y))
    else:
        perm = torch.randperm(len(train_y), generator=torch.Generator().manual_seed(seed)).numpy()
        n_val = int(round((0.1 if val_fraction is None else val_fraction) * len(train_y)))
        val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])

    def split(x: np.ndarray, y: np.ndarray) -> Split:
        return Split(_normalise(x, spec, device), torch.as_tensor(y, dtype=torch.int64).to(device))

    return Dataset(
        name=name,
        train=split(train_x[train_idx], train_y[train_idx]),
        val=split(train_x[val_idx], train_y[val_idx]),
        test=split(arrays["test_x"], arrays["test_y"]),
        num_classes=spec.num_classes, input_shape=spec.input_shape, classes=classes,
        source=source, mean=spec.mean, std=spec.std, augment=augments(name),
    )


def _normalise(images: np.ndarray, spec: Spec, device: torch.device) -> torch.Tensor:
    """uint8 images -> float32 (N, C, H, W) on `device`, scaled to [0, 1] then standardised."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).float().div_(255.0)
    x = x.reshape(len(images), *spec.input_shape)
    mean = torch.tensor(spec.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, -1, 1, 1)
    return (x - mean) / std
