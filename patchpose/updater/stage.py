"""Train an updater on a baseline's training-split residuals (paper Eq. 2), and refine a split with it (Eq. 1).

Target (Eq. 2): ΔU* = U_gt - U_init, the OriNet orientations (``patchpose.orientation``) of the training split's
ground truth and of the baseline's training-split predictions (k-fold for the pipeline's own baselines, so as
noisy as its test predictions), both normalised by the mean bone lengths of the training split's ground truth
(the bone statistics are saved in the model file; test ground truth never enters). Loss: the squared error
summed over the 16 limbs x 3, mean over the batch. With ``model.predicts: orientation`` the last layer of a
network that reads the patches predicts U itself and the network returns ΔU = U - U_init
(``patchpose.updater.network``): the same target and loss; its offset starts at the training rows' mean U_gt.

Inputs per frame (``patchpose.updater.network``): the variant's patches (``patchpose.updater.variants``:
streamed from the patch store, ``patchpose.updater.loader``, and zoomed to ``model.input_size`` on the
device, ``patchpose.updater.inputs``), U_init (B, 48) and the limb boxes (B, P, 4), normalised. A network that
reads no images (``pose_only``, ``pose_boxes``) never reads the patch pixels: the boxes alone come from the store.

Training (``patchpose.fitting.fit``): the whole training split less the validation frames: every frame of
``training.validation_subjects`` (default: one training subject, so the kept epoch is the one that works for
a person the updater has not seen, as on the test split) or, when that list is empty, ``validation_fraction``
of the poses (all camera views of a pose together); each training frame's colours recoloured at random
(``training.augment``, ``patchpose.updater.inputs.recolouring``; validation and refinement see them as they are);
``training.schedule`` cosine or plateau (the paper: Adam, LR divided by 10 on a validation plateau); the best
validation epoch's weights are kept. Checkpoints resume only for the same inputs (``provenance``).

Calibration (``training.calibration``, ``patchpose.updater.calibration``): after training, factors in [0, 1] fitted
by least squares on the validation frames scale the predicted ΔU (stored in the model file as ``calibration``).

Refinement (Eq. 1): X_refined = X_init + residual_pose(alpha x ΔU) (the residual rebuilt along the skeleton tree with
the training bone lengths), root-relative, written in the prediction format, so it is evaluated like any
baseline (and could be refined again).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from patchpose.allocator import keep_freed_memory
from patchpose.baselines.geometry import root_relative
from patchpose.dataset_format import DatasetStore, open_dataset
from patchpose.distributed import Ranks, launch
from patchpose.fitting import fit, holdout_poses, train_spec
from patchpose.orientation import BoneStatistics, bone_statistics, encode_orientation, refine
from patchpose.patches.store import open_patch_store
from patchpose.poses3d.files import write_predictions
from patchpose.poses3d.loading import load_for_store
from patchpose.training import load_torch, select_device
from patchpose.updater.calibration import calibration_factors
from patchpose.updater.inputs import finish_batch, prepare_batch, read_boxes, recolouring, shrink_patches
from patchpose.updater.loader import PatchBatches, PrefetchingMakeBatch, ShrunkPatches, check_store
from patchpose.updater.modalities import get_modality
from patchpose.updater.network import OUTPUTS, build_network
from patchpose.updater.variants import get_variant, variant_settings

__all__ = [
    "residual_targets",
    "validation_rows",
    "train_updater",
    "load_updater",
    "refine_split",
    "predict_residuals",
]

log = logging.getLogger("patchpose.updater")


def residual_targets(gt_poses: np.ndarray, initial_poses: np.ndarray, stats: BoneStatistics):
    """(U_init, ΔU*) as (N, 48) float32: the initial orientations and Eq. 2's target U_gt - U_init."""
    initial = encode_orientation(initial_poses, stats)
    target = encode_orientation(gt_poses, stats) - initial
    return initial.reshape(-1, OUTPUTS).astype(np.float32), target.reshape(-1, OUTPUTS).astype(np.float32)


def validation_rows(store: DatasetStore, training: dict, seed: int, names: tuple[str, ...]) -> np.ndarray:
    """Store rows held out for the validation loss (never trained on): every frame of the training subjects
    ``training["validation_subjects"]`` when that list is non-empty (what the updater must do on the test
    split: work for people it has not seen), else ``training["validation_fraction"]`` of the poses (all views
    of a pose together, ``fitting.holdout_poses``). Sorted (V,) int64."""
    subjects = list(training.get("validation_subjects") or [])
    if not subjects:
        return holdout_poses(store, np.arange(store.num_frames), training["validation_fraction"], seed, names)
    present = set(store.subjects)
    missing = sorted(set(subjects) - present)
    if missing:
        raise ValueError(
            f"{store.path}: updater.training.validation_subjects {missing} are not in the training split "
            f"(its subjects: {sorted(present)})"
        )
    held = np.flatnonzero(np.isin(store.subject_names(), subjects))
    if len(held) == 0 or len(held) == store.num_frames:
        raise ValueError(
            f"{store.path}: updater.training.validation_subjects {subjects} hold out {len(held)} of "
            f"{store.num_frames} frames; validation needs some frames and training the rest"
        )
    log.info("%s: subjects %s (%d frames) held out for validation", " ".join(names), subjects, len(held))
    return held


def _inputs(store: DatasetStore, initial_path, patches_path, modality, uses_boxes: bool):
    """The baseline's poses (N, 17, 3) mm for ``store``'s rows, the patch store of ``modality`` (opened and checked,
    whether or not the network reads its pixels; None without a modality) and the boxes (None unless
    ``uses_boxes``)."""
    initial = load_for_store(initial_path, store)
    patches, boxes = None, None
    if modality is not None:
        patches = open_patch_store(patches_path, store)
        check_store(patches, modality)
        if uses_boxes:
            boxes = torch.from_numpy(read_boxes(patches, np.arange(store.num_frames)))
    return initial, patches, boxes


def train_updater(
    *,
    dataset: str | Path,
    initial: str | Path,
    patches: str | Path | None,
    variant: str,
    settings: dict,
    seed: int,
    baseline: str,
    model_path: str | Path,
    checkpoint_path: str | Path,
    curve_path: str | Path,
    threads: int = 1,
    loader_workers: int = 0,
    provenance: dict | None = None,
    after_epoch=None,
) -> torch.nn.Module:
    """Train ``baseline``'s updater of ``variant`` on the training store ``dataset``, its training-split
    predictions ``initial`` and the variant's patch store ``patches`` (None for ``pose_only``; ``pose_boxes``
    reads its boxes alone); write the model file and the learning curve. ``settings``: the config's ``updater``
    block (``model``, ``training``).

    ``training.processes`` > 1 trains data-parallel in that many processes started here
    (``patchpose.distributed.launch``: one per GPU, or gloo on the CPU), ``threads`` shared among them;
    ``after_epoch`` must then be picklable (a module-level function). Returns the trained model."""
    processes = settings["training"].get("processes", 1)
    arguments = dict(dataset=dataset, initial=initial, patches=patches, variant=variant, settings=settings, seed=seed,
                     baseline=baseline, model_path=model_path, checkpoint_path=checkpoint_path, curve_path=curve_path,
                     threads=max(1, threads // processes), loader_workers=loader_workers, provenance=provenance,
                     after_epoch=after_epoch)  # fmt: skip
    model = launch(_train_updater, processes, arguments)
    if model is None:  # trained by worker processes: the model file is the result
        model, _ = load_updater(model_path, select_device())
    return model


def _train_updater(ranks: Ranks, arguments: dict) -> torch.nn.Module:
    """One training process of ``train_updater`` (``arguments``: its keyword arguments)."""
    return _train_process(ranks=ranks, **arguments)


def _train_process(*, ranks: Ranks, dataset, initial, patches, variant: str, settings: dict, seed: int,
                   baseline: str, model_path, checkpoint_path, curve_path, threads: int, loader_workers: int,
                   provenance, after_epoch) -> torch.nn.Module:  # fmt: skip
    torch.set_num_threads(threads)
    modality = get_variant(variant).modality
    model_settings = variant_settings(settings["model"], variant)
    settings = {**settings, "model": model_settings, "variant": variant}
    store = open_dataset(dataset)
    if store.split != "train":
        raise ValueError(f"{dataset}: the updater trains on the training split, got a {store.split!r} store")
    probe = build_network(model_settings, modality, load_weights=False)
    initial_poses, patch_store, boxes = _inputs(store, initial, patches, modality, probe.uses_boxes)
    stats = bone_statistics(root_relative(store.joints_3d))
    u_init, target = (
        torch.from_numpy(a) for a in residual_targets(root_relative(store.joints_3d), initial_poses, stats)
    )
    names = ("updater", baseline, variant)
    everything = np.arange(store.num_frames)
    held = validation_rows(store, settings["training"], seed, names)
    rows = np.setdiff1d(everything, held)
    size = model_settings["input_size"]
    augment = settings["training"].get("augment", {"channel_shuffle": False, "gain_sigma": 0.0})
    if probe.uses_images:  # pose_only and pose_boxes read no patch pixels
        augment = {**augment, "patches": get_modality(modality).num_patches}

    def finish(frames, images, rng, device):  # frames: store rows; images: their shrink_patches; rng None: evaluation
        recolour = None if rng is None else recolouring(rng, frames, **augment)
        images = finish_batch(images, modality, size, device, recolour)
        frames = torch.as_tensor(frames)
        return _network_inputs(images, frames, u_init, boxes, device), target[frames].to(device)

    def build(batch, rng, device):  # batch: a PatchBatch of frames batch.rows (store rows)
        return finish(batch.rows, shrink_patches(batch.patches, modality, size, device), rng, device)

    loader = None
    if probe.uses_images:
        source = PatchBatches(patch_store, everything, num_workers=loader_workers, pin_memory=torch.cuda.is_available())
        loader = PrefetchingMakeBatch(source, train_spec(settings["training"], seed, names), build, rows, ranks)
        cache_mb = settings["training"].get("input_cache_mb", 0)
        kept_on = functools.cache(functools.partial(_kept_inputs, source, modality, size, cache_mb, names))

        def make_batch(frames, rng, device):  # fit passes store rows (training rows, or held-out ones)
            kept = kept_on(device)  # made at the first batch, on the device fit trains on
            if kept is None:
                return loader(frames, rng, device) if rng is not None else build(source.read(frames), None, device)
            frames = np.asarray(frames, dtype=np.int64)
            return finish(frames, kept.batch(frames), rng, device)

    else:

        def make_batch(frames, rng, device):  # fit passes store rows (training rows, or held-out ones)
            frames = torch.as_tensor(frames)
            return _network_inputs(None, frames, u_init, boxes, device), target[frames].to(device)

    make_eval_batch = lambda frames, device: make_batch(frames, None, device)  # noqa: E731

    def loss_fn(prediction, goal):
        return ((prediction.float() - goal) ** 2).sum(dim=1).mean()

    def build_model(model_settings):
        network = build_network(model_settings, modality)
        network.start_orientation_offset((u_init[rows] + target[rows]).mean(dim=0))  # U_gt's mean (training rows)
        return network

    def calibrate(model):
        predictions, goals = _predict(model, held, make_eval_batch, settings["training"]["batch_size"])
        alpha = calibration_factors(predictions, goals, settings["training"].get("calibration", "none"))
        log.info("%s/%s: calibration %s on %d validation frames, factors mean %.3f (min %.3f, max %.3f)",
                 baseline, variant, settings["training"].get("calibration", "none"), len(held), alpha.mean(),
                 alpha.min(), alpha.max())  # fmt: skip
        return {"calibration": alpha.tolist()}

    try:
        return fit(names, build_model, settings, seed, len(everything), make_batch, loss_fn, model_path,
                   checkpoint_path, validation_rows=held, make_eval_batch=make_eval_batch, curve_path=curve_path,
                   extras={"bone_statistics": stats.to_dict(), "variant": variant, "modality": modality,
                           "baseline": baseline},
                   after_training=calibrate, after_epoch=after_epoch, provenance=provenance, ranks=ranks,
                   validation_batch_size=settings["training"]["batch_size"])  # fmt: skip
    finally:
        if loader is not None:
            loader.close()


def _kept_inputs(source: PatchBatches, modality: str, size: int, cache_mb: float, names,
                 device: torch.device) -> ShrunkPatches | None:  # fmt: skip
    """The training split's network inputs kept in memory (``loader.ShrunkPatches``) when training on the CPU
    and they fit in ``cache_mb`` MiB (``updater.training.input_cache_mb``), else None: streamed every epoch
    (on a GPU the patches cross as uint8 and are resized there)."""
    if device.type != "cpu":
        return None
    needed = ShrunkPatches.nbytes(source, modality, size) / 2**20
    if needed > cache_mb:
        log.info("%s: inputs streamed every epoch (keeping them would take %.0f MiB, input_cache_mb %s)",
                 " ".join(names), needed, cache_mb)  # fmt: skip
        return None
    log.info("%s: inputs kept in memory after their first read on the CPU (%.0f MiB of input_cache_mb %s)",
             " ".join(names), needed, cache_mb)  # fmt: skip
    return ShrunkPatches(source, modality, size)


@torch.no_grad()
def _predict(model: torch.nn.Module, rows: np.ndarray, make_eval_batch, batch_size: int):
    """The model's residuals and the targets of ``rows`` (no augmentation), as float64 arrays."""
    device = next(model.parameters()).device
    model.eval()
    predictions, goals = [], []
    for start in range(0, len(rows), batch_size):
        inputs, goal = make_eval_batch(rows[start : start + batch_size], device)
        predictions.append(model(*inputs).float().cpu().numpy())
        goals.append(goal.float().cpu().numpy())
    return np.concatenate(predictions).astype(np.float64), np.concatenate(goals).astype(np.float64)


def _network_inputs(images, frames, u_init, boxes, device):
    return images, u_init[frames].to(device), None if boxes is None else boxes[frames].to(device)


def load_updater(path: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict]:
    """The trained updater of a model file (eval mode, on ``device``) and its payload."""
    payload = load_torch(path)
    for key in ("modality", "variant", "model_settings", "bone_statistics"):
        if key not in payload:
            raise ValueError(f"{path}: not an updater model file (no {key!r})")
    network = build_network(payload["model_settings"], payload["modality"], load_weights=False)
    try:
        network.load_state_dict(payload["model"])
    except RuntimeError as error:  # weights of another network than the file's settings describe
        first = str(error).strip().splitlines()[0]
        variant = payload["variant"]
        raise ValueError(f"{path}: its weights do not fit the {variant} updater it describes ({first})") from None
    return network.to(device).eval(), payload


@torch.no_grad()
def refine_split(
    *,
    model: str | Path,
    dataset: str | Path,
    initial: str | Path,
    patches: str | Path | None,
    output: str | Path,
    method: str,
    batch_size: int = 256,
    threads: int = 1,
    progress: Callable[[int], None] | None = None,
    loaded: tuple[torch.nn.Module, dict] | None = None,
) -> np.ndarray:
    """Refine the predictions ``initial`` of the store ``dataset``'s split with the updater ``model`` (Eq. 1);
    write them to ``output`` in the prediction format (label ``method``) and return (N, 17, 3) mm.
    ``progress(frames)`` is called after every batch with the number of frames it refined. ``loaded``: what
    ``load_updater(model, ...)`` returned, if the caller has it already (the file is then not read again)."""
    torch.set_num_threads(threads)
    device = select_device()
    if loaded is None:
        network, payload = load_updater(model, device)
    else:
        network, payload = loaded[0].to(device).eval(), loaded[1]
    store = open_dataset(dataset)
    initial_poses, delta = predict_residuals(network, payload, store, initial, patches, batch_size=batch_size,
                                             progress=progress)  # fmt: skip
    stats = BoneStatistics.from_dict(payload["bone_statistics"])
    delta *= np.asarray(payload.get("calibration", np.ones(OUTPUTS)), dtype=np.float64)
    refined = refine(initial_poses, delta.reshape(-1, OUTPUTS // 3, 3), stats)
    refined = refined - refined[:, :1]
    write_predictions(output, refined, store.frame_ids(), split=store.split, method=method)
    log.info("refined %d %s frames with %s (%s)", store.num_frames, store.split, model, payload["variant"])
    return refined


@torch.no_grad()
def predict_residuals(
    network: torch.nn.Module,
    payload: dict,
    store: DatasetStore,
    initial: str | Path,
    patches: str | Path | None,
    rows: np.ndarray | None = None,
    batch_size: int = 256,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The updater ``network`` (in eval mode, on its device) with its model file's ``payload`` (what
    ``load_updater`` returns) on the frames ``rows`` of ``store`` (default: all, in order), the split's
    baseline predictions ``initial`` and the variant's patch store ``patches`` (None for ``pose_only``; only its
    boxes are read where the network reads no images: ``pose_boxes``). Returns the baseline's poses of every
    frame of the store (N, 17, 3) mm and ΔU before its calibration (R, 48) float64, computed ``batch_size`` rows
    at a time (``progress(rows)`` after each batch). On the CPU it first keeps glibc from unmapping and re-mapping
    the large tensors each batch allocates and frees, as training does (``patchpose.allocator``; the speed-up is
    measured by ``benchmarks/refine.py --allocator both``)."""
    device = next(network.parameters()).device
    if device.type == "cpu":  # the tensors a CUDA forward pass allocates and frees live on the GPU
        keep_freed_memory()
    initial_poses, patch_store, boxes = _inputs(store, initial, patches, payload["modality"], network.uses_boxes)
    stats = BoneStatistics.from_dict(payload["bone_statistics"])
    u_init = torch.from_numpy(encode_orientation(initial_poses, stats).reshape(-1, OUTPUTS).astype(np.float32))
    size = payload["model_settings"]["input_size"]
    rows = np.arange(store.num_frames) if rows is None else np.asarray(rows, dtype=np.int64)
    delta = np.zeros((len(rows), OUTPUTS), dtype=np.float64)
    for start in range(0, len(rows), batch_size):
        frames = torch.as_tensor(rows[start : start + batch_size])
        images = None
        if network.uses_images:
            images = prepare_batch(patch_store.read(frames.numpy()), payload["modality"], size, device)
        inputs = _network_inputs(images, frames, u_init, boxes, device)
        delta[start : start + len(frames)] = network(*inputs).float().cpu().numpy()
        if progress is not None:
            progress(len(frames))
    return initial_poses, delta
