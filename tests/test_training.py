"""The shared training loop: a job killed after epoch 1 resumes to exactly the weights of an uninterrupted run
(under either learning-rate schedule); the plateau schedule divides the learning rate as worked out by hand."""

from __future__ import annotations

import copy

import pytest
import torch

from patchpose.config import validate_config
from patchpose.keypoints2d import stage as keypoints2d_stage
from patchpose.keypoints2d.stage import train_fold
from patchpose.training import TrainSpec, Validation, autocast_settings, load_torch, read_history, train
from tests.conftest import default_config
from tests.dataset_factory import write_tiny_dataset
from tests.test_baselines import _line_problem


class Killed(Exception):
    pass


def tiny_keypoints_settings(epochs: int = 2) -> dict:
    settings = copy.deepcopy(validate_config(default_config())["keypoints2d"])
    settings["model"].update(input_size=16, heatmap_size=8, stacks=2, features=8, depth=1)
    settings["training"].update(epochs=epochs, batch_size=4)
    return {key: settings[key] for key in ("model", "training", "augment")}


@pytest.fixture(scope="module")
def tiny_train_store(tmp_path_factory):
    return write_tiny_dataset(tmp_path_factory.mktemp("store") / "train.zarr", num_frames=12, split="train")


def _train(store, directory, after_epoch=None):
    return train_fold(store, 0, 2, tiny_keypoints_settings(), 7, directory / "model.pt", directory / "ckpt.pt", 1,
                      after_epoch)  # fmt: skip


def test_resume_after_a_kill_at_epoch_1_reaches_the_same_weights(tiny_train_store, tmp_path, monkeypatch):
    initial, build = [], keypoints2d_stage.build_model  # the learnable weights of each network as it was built

    def build_and_record(model_settings):
        model = build(model_settings)
        initial.append({name: weights.detach().clone() for name, weights in model.named_parameters()})
        return model

    monkeypatch.setattr(keypoints2d_stage, "build_model", build_and_record)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    _train(tiny_train_store, tmp_path / "a")

    def kill(epoch):
        if epoch == 0:
            raise Killed

    with pytest.raises(Killed):
        _train(tiny_train_store, tmp_path / "b", kill)
    assert load_torch(tmp_path / "b" / "ckpt.pt")["epoch"] == 0 and not (tmp_path / "b" / "model.pt").exists()
    _train(tiny_train_store, tmp_path / "b")
    a, b = load_torch(tmp_path / "a" / "model.pt")["model"], load_torch(tmp_path / "b" / "model.pt")["model"]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # The comparison is not vacuous: training moved every learnable weight away from its seeded start.
    assert len(initial) == 3 and initial[0].keys() == initial[1].keys() == initial[2].keys()
    for name, start in initial[0].items():
        assert torch.equal(start, initial[1][name]) and torch.equal(start, initial[2][name]), name
        assert not torch.equal(start, a[name]), f"{name} never changed in training"
    checkpoint = load_torch(tmp_path / "a" / "ckpt.pt")
    assert checkpoint["epoch"] == 1 and {"optimiser", "scheduler", "rng", "config"} <= checkpoint.keys()


def test_a_checkpoint_of_another_config_is_not_resumed(tiny_train_store, tmp_path):
    _train(tiny_train_store, tmp_path)
    first = load_torch(tmp_path / "model.pt")["model"]
    settings = tiny_keypoints_settings()
    settings["training"]["learning_rate"] = 0.01
    train_fold(tiny_train_store, 0, 2, settings, 7, tmp_path / "model.pt", tmp_path / "ckpt.pt", 1)
    second = load_torch(tmp_path / "model.pt")["model"]
    assert load_torch(tmp_path / "ckpt.pt")["config"]["settings"]["training"]["learning_rate"] == 0.01
    assert any(not torch.equal(first[n], second[n]) for n in first if first[n].is_floating_point())


def test_corrupt_checkpoint_error_names_the_file(tiny_train_store, tmp_path):
    (tmp_path / "ckpt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="ckpt.pt: not a readable"):
        _train(tiny_train_store, tmp_path)


# --- learning-rate schedules ----------------------------------------------------------------------------


def test_plateau_schedule_by_hand(tmp_path):
    """Validation losses chosen by hand; plateau_patience 2, factor 0.1: the learning rate after each epoch.

    epoch 1: 5 (best), 2: 4 (best), 3: 4 (equal is not lower: 1 bad), 4: 6 (2 bad: 1 -> 0.1, count restarts),
    5: 3 (best), 6: 3.5 (1 bad), 7: 3.5 (2 bad: 0.1 -> 0.01, count restarts), 8: 3.5 (1 bad), 9: 2.9999 (lower
    by 1e-4: best), 10: 3.5 (1 bad), 11: 2 (best), 12: 2 (1 bad).
    """
    given = [5.0, 4.0, 4.0, 6.0, 3.0, 3.5, 3.5, 3.5, 2.9999, 3.5, 2.0, 2.0]
    losses = iter(given)
    x = torch.linspace(-1, 1, 4)[:, None]

    def loss_fn(outputs, targets):  # training: a real loss; validation: the next hand-chosen value
        return torch.nn.functional.mse_loss(outputs, targets) if torch.is_tensor(targets) else torch.tensor(targets)

    validation = Validation(2, lambda rows, device: (x[rows], next(losses)))
    spec = TrainSpec(12, 4, 1.0, 0.0, 0, ("hand",), schedule="plateau", plateau_factor=0.1, plateau_patience=2)
    train(torch.nn.Linear(1, 1), 4, lambda rows, rng, device: (x[rows], 2 * x[rows]), loss_fn, spec,
          tmp_path / "ckpt.pt", {}, torch.device("cpu"), validation=validation)  # fmt: skip
    history = read_history(tmp_path / "ckpt.pt")
    assert [record["val_loss"] for record in history] == pytest.approx(given, rel=1e-7)  # float32 of the given
    expected = [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01]
    assert [record["lr"] for record in history] == pytest.approx(expected, rel=1e-12)
    assert load_torch(tmp_path / "ckpt.pt")["optimiser"]["param_groups"][0]["lr"] == pytest.approx(0.01, rel=1e-12)


def test_plateau_schedule_needs_validation_and_valid_settings(tmp_path):
    x = torch.linspace(-1, 1, 4)[:, None]
    spec = TrainSpec(2, 4, 0.1, 0.0, 0, ("x",), schedule="plateau", plateau_patience=1)
    with pytest.raises(ValueError, match="schedule 'plateau' .* needs validation"):
        train(torch.nn.Linear(1, 1), 4, lambda rows, rng, device: (x[rows], x[rows]), torch.nn.functional.mse_loss,
              spec, tmp_path / "ckpt.pt", {}, torch.device("cpu"))  # fmt: skip
    assert not (tmp_path / "ckpt.pt").exists()
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        TrainSpec(2, 4, 0.1, 0.0, 0, ("x",), schedule="step")
    with pytest.raises(ValueError, match="plateau_patience >= 1"):
        TrainSpec(2, 4, 0.1, 0.0, 0, ("x",), schedule="plateau")
    with pytest.raises(ValueError, match=r"plateau_factor must lie in \(0, 1\), got 1.0"):
        TrainSpec(2, 4, 0.1, 0.0, 0, ("x",), schedule="plateau", plateau_factor=1.0, plateau_patience=1)


PLATEAU = {"schedule": "plateau", "plateau_patience": 2}


def _train_line(checkpoint, schedule: dict, after_epoch=None) -> torch.nn.Module:
    """The line problem of test_baselines (train y = 2x, validate y = x; the validation loss rises once the
    weight passes 1), 12 epochs at learning rate 0.05, no early stopping."""
    model, make_batch, validation = _line_problem()
    spec = TrainSpec(12, 8, 0.05, 0.0, 0, ("line",), **schedule)
    return train(model, 32, make_batch, torch.nn.functional.mse_loss, spec, checkpoint, {"line": 1},
                 torch.device("cpu"), after_epoch, validation)  # fmt: skip


@pytest.mark.parametrize("schedule", [{}, PLATEAU], ids=["cosine", "plateau"])
def test_resume_after_a_kill_continues_the_learning_rate_schedule_exactly(tmp_path, schedule):
    whole = _train_line(tmp_path / "a.pt", schedule)
    kill_after = 7  # the 8th epoch: for plateau, after the first division, one epoch into the next stall

    def kill(epoch):
        if epoch == kill_after:
            raise Killed

    with pytest.raises(Killed):
        _train_line(tmp_path / "b.pt", schedule, kill)
    killed = load_torch(tmp_path / "b.pt")
    assert killed["epoch"] == kill_after
    resumed = _train_line(tmp_path / "b.pt", schedule)
    a, b = read_history(tmp_path / "a.pt"), read_history(tmp_path / "b.pt")
    assert len(a) == len(b) == 12
    assert [r["lr"] for r in a] == [r["lr"] for r in b] and [r["val_loss"] for r in a] == [r["val_loss"] for r in b]
    assert torch.equal(whole.weight, resumed.weight)  # the best epoch's weights
    last_a, last_b = load_torch(tmp_path / "a.pt"), load_torch(tmp_path / "b.pt")
    assert torch.equal(last_a["model"]["weight"], last_b["model"]["weight"])  # the last epoch's weights
    assert last_a["optimiser"]["param_groups"][0]["lr"] == last_b["optimiser"]["param_groups"][0]["lr"]
    lrs = [r["lr"] for r in a]
    if schedule:  # the run did plateau: divisions before the kill and after it, with a stall under way at the kill
        drops = [epoch for epoch in range(1, 12) if lrs[epoch] < lrs[epoch - 1]]
        assert lrs[0] == 0.05 and drops[0] < kill_after < drops[-1] and len(drops) >= 2
        assert killed["scheduler"]["num_bad_epochs"] == 1 and killed["schedule"] == "plateau"
        assert all(lr == lrs[epoch - 1] for epoch, lr in enumerate(lrs) if epoch and epoch not in drops)
    else:  # cosine: a step-wise decay, no schedule key in the checkpoint (as before the plateau schedule existed)
        assert all(lrs[i] > lrs[i + 1] for i in range(11)) and "schedule" not in killed


def test_a_checkpoint_of_another_schedule_is_not_resumed(tmp_path):
    _train_line(tmp_path / "ckpt.pt", {})
    _train_line(tmp_path / "ckpt.pt", PLATEAU)  # same config, other schedule: trains from scratch
    history = read_history(tmp_path / "ckpt.pt")
    assert len(history) == 12 and history[0]["lr"] == 0.05 and min(r["lr"] for r in history) < 0.05 / 9
    assert load_torch(tmp_path / "ckpt.pt")["schedule"] == "plateau"


def test_autocast_is_bf16_where_the_gpu_has_it_else_fp16_with_loss_scaling_and_off_on_the_cpu():
    cuda = torch.device("cuda")
    assert autocast_settings(cuda, bf16_supported=True) == (True, torch.bfloat16, False)
    assert autocast_settings(cuda, bf16_supported=False) == (True, torch.float16, True)
    assert autocast_settings(torch.device("cpu")) == (False, torch.float32, False)
