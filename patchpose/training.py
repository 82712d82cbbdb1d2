"""The shared training loop: seeded Adam, per-epoch checkpoints, exact resume, CUDA AMP / CPU fp32,
optional validation loss per epoch with early stopping on its plateau, a cosine or plateau learning-rate
schedule.

Determinism: every epoch's frame order and augmentation draw from a numpy
stream named by (seed, *names, epoch), so a run resumed after epoch ``e``
consumes exactly the numbers an uninterrupted run does. Checkpoints (one file,
written atomically after every epoch) hold the model, optimiser, scheduler,
AMP scaler, epoch, the torch/numpy RNG states and the config they were trained
under; a checkpoint written under another config is ignored (and logged).
On CUDA the same code runs with autocast (bf16 where the GPU supports it, else fp16 + GradScaler;
``autocast_settings``) and channels_last;
on CPU in fp32.

Validation (optional, ``Validation``): after every epoch the mean loss over held-out examples is
computed (eval mode, no augmentation); the weights of the best epoch are kept (in the checkpoint too),
training stops after ``TrainSpec.patience`` epochs without a strictly lower validation loss (or at
``TrainSpec.epochs``), and the returned model holds the best epoch's weights. The per-epoch history
(``read_history``) lives in the checkpoint, so a resumed run reports every epoch.

Learning rate (``TrainSpec.schedule``): ``cosine`` decays it from ``learning_rate`` to 0 over all steps of
``epochs`` epochs, step by step; ``plateau`` (needs validation) keeps it constant and multiplies it by
``plateau_factor`` once ``plateau_patience`` epochs in a row bring no strictly lower validation loss (then
counts afresh), as the paper's refinement module is trained ("divided by 10 after loss plateau on the
validation set"). Either schedule's state is in the checkpoint, so a resumed run continues its sequence.

Memory: on the CPU ``train`` first keeps glibc from unmapping and re-mapping the large tensors each step
allocates and frees (``patchpose.allocator.keep_freed_memory``; ``PATCHPOSE_MALLOC=default`` leaves glibc as it
is).
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from patchpose.allocator import keep_freed_memory
from patchpose.atomic import atomic_write_bytes
from patchpose.distributed import SINGLE, Ranks, all_gather, all_reduce_sums, barrier, share
from patchpose.rng import stream

__all__ = [
    "TrainSpec",
    "SCHEDULES",
    "Validation",
    "select_device",
    "autocast_settings",
    "seed_torch",
    "train",
    "save_torch",
    "load_torch",
    "batches",
    "epoch_batches",
    "read_history",
]

log = logging.getLogger("patchpose.training")

SCHEDULES = ("cosine", "plateau")


@dataclass(frozen=True)
class TrainSpec:
    """What one training run is. ``names`` name its RNG streams, e.g. ("keypoints2d", "fold", 0).

    epochs: the number of epochs (the maximum, with validation and ``patience`` > 0; the cosine learning
    rate decay spans it either way). patience: with validation, stop after this many epochs without a
    better validation loss; 0 = never stop early. schedule: ``cosine`` or ``plateau`` (see the module
    docstring); plateau_factor (in (0, 1)) and plateau_patience (epochs, >= 1; required for ``plateau``)
    are used by ``plateau`` only.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    seed: int
    names: tuple[str | int, ...]
    patience: int = 0
    schedule: str = "cosine"
    plateau_factor: float = 0.1
    plateau_patience: int | None = None

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}; expected one of {SCHEDULES}")
        if self.schedule == "plateau":
            if not 0 < self.plateau_factor < 1:
                raise ValueError(f"plateau_factor must lie in (0, 1), got {self.plateau_factor}")
            if self.plateau_patience is None or self.plateau_patience < 1:
                raise ValueError(f"schedule 'plateau' needs plateau_patience >= 1 epochs, got {self.plateau_patience}")


@dataclass(frozen=True)
class Validation:
    """Held-out examples scored after every epoch.

    make_batch(indices, device) -> (inputs, targets) for examples ``indices`` of ``range(num_items)``,
    without augmentation; scored with the training ``loss_fn`` in batches of ``batch_size`` (the loss is
    weighted by batch size, so the result does not depend on it beyond float rounding).
    """

    num_items: int
    make_batch: Callable[[np.ndarray, torch.device], tuple[torch.Tensor, Any]]
    batch_size: int = 256


def select_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_torch(seed: int, *names: str | int) -> None:
    """Seed torch's global generators from a named stream; deterministic algorithms on."""
    torch.manual_seed(int(stream(seed, *names).integers(2**63 - 1)))
    torch.use_deterministic_algorithms(True, warn_only=True)


def save_torch(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_torch(path: str | Path) -> dict[str, Any]:
    """Load a payload written by ``save_torch``; a clear error naming the file otherwise."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise ValueError(f"{path}: not a readable patchpose checkpoint/model: {error}") from error


def batches(num_items: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A shuffled partition of ``range(num_items)`` into batches (the last one dropped if it has 1 item:
    BatchNorm needs two)."""
    order = rng.permutation(num_items)
    chunks = [order[i : i + batch_size] for i in range(0, num_items, batch_size)]
    return [c for c in chunks if len(c) > 1] or chunks


def epoch_batches(num_items: int, batch_size: int, rng: np.random.Generator, ranks: Ranks = SINGLE) -> list:
    """The global batches of one epoch (``batches``); with several processes the batches too small to give every
    rank two examples are left out (BatchNorm needs two per rank), and each rank trains on its ``share``."""
    planned = batches(num_items, batch_size, rng)
    if ranks.parallel:
        planned = [indices for indices in planned if len(indices) >= 2 * ranks.world]
        if not planned:
            raise ValueError(f"batch size {batch_size} gives {ranks.world} processes fewer than 2 examples each")
    return planned


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def autocast_settings(device: torch.device, bf16_supported: bool | None = None) -> tuple[bool, torch.dtype, bool]:
    """(autocast on, its dtype, GradScaler on) for ``device``: CUDA with bf16 (Ampere and later) needs no loss
    scaling; CUDA without it runs fp16 with a GradScaler; the CPU trains in fp32 (autocast off).
    ``bf16_supported``: None asks the GPU (``torch.cuda.is_bf16_supported``)."""
    if device.type != "cuda":
        return False, torch.float32, False
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    return (True, torch.bfloat16, False) if bf16_supported else (True, torch.float16, True)


def _layout(inputs, amp: bool):
    """Images (4-D) go channels_last under AMP; other inputs (e.g. vectors, None) are left as they are. A
    tuple of inputs (a network of several arguments) is laid out element by element."""
    if isinstance(inputs, tuple):
        return tuple(_layout(element, amp) for element in inputs)
    if amp and isinstance(inputs, torch.Tensor) and inputs.ndim == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def _forward(model, inputs):
    """``model(*inputs)`` for a tuple of inputs (e.g. the updater's images, initial orientations, boxes),
    else ``model(inputs)``."""
    return model(*inputs) if isinstance(inputs, tuple) else model(inputs)


@torch.no_grad()
def _validation_loss(model, validation: Validation, loss_fn, device: torch.device, amp: bool, ranks: Ranks) -> float:
    """Mean loss over the held-out examples; with several processes each scores its share of every batch."""
    _, dtype, _ = autocast_settings(device)
    model.eval()
    total = 0.0
    for start in range(0, validation.num_items, validation.batch_size):
        indices = share(np.arange(start, min(start + validation.batch_size, validation.num_items)), ranks)
        if not len(indices):
            continue
        inputs, targets = validation.make_batch(indices, device)
        inputs = _layout(inputs, amp)
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=amp):
            total += float(loss_fn(_forward(model, inputs), targets)) * len(indices)
    (total,) = all_reduce_sums([total], ranks)
    return total / validation.num_items


def read_history(checkpoint_path: str | Path) -> list[dict[str, Any]]:
    """Per-epoch records of the run in ``checkpoint_path``: ``epoch`` (1-based), ``train_loss``, ``lr``
    (after the epoch), ``seconds`` and, with validation, ``val_loss`` and ``best`` (bool: the kept epoch)."""
    state = load_torch(checkpoint_path)
    history = [dict(record) for record in state.get("history", [])]
    if state.get("best") is not None:
        for record in history:
            record["best"] = record["epoch"] == state["best"]["epoch"] + 1
    return history


def _scheduler(optimiser: torch.optim.Optimizer, spec: TrainSpec, num_items: int):
    """The learning-rate scheduler of ``spec.schedule``: cosine steps after every batch, plateau after every
    epoch with the validation loss."""
    if spec.schedule == "plateau":
        # threshold 0 (absolute): only a strictly lower loss counts as better; torch divides once more than
        # its ``patience`` epochs were not better, hence - 1; eps 0: every division happens, however small.
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimiser, mode="min", factor=spec.plateau_factor, patience=spec.plateau_patience - 1, threshold=0.0,
            threshold_mode="abs", cooldown=0, eps=0.0,
        )  # fmt: skip
    steps_per_epoch = len(batches(num_items, spec.batch_size, np.random.default_rng(0)))
    total = max(1, spec.epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))


def train(
    model: torch.nn.Module,
    num_items: int,
    make_batch: Callable[[np.ndarray, np.random.Generator, torch.device], tuple[torch.Tensor, Any]],
    loss_fn: Callable[[Any, Any], torch.Tensor],
    spec: TrainSpec,
    checkpoint_path: str | Path,
    config: dict[str, Any],
    device: torch.device,
    after_epoch: Callable[[int], None] | None = None,
    validation: Validation | None = None,
    ranks: Ranks = SINGLE,
) -> torch.nn.Module:
    """Train ``model`` for ``spec.epochs`` epochs over ``num_items`` examples, resuming from
    ``checkpoint_path`` when it holds a checkpoint of the same ``config``.

    make_batch(indices, rng, device) -> (inputs, targets): builds (and augments) one batch (inputs: a
    tensor, or a tuple of the network's arguments); loss_fn(model(inputs), targets) -> scalar loss.
    after_epoch(epoch) runs after each epoch's checkpoint is written (tests use it to simulate a kill).
    validation: see ``Validation``; with it the best epoch's weights are returned and ``spec.patience``
    stops early; ``spec.schedule`` ``plateau`` needs it. A checkpoint is resumed only if written under
    ``config`` (which should therefore hold what ``spec`` was made from) and ``spec.schedule``. Returns the
    trained model (on ``device``, eval mode).

    ranks (``patchpose.distributed``): with several processes (started by ``distributed.launch``) the model is
    wrapped in DistributedDataParallel; every rank draws the same global batches (``epoch_batches``) and trains
    on its ``share`` of each, its loss weighted by its share of the batch so that the averaged gradient is the
    global batch's; losses are summed over ranks; only rank 0 writes the checkpoint, which holds every rank's
    RNG state (and the process count in its config), so a killed run resumes exactly. ``config`` gains
    ``processes`` when there are several, so a checkpoint never resumes under another process count.
    """
    if num_items < 2:
        raise ValueError(f"need at least 2 training examples, got {num_items}")
    if device.type == "cpu":  # the tensors a CUDA step allocates and frees live on the GPU
        keep_freed_memory()
    plateau = spec.schedule == "plateau"
    if plateau and validation is None:
        raise ValueError("schedule 'plateau' lowers the learning rate when the validation loss stalls: it needs "
                         "validation (held-out examples), got none")  # fmt: skip
    amp, amp_dtype, scaled = autocast_settings(device)
    model.to(device)
    if amp:
        model.to(memory_format=torch.channels_last)
    core = model  # what is saved, validated and returned; ``model`` may be its DistributedDataParallel wrapper
    if ranks.parallel:
        config = {**config, "processes": ranks.world}
        model = torch.nn.parallel.DistributedDataParallel(core, device_ids=[device] if device.type == "cuda" else None)
    optimiser = torch.optim.Adam(model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay)
    scheduler = _scheduler(optimiser, spec, num_items)
    scaler = torch.amp.GradScaler("cuda", enabled=scaled)
    start, history, best, stopped = 0, [], None, False
    checkpoint_path = Path(checkpoint_path)
    if checkpoint_path.exists():
        state = load_torch(checkpoint_path)
        if state.get("config") == config and state.get("schedule", "cosine") == spec.schedule:
            core.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"][ranks.rank] if ranks.parallel else state["rng"])
            start = state["epoch"] + 1
            history, best, stopped = state.get("history", []), state.get("best"), state.get("stopped", False)
            log.info("resuming from %s after epoch %d", checkpoint_path, state["epoch"])
        else:
            log.info("ignoring %s: written under another config or schedule", checkpoint_path)
    checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
    for epoch in range(start, spec.epochs if not stopped else start):
        model.train()
        rng = stream(spec.seed, *spec.names, "epoch", epoch)
        began, total_loss, seen = time.perf_counter(), 0.0, 0
        planned = epoch_batches(num_items, spec.batch_size, rng, ranks)
        report_every = max(1, len(planned) // 10)  # a progress line per ~10% of the epoch
        for step, indices in enumerate(planned, start=1):
            local = share(indices, ranks)
            inputs, targets = make_batch(local, rng, device)
            inputs = _layout(inputs, amp)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp):
                loss = loss_fn(_forward(model, inputs), targets)
            optimiser.zero_grad(set_to_none=True)
            # DDP averages the ranks' gradients; weighting by the share makes that the global batch's mean
            weighted = loss * (len(local) * ranks.world / len(indices)) if ranks.parallel else loss
            scaler.scale(weighted).backward()
            scaler.step(optimiser)
            scaler.update()
            if not plateau:
                scheduler.step()
            total_loss += float(loss.detach()) * len(local)
            seen += len(local)
            if step % report_every == 0 and step < len(planned):
                log.info("epoch %d/%d step %d/%d loss %.5f", epoch + 1, spec.epochs, step, len(planned),
                         total_loss / seen)  # fmt: skip
        if ranks.parallel:
            total_loss, seen = all_reduce_sums([total_loss, seen], ranks)
        seconds = time.perf_counter() - began
        record = {"epoch": epoch + 1, "train_loss": total_loss / seen, "lr": scheduler.get_last_lr()[0],
                  "seconds": seconds}  # fmt: skip
        if validation is not None:
            record["val_loss"] = _validation_loss(core, validation, loss_fn, device, amp, ranks)
            if best is None or record["val_loss"] < best["loss"]:
                weights = {name: tensor.detach().cpu().clone() for name, tensor in core.state_dict().items()}
                best = {"epoch": epoch, "loss": record["val_loss"], "model": weights}
            stopped = spec.patience > 0 and epoch - best["epoch"] >= spec.patience
            if plateau:
                scheduler.step(record["val_loss"])
                record["lr"] = scheduler.get_last_lr()[0]
        history.append(record)
        log.info(
            "epoch %d/%d loss %.5f%s lr %.2e (%.1f s, %.0f examples/s)%s",
            epoch + 1,
            spec.epochs,
            record["train_loss"],
            f" val {record['val_loss']:.5f} (best epoch {best['epoch'] + 1})" if validation is not None else "",
            record["lr"],
            seconds,
            seen / max(seconds, 1e-9),
            f"; no better validation loss for {spec.patience} epochs: stopping" if stopped else "",
        )
        rng_states = all_gather(_rng_state(), ranks)
        state = {
            "model": core.state_dict(),
            "optimiser": optimiser.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch,
            "rng": rng_states if ranks.parallel else rng_states[0],
            "config": config,
            "history": history,
            "best": best,
            "stopped": stopped,
        }
        if plateau:  # cosine checkpoints carry no schedule key (they predate the choice)
            state["schedule"] = spec.schedule
        if ranks.writer:
            save_torch(checkpoint_path, state)
        barrier(ranks)
        if after_epoch is not None:
            after_epoch(epoch)
        if stopped:
            break
    if best is not None:
        core.load_state_dict(best["model"])
    core.eval()
    return core
