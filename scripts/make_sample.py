"""Regenerate fwdlib's embedded Fashion-MNIST sample from the full IDX files.

    python scripts/make_sample.py [--source /usr/share/datasets/fashion-mnist]

Takes a stratified, seeded subset (600 training and 100 test images per class) of the real
Fashion-MNIST (MIT licence, Zalando Research) and writes fwdlib/data/_data/fashion_mnist_sample.npz
plus a manifest with its sha256, both atomically.
"""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import numpy as np

from fwdlib.data.catalog import SAMPLE_FILE, SAMPLE_MANIFEST
from fwdlib.data.sources import _find_idx, _read_idx_set, sha256
from fwdlib.files import atomic_write

TRAIN_PER_CLASS, TEST_PER_CLASS, SEED = 600, 100, 0


def stratified(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
             for c in range(int(labels.max()) + 1)]
    return np.sort(np.concatenate(picks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="/usr/share/datasets/fashion-mnist",
                        help="folder with the four Fashion-MNIST IDX files (gzip or raw)")
    args = parser.parse_args()
    files = _find_idx(Path(args.source))
    if files is None:
        raise SystemExit(f"no Fashion-MNIST IDX files in {args.source}; "
                         "install dataset-fashion-mnist or pass --source")
    full = _read_idx_set(files)
    rng = np.random.default_rng(SEED)
    train = stratified(full["train_y"], TRAIN_PER_CLASS, rng)
    test = stratified(full["test_y"], TEST_PER_CLASS, rng)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, train_x=full["train_x"][train], train_y=full["train_y"][train],
                        test_x=full["test_x"][test], test_y=full["test_y"][test],
                        train_index=train.astype(np.int32), test_index=test.astype(np.int32))
    SAMPLE_FILE.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(SAMPLE_FILE, buffer.getvalue())
    manifest = {
        "dataset": "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), Zalando Research",
        "licence": "MIT, Copyright (c) 2017 Zalando SE; https://github.com/zalandoresearch/fashion-mnist",
        "subset": f"stratified: {TRAIN_PER_CLASS} train and {TEST_PER_CLASS} test images per class, "
                  f"numpy default_rng({SEED}); train_index/test_index give the positions in the full set",
        "made_by": "scripts/make_sample.py",
        "sha256": sha256(SAMPLE_FILE),
    }
    atomic_write(SAMPLE_MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    print(f"wrote {SAMPLE_FILE} ({SAMPLE_FILE.stat().st_size / 1e6:.2f} MB), sha256 {manifest['sha256'][:12]}")


if __name__ == "__main__":
    main()
