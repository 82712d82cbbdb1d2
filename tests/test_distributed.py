"""Data-parallel training on the CPU (gloo, 2 processes started by the package): the same loss curve as one
process with the same global batch, exact resume after a kill, rank 0 alone writing, and the updater trained
that way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from patchpose.distributed import SINGLE, Ranks, launch, share
from patchpose.training import TrainSpec, Validation, epoch_batches, load_torch, read_history, seed_torch, train

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")

ITEMS, FEATURES, OUTPUTS = 64, 6, 3
# Batches of 7 give shares of 4 and 3 (weighted). float32 sums in another order (two shares, then an average)
# differ in the last bits and Adam carries that along (seen: 2e-8 train, 1e-7 validation loss, relative); 1e-5
# separates rounding from another computation.
TOLERANCE = 1e-5


class Killed(Exception):
    pass


def _data():
    rng = np.random.default_rng(0)
    inputs = torch.from_numpy(rng.normal(size=(ITEMS, FEATURES)).astype(np.float32))
    weights = torch.from_numpy(rng.normal(size=(FEATURES, OUTPUTS)).astype(np.float32))
    return inputs, inputs @ weights + 0.1 * torch.from_numpy(rng.normal(size=(ITEMS, OUTPUTS)).astype(np.float32))


def _model(dropout: float) -> torch.nn.Module:
    seed_torch(0, "test")
    return torch.nn.Sequential(torch.nn.Linear(FEATURES, 16), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                               torch.nn.Linear(16, OUTPUTS))  # fmt: skip


def _kill_after_first_epoch(epoch: int) -> None:
    if epoch == 0:
        raise Killed


def _run(ranks: Ranks, checkpoint: str, dropout: float, epochs: int = 3, after_epoch=None) -> None:
    """One process of a run (module level: the spawned workers import it)."""
    inputs, targets = _data()
    model = _model(dropout)
    if ranks.parallel:
        seed_torch(0, "test", "rank", ranks.rank)  # as fitting.fit: own dropout stream per rank
    spec = TrainSpec(epochs=epochs, batch_size=7, learning_rate=0.01, weight_decay=0.0, seed=0, names=("t",))
    validation = Validation(16, lambda rows, device: (inputs[rows], targets[rows]), batch_size=5)

    def make_batch(rows, rng, device):
        return inputs[16:][rows], targets[16:][rows]

    def loss_fn(prediction, goal):
        return ((prediction - goal) ** 2).sum(dim=1).mean()

    train(model, ITEMS - 16, make_batch, loss_fn, spec, checkpoint, {"test": 1}, torch.device("cpu"), after_epoch,
          validation, ranks)  # fmt: skip


def _weights(checkpoint) -> dict:
    return load_torch(checkpoint)["model"]


def test_shares_split_every_batch_between_the_ranks():
    planned = epoch_batches(50, 8, np.random.default_rng(0), Ranks(0, 2))
    assert all(len(batch) >= 4 for batch in planned)
    for batch in planned:
        together = np.sort(np.concatenate([share(batch, Ranks(rank, 2)) for rank in range(2)]))
        assert np.array_equal(together, np.sort(batch))
    with pytest.raises(ValueError, match="fewer than 2 examples"):
        epoch_batches(50, 3, np.random.default_rng(0), Ranks(0, 2))


def test_two_processes_follow_the_one_process_loss_curve(tmp_path):
    _run(SINGLE, str(tmp_path / "one.ckpt"), dropout=0.0)
    launch(_run, 2, str(tmp_path / "two.ckpt"), 0.0)
    one, two = read_history(tmp_path / "one.ckpt"), read_history(tmp_path / "two.ckpt")
    assert [r["epoch"] for r in one] == [r["epoch"] for r in two] == [1, 2, 3]
    for key in ("train_loss", "val_loss"):
        a, b = np.array([r[key] for r in one]), np.array([r[key] for r in two])
        assert np.allclose(a, b, rtol=TOLERANCE), (key, a, b)
    assert one[0]["train_loss"] > one[-1]["train_loss"]  # it did learn
    first, second = _weights(tmp_path / "one.ckpt"), _weights(tmp_path / "two.ckpt")
    assert all(torch.allclose(first[k], second[k], rtol=TOLERANCE, atol=TOLERANCE) for k in first)
    assert load_torch(tmp_path / "two.ckpt")["config"] == {"test": 1, "processes": 2}


def test_a_killed_two_process_run_resumes_to_the_same_weights(tmp_path):
    launch(_run, 2, str(tmp_path / "whole.ckpt"), 0.5)
    with pytest.raises(Exception, match="Killed"):
        launch(_run, 2, str(tmp_path / "killed.ckpt"), 0.5, 3, _kill_after_first_epoch)
    assert [r["epoch"] for r in read_history(tmp_path / "killed.ckpt")] == [1]
    assert len(load_torch(tmp_path / "killed.ckpt")["rng"]) == 2  # every rank's RNG state
    launch(_run, 2, str(tmp_path / "killed.ckpt"), 0.5)
    whole, resumed = _weights(tmp_path / "whole.ckpt"), _weights(tmp_path / "killed.ckpt")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    # the dropout streams differ per rank: a run whose ranks drew the same masks would be another run
    _run(SINGLE, str(tmp_path / "one.ckpt"), 0.5)
    assert not all(torch.equal(whole[k], _weights(tmp_path / "one.ckpt")[k]) for k in whole)


def test_a_checkpoint_of_two_processes_is_not_resumed_by_one(tmp_path, caplog):
    launch(_run, 2, str(tmp_path / "run.ckpt"), 0.0, 1)
    with caplog.at_level("INFO", logger="patchpose.training"):
        _run(SINGLE, str(tmp_path / "run.ckpt"), 0.0, 1)
    assert "ignoring" in caplog.text
