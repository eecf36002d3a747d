import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from fwdlib import data, files
from fwdlib.data import DataError, sources

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, compress=True) -> Path:
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload += array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_idx_set(directory: Path, n_train=40, n_test=10, marker=0) -> Path:
    """A tiny MNIST-shaped IDX set; pixel [0,0] of every image holds `marker`."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(marker)
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = marker
        write_idx(directory / f"{part}-images-idx3-ubyte", images)
        write_idx(directory / f"{part}-labels-idx1-ubyte", np.arange(n) % 10)
    return directory


@pytest.fixture
def isolated(monkeypatch, tmp_path):
    """No $FWDLIB_DATA, an empty user cache and an empty system folder."""
    monkeypatch.delenv("FWDLIB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    system = tmp_path / "system"
    spec = data.SPECS["fashion_mnist"]
    monkeypatch.setitem(data.SPECS, "fashion_mnist",
                        data.Spec(spec.mean, spec.std, spec.input_shape, spec.num_classes, spec.kind,
                                  spec.torchvision_class, (str(system),)))
    return tmp_path


def marker_of(ds) -> int:
    """Recover the marker pixel of the first training image (undo the normalisation)."""
    return round(float(data.unnormalise(ds.train.x[:1], ds)[0, 0, 0, 0]) * 255)


# ------------------------------------------------------------------ the sample

def test_sample_shapes_splits_and_normalisation(sample):
    assert (len(sample.train), len(sample.val), len(sample.test)) == (5400, 600, 1000)
    for split in (sample.train, sample.val, sample.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (1, 28, 28) and split.x.device.type == "cpu"
    assert sample.num_classes == 10 and sample.input_shape == (1, 28, 28)
    assert sample.classes[0] == "T-shirt/top" and len(sample.classes) == 10
    # Standardised with Fashion-MNIST's own mean/std: a real subset lands near 0 / 1.
    assert abs(sample.train.x.mean().item()) < 0.05
    assert abs(sample.train.x.std().item() - 1) < 0.05
    assert "sample" in sample.source and "NOT the full dataset" in sample.source


def test_split_is_deterministic_per_seed():
    a = data.load("fashion_mnist_sample", device="cpu", seed=1)
    b = data.load("fashion_mnist_sample", device="cpu", seed=1)
    c = data.load("fashion_mnist_sample", device="cpu", seed=2)
    assert torch.equal(a.val.x, b.val.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.val.x, c.val.x)


def test_val_fraction_and_bad_arguments():
    ds = data.load("fashion_mnist_sample", device="cpu", val_fraction=0.2)
    assert (len(ds.train), len(ds.val)) == (4800, 1200)
    with pytest.raises(ValueError, match="val_fraction"):
        data.load("fashion_mnist_sample", val_fraction=1.5)
    with pytest.raises(ValueError, match="fashion_mnist_sample"):
        data.load("imagenet")


def test_first_cuts_a_dataset_and_augmentation_is_cifars(sample):
    small = data.first(sample, 100, 20)
    assert (len(small.train), len(small.val), len(small.test)) == (100, 20, len(sample.test))
    assert torch.equal(small.train.x, sample.train.x[:100]) and torch.equal(small.val.y, sample.val.y[:20])
    same = data.first(sample, 30)
    assert torch.equal(same.val.x, same.train.x)             # n_val None: the training head validates
    assert data.augments("cifar10") and data.augments("cifar100")
    assert not data.augments("mnist") and not data.augments("fashion_mnist_sample")


def test_sample_file_integrity():
    manifest = json.loads(data.SAMPLE_MANIFEST.read_text())
    assert sources.sha256(data.SAMPLE_FILE) == manifest["sha256"]
    assert "MIT" in manifest["licence"]
    assert data.SAMPLE_FILE.stat().st_size <= 4 * 2**20
    with np.load(data.SAMPLE_FILE) as npz:
        assert npz["train_x"].dtype == np.uint8
        assert np.bincount(npz["train_y"]).tolist() == [600] * 10
        assert np.bincount(npz["test_y"]).tolist() == [100] * 10
        if (DEBIAN / "train-images-idx3-ubyte.gz").exists():   # a real subset of the full set
            full = data.read_idx(DEBIAN / "train-images-idx3-ubyte.gz")
            assert np.array_equal(full[npz["train_index"]], npz["train_x"])


def test_damaged_sample_is_refused(monkeypatch, tmp_path):
    copy = tmp_path / "fashion_mnist_sample.npz"
    copy.write_bytes(data.SAMPLE_FILE.read_bytes()[:-10])
    (tmp_path / "fashion_mnist_sample.json").write_text(data.SAMPLE_MANIFEST.read_text())
    monkeypatch.setattr(sources, "SAMPLE_FILE", copy)
    monkeypatch.setattr(sources, "SAMPLE_MANIFEST", copy.with_suffix(".json"))
    with pytest.raises(DataError, match="sha256"):
        data.load("fashion_mnist_sample")


# ------------------------------------------------------------------ IDX files

def test_idx_reader_gzip_and_raw(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "a", array)), array)
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "b", array, compress=False)), array)


def test_idx_reader_names_truncated_and_corrupt_files(tmp_path):
    path = write_idx(tmp_path / "t", np.zeros((5, 4, 4)), compress=False)
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError, match=r"t is truncated.*promises 80 bytes"):
        data.read_idx(path)
    gz = write_idx(tmp_path / "g", np.zeros((50, 4, 4)))
    gz.write_bytes(gz.read_bytes()[:-12])
    with pytest.raises(DataError, match=r"g\.gz is truncated or corrupt"):
        data.read_idx(gz)
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(DataError, match="bad magic"):
        data.read_idx(bad)


# ------------------------------------------------------------------ where data comes from

def test_resolution_order(isolated, monkeypatch, no_network):
    tmp = isolated
    assert not data.available("fashion_mnist") and data.available("fashion_mnist_sample")
    write_idx_set(tmp / "system", marker=3)
    assert data.available("fashion_mnist")
    assert marker_of(data.load("fashion_mnist", device="cpu", download=False)) == 3
    write_idx_set(tmp / "cache" / "fwdlib" / "fashion_mnist", marker=2)      # cache beats system
    assert marker_of(data.load("fashion_mnist", device="cpu", download=False)) == 2
    write_idx_set(tmp / "env" / "FashionMNIST" / "raw", marker=1)            # torchvision layout
    monkeypatch.setenv("FWDLIB_DATA", str(tmp / "env"))
    assert marker_of(data.load("fashion_mnist", device="cpu", download=False)) == 1
    write_idx_set(tmp / "root", marker=0)                                    # root beats all
    ds = data.load("fashion_mnist", root=tmp / "root", device="cpu", download=False)
    assert marker_of(ds) == 0 and str(tmp / "root") in ds.source
    assert (len(ds.train), len(ds.val), len(ds.test)) == (36, 4, 10)


def test_nothing_found_lists_every_place(isolated, no_network):
    with pytest.raises(DataError) as err:
        data.load("fashion_mnist", device="cpu", download=False)
    message = str(err.value)
    assert str(isolated / "cache") in message and str(isolated / "system") in message
    assert "download=False" in message and "FWDLIB_DATA" in message
    assert "dataset-fashion-mnist" in message


def test_blocked_download_is_reported_and_leaves_no_file(isolated, no_network):
    with pytest.raises(DataError) as err:
        data.load("fashion_mnist", device="cpu", download=True)
    assert "torchvision download" in str(err.value)
    leftovers = [p for p in (isolated / "cache").rglob("*") if p.is_file()]
    assert leftovers == []


def test_atomic_write_never_leaves_a_half_file(tmp_path, monkeypatch):
    target = tmp_path / "out" / "file.gz"
    target.parent.mkdir()
    target.write_bytes(b"old complete file")

    def interrupted(fd):
        raise KeyboardInterrupt            # killed after writing, before the rename

    monkeypatch.setattr(files.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(target, b"x" * 1000)
    assert list(target.parent.iterdir()) == [target] and target.read_bytes() == b"old complete file"


def test_mnist_uses_first_50k_for_training(monkeypatch, tmp_path):
    monkeypatch.delenv("FWDLIB_DATA", raising=False)
    root = tmp_path / "mnist"
    root.mkdir()
    labels = np.arange(60_000) % 10
    images = np.zeros((60_000, 28, 28), dtype=np.uint8)
    images[50_000:, 0, 0] = 255                                  # mark the last 10k
    write_idx(root / "train-images-idx3-ubyte", images)
    write_idx(root / "train-labels-idx1-ubyte", labels)
    write_idx(root / "t10k-images-idx3-ubyte", images[:10])
    write_idx(root / "t10k-labels-idx1-ubyte", labels[:10])
    ds = data.load("mnist", root=tmp_path, device="cpu", download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (50_000, 10_000, 10)
    raw = data.unnormalise(ds.val.x[:, :, :1, :1], ds)
    assert bool((raw > 0.99).all())
    assert bool((data.unnormalise(ds.train.x[:, :, :1, :1], ds) < 0.01).all())
    # val_fraction is honoured, with the study's kind of split: the last images validate
    quarter = data.load("mnist", root=tmp_path, device="cpu", download=False, val_fraction=0.25)
    assert (len(quarter.train), len(quarter.val)) == (45_000, 15_000)
    assert torch.equal(quarter.val.x[-10_000:], ds.val.x) and torch.equal(quarter.train.x, ds.train.x[:45_000])


@pytest.mark.skipif(not DEBIAN.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_full_fashion_mnist_from_debian(monkeypatch):
    monkeypatch.delenv("FWDLIB_DATA", raising=False)
    ds = data.load("fashion_mnist", device="cpu", download=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (54_000, 6_000, 10_000)
    assert abs(ds.train.x.mean().item()) < 0.01 and abs(ds.train.x.std().item() - 1) < 0.01


# ------------------------------------------------------------------ batches

def test_batches_cover_each_index_once(sample):
    gen = torch.Generator().manual_seed(0)
    seen = torch.cat([y for _, y in data.batches(data.Split(sample.train.x, torch.arange(5400)),
                                                 128, shuffle=True, generator=gen)])
    assert sorted(seen.tolist()) == list(range(5400))
    sizes = [len(y) for _, y in data.batches(sample.val, 128)]
    assert sizes == [128] * 4 + [88]
    epochs = [torch.cat([x for x, _ in data.batches(sample.val, 128, augment=True,
                                                     generator=torch.Generator().manual_seed(3))])
              for _ in range(2)]
    assert torch.equal(epochs[0], epochs[1]) and not torch.equal(epochs[0], sample.val.x)


def test_random_crop_flip_is_a_crop_of_the_padded_image():
    x = torch.randn(6, 3, 32, 32)
    out = data.random_crop_flip(x, *data.draw_crops(6, torch.Generator().manual_seed(0)))
    again = data.random_crop_flip(x, *data.draw_crops(6, torch.Generator().manual_seed(0)))
    assert out.shape == x.shape and torch.equal(out, again)
    unmoved = data.random_crop_flip(x, torch.full((2, 6), 4), torch.zeros(6, dtype=torch.bool))
    assert torch.equal(unmoved, x)                       # centre crop, no flip: the image itself
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4), mode="reflect")
    for i in range(len(x)):
        crops = [padded[i, :, r:r + 32, c:c + 32] for r in range(9) for c in range(9)]
        assert any(torch.equal(out[i], crop) or torch.equal(out[i], crop.flip(-1)) for crop in crops)


# ------------------------------------------------------------------ a place the user named

def test_a_named_root_that_does_not_hold_the_data_is_refused(isolated, no_network):
    write_idx_set(isolated / "system")                      # a good copy elsewhere is not used
    a_file = isolated / "notes.txt"
    a_file.write_text("not a folder")
    no_labels = write_idx_set(isolated / "partial")
    (no_labels / "train-labels-idx1-ubyte.gz").unlink()
    for root, why in ((a_file, "is a file, not a folder"), (isolated / "nowhere", "does not exist"),
                      (no_labels, "does not hold fashion_mnist's files")):
        with pytest.raises(DataError, match=why):
            data.load("fashion_mnist", root=root, device="cpu", download=False)


def test_a_bad_fwdlib_data_is_reported_then_passed_over(isolated, monkeypatch, capsys, no_network):
    write_idx_set(isolated / "system", marker=4)
    monkeypatch.setenv("FWDLIB_DATA", str(isolated / "nowhere"))
    assert marker_of(data.load("fashion_mnist", device="cpu", download=False)) == 4
    assert "$FWDLIB_DATA='" in capsys.readouterr().out


def test_labels_out_of_range_or_shaped_like_images_are_refused(isolated, no_network):
    folder = write_idx_set(isolated / "root")
    write_idx(folder / "train-labels-idx1-ubyte", np.full(40, 200))
    with pytest.raises(DataError, match=r"labels range over 200\.\.200.*classes 0\.\.9"):
        data.load("fashion_mnist", root=folder, device="cpu", download=False)
    images = (folder / "train-images-idx3-ubyte.gz").read_bytes()
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(images)       # an image file as labels
    with pytest.raises(DataError, match=r"labels have shape \(40, 28, 28\)"):
        data.load("fashion_mnist", root=folder, device="cpu", download=False)
