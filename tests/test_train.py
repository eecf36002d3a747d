import math

import pytest
import torch
from torch import nn

from fwdlib import algorithms, train, session
from fwdlib.algorithms.base import Algorithm
from fwdlib.data import Dataset, Split


def tiny_dataset(n=64) -> Dataset:
    x, y = torch.randn(n, 1, 2, 2), torch.randint(0, 2, (n,))
    split = Split(x, y)
    return Dataset("tiny", split, Split(x[:16], y[:16]), Split(x[:16], y[:16]), 2, (1, 2, 2),
                   ("a", "b"), "test", (0.0,), (1.0,))


class Scripted(Algorithm):
    """Its 'weight' counts epochs; validation loss follows a script indexed by that count."""
    name = "scripted"

    def __init__(self, val_losses, nan_at=None):
        super().__init__()
        self.epoch = nn.Parameter(torch.zeros(()), requires_grad=False)
        self.val_losses, self.nan_at, self.steps = val_losses, nan_at, 0

    def train_step(self, x, y, stage):
        self.steps += 1
        first_step = self.steps % 4 == 1      # 64 samples / batch 16 = 4 steps per epoch
        if first_step:
            self.epoch += 1
        bad = self.nan_at == (int(self.epoch), (self.steps - 1) % 4 + 1)
        return {"loss": torch.tensor(math.nan if bad else 1.0)}

    def eval_step(self, x, y, stage):
        loss = self.val_losses[int(self.epoch) - 1]
        return torch.tensor(loss * len(x)), torch.tensor(0)


def test_early_stopping_restores_the_best_state():
    algo = Scripted([1.0, 0.5, 0.6, 0.55, 0.7, 0.4])
    history = train.fit(algo, tiny_dataset(), epochs=6, batch_size=16, patience=3, progress=False)
    assert history.epochs == 5 and history.stopped_early["all"]
    assert history.best["all"]["epoch"] == 2
    assert int(algo.epoch) == 2                       # state of the best epoch is back
    assert history["val_loss"] == pytest.approx([1.0, 0.5, 0.6, 0.55, 0.7])


def test_min_delta_counts_small_gains_as_no_gain():
    algo = Scripted([1.0, 0.99, 0.98, 0.97])
    history = train.fit(algo, tiny_dataset(), epochs=4, batch_size=16, patience=2,
                        min_delta=0.05, progress=False)
    assert history.epochs == 3 and history.best["all"]["epoch"] == 1


def test_no_patience_trains_the_full_budget_and_keeps_best():
    algo = Scripted([1.0, 0.5, 0.6, 0.55])
    history = train.fit(algo, tiny_dataset(), epochs=4, batch_size=16, progress=False)
    assert history.epochs == 4 and not history.stopped_early["all"] and int(algo.epoch) == 2


def test_nan_loss_names_epoch_and_step():
    algo = Scripted([1.0] * 5, nan_at=(2, 3))
    with pytest.raises(train.TrainingDiverged, match=r"epoch 2, step 3.*lower learning rate"):
        train.fit(algo, tiny_dataset(), epochs=5, batch_size=16, progress=False)


def test_bad_arguments():
    with pytest.raises(ValueError, match="monitor"):
        train.fit(Scripted([1.0]), tiny_dataset(), epochs=1, monitor="accuracy")
    with pytest.raises(ValueError, match="positive"):
        train.fit(Scripted([1.0]), tiny_dataset(), epochs=0)


def test_factory_lists_names_and_rejects_bad_input():
    assert {"bp-mlp", "bp-cnn", "ff", "cafo-rand", "cafo-dfa", "mf"} <= set(algorithms.NAMES)
    with pytest.raises(ValueError, match="registered: bp-mlp"):
        algorithms.build("bp-rnn", input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(ValueError, match="needs image input"):
        algorithms.build("bp-cnn", input_shape=(784,), num_classes=10)
    cnn = algorithms.build("bp-cnn", input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(ValueError, match="image batches"):
        cnn.logits(torch.randn(2, 784))
    with pytest.raises(TypeError, match="bad configuration for 'bp-mlp'"):
        algorithms.build("bp-mlp", input_shape=(1, 28, 28), num_classes=10, widths=(3,))


def test_history_and_evaluate_on_real_data(sample):
    algo = algorithms.build("bp-mlp", input_shape=sample.input_shape, num_classes=10, hidden=(64,))
    history = train.fit(algo, sample, epochs=2, progress=False)
    assert set(history.records[0]) == {"stage", "epoch", "train_loss", "train_acc", "val_loss",
                                       "val_acc", "time_s"}
    assert history.train_time_s > 0 and 0 <= history["train_acc"][-1] <= 1
    assert 0.5 < train.evaluate(algo, sample.test) <= 1


def test_cuda_graphs_request_falls_back_to_eager_off_cuda():
    algo = Scripted([1.0, 0.9])
    history = train.fit(algo, tiny_dataset(), epochs=2, batch_size=16, progress=False, cuda_graphs=True)
    assert history.mode.startswith("eager") and "need CUDA" in history.mode and history.epochs == 2


def test_progress_in_a_notebook_is_a_finished_text_bar_on_stdout(monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "ipykernel", sys)      # looks like a kernel is running
    bar = train.progress_bar(2, "mf all", True)
    bar.update(2)
    bar.close()
    out, err = capsys.readouterr()
    assert "mf all: 100%" in out and "2/2" in out and err == ""   # a widget bar would print nothing here
    monkeypatch.delitem(sys.modules, "ipykernel")
    silent = train.progress_bar(2, "mf all", False)      # disabled: callers need no None check
    silent.update(2)
    silent.set_postfix(val_acc="1")
    silent.close()
    assert silent.disable and capsys.readouterr() == ("", "")


def test_stage_preparation_is_part_of_the_training_time():
    import time as clock

    class SlowToPrepare(Algorithm):
        name = "slow-prep"

        def __init__(self):
            super().__init__()
            self.w = nn.Linear(4, 2)

        def begin_stage(self, stage, data):
            clock.sleep(0.3)                  # like CaFo's feature extraction
            return super().begin_stage(stage, data)

        def train_step(self, x, y, stage):
            return {"loss": torch.tensor(1.0)}

        def eval_step(self, x, y, stage):
            return torch.tensor(0.0), 0

    history = train.fit(SlowToPrepare(), tiny_dataset(), epochs=1, batch_size=16, progress=False)
    assert history.prep_time_s >= 0.3
    assert history.train_time_s == pytest.approx(history.prep_time_s + sum(history["time_s"]))



def test_cpu_training_leaves_one_core_to_the_rest_of_the_machine(monkeypatch):
    """A thread per core waits at every op's barrier for the core a busy program holds."""
    before = torch.get_num_threads()
    try:
        for cpus, threads in ((1, 1), (2, 1), (8, min(7, session.DEFAULT_THREADS))):
            monkeypatch.setattr(session.os, "sched_getaffinity", lambda pid, n=cpus: set(range(n)))
            train.fit(Scripted([1.0, 0.9]), tiny_dataset(), epochs=2, batch_size=16)
            assert torch.get_num_threads() == threads, (cpus, torch.get_num_threads())
        monkeypatch.setenv("FWDLIB_THREADS", "3")
        assert session.use_training_threads() == 3 == torch.get_num_threads()
        monkeypatch.setenv("FWDLIB_THREADS", "two")
        with pytest.raises(ValueError, match="FWDLIB_THREADS must be a positive whole number"):
            session.use_training_threads()
    finally:
        torch.set_num_threads(before)
