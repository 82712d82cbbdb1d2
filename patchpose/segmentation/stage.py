"""Segment a split with the fold models, and train one fold's own part segmenter.

The fold models that segment are either the keypoints2d fold models with their part head (the default,
``segmentation.network: keypoints2d``: one trunk for both tasks, ``patchpose.keypoints2d.hourglass``) or this
stage's own RefineNet-like segmenter (``segmentation.network: refinenet``, NBF's choice; settings: the config's
``segmentation`` block ``model``, ``training``, ``augment``). Either sees frames downscaled to its
``input_size``; its logits are upsampled bilinearly to the frame size, turned into probabilities and
colour-encoded (``encode_probability_maps``). Model files: ``patchpose.fold_models``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from patchpose.augment import Augment, augment_frames, warp_part_labels
from patchpose.dataset_format import open_dataset
from patchpose.fold_models import load_fold_models, plan_fold, train_fold_model
from patchpose.frames import load_frames, to_unit_float
from patchpose.keypoints2d.stage import build_model as build_keypoints2d_model
from patchpose.parts import NUM_PARTS, PALETTE
from patchpose.segmentation.refinenet import RefineNetLite
from patchpose.segmentation.store import write_segmentation
from patchpose.training import select_device

__all__ = ["build_model", "build_segmenter", "train_fold", "predict_split", "encode_probability_maps"]

log = logging.getLogger("patchpose.segmentation")


def build_model(model_settings: dict) -> RefineNetLite:
    return RefineNetLite(NUM_PARTS, **model_settings)


class _PartHead(torch.nn.Module):
    """A keypoints2d hourglass seen as a segmenter: its part logits only."""

    def __init__(self, hourglass: torch.nn.Module):
        super().__init__()
        self.hourglass = hourglass

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hourglass(x)[1]

    def load_state_dict(self, state, strict: bool = True, assign: bool = False):
        return self.hourglass.load_state_dict(state, strict, assign)


def build_segmenter(model_settings: dict) -> torch.nn.Module:
    """The network of a fold model file that segments: a keypoints2d hourglass with a part head (its settings
    name ``part_head_channels``) or this stage's own ``RefineNetLite``."""
    if "heatmap_size" in model_settings:  # a keypoints2d model file
        if "part_head_channels" not in model_settings:
            raise ValueError("the keypoints2d fold models have no part head (segmentation.network: keypoints2d)")
        return _PartHead(build_keypoints2d_model(model_settings))
    return build_model(model_settings)


def encode_probability_maps(probabilities: torch.Tensor) -> torch.Tensor:
    """(B, 15, H, W) part probabilities -> (B, 3, H, W) float expected palette colour in [0, 255]."""
    palette = torch.tensor(PALETTE, dtype=torch.float32, device=probabilities.device)
    return torch.einsum("bkhw,kc->bchw", probabilities.float(), palette)


def train_fold(
    store_path: str | Path,
    fold: int,
    k: int,
    settings: dict,
    seed: int,
    model_path: str | Path,
    checkpoint_path: str | Path,
    threads: int = 1,
    after_epoch=None,
    provenance: dict | None = None,
) -> None:
    """Train the segmenter of ``fold`` on the training subjects outside that fold; write ``model_path``."""
    torch.set_num_threads(threads)
    store = open_dataset(store_path)
    if not store.has_part_labels:
        raise ValueError(f"{store_path}: has no part_labels to train the segmentation on")
    plan = plan_fold("segmentation", store, k, fold)
    size = settings["model"]["input_size"]
    images = load_frames(store, plan.indices, size)
    labels = torch.from_numpy(np.ascontiguousarray(store.read_part_labels(plan.indices)))
    augment = Augment.from_config(settings["augment"])

    def make_batch(rows, rng, device):
        x, transforms = augment_frames(rng, to_unit_float(images[rows], device), augment, size, labels[rows])
        return x, warp_part_labels(labels[rows].to(device), transforms, size)

    def loss_fn(logits, target):
        return F.cross_entropy(logits.float(), target)

    train_fold_model(plan, build_model, settings, seed, make_batch, loss_fn, model_path, checkpoint_path, after_epoch,
                     provenance=provenance)  # fmt: skip


@torch.no_grad()
def predict_split(
    store_path: str | Path, model_paths: list[str], split: str, batch_size: int, output_path: str | Path, threads=1
) -> None:
    """Segment every frame of ``split`` (frame -> fold model as in ``patchpose.folds``); write the store."""
    torch.set_num_threads(threads)
    store = open_dataset(store_path)
    device = select_device()
    which, models, payloads = load_fold_models(model_paths, split, store.subject_names(), build_segmenter, device)
    size, frame_size = payloads[0]["model_settings"]["input_size"], store.frame_size

    def produce(start: int, stop: int):
        rows = np.arange(start, stop)
        encoded = torch.zeros(len(rows), 3, *frame_size)
        labels = torch.zeros(len(rows), *frame_size, dtype=torch.uint8)
        for fold, model in enumerate(models):
            mine = np.flatnonzero(which[rows] == fold)
            for chunk in np.array_split(mine, max(1, -(-len(mine) // batch_size))):
                if not len(chunk):
                    continue
                logits = model(to_unit_float(load_frames(store, rows[chunk], size), device))
                logits = F.interpolate(logits.float(), size=frame_size, mode="bilinear", align_corners=False)
                probabilities = torch.softmax(logits, dim=1)
                encoded[chunk] = encode_probability_maps(probabilities).cpu()
                labels[chunk] = probabilities.argmax(dim=1).to(torch.uint8).cpu()
        return encoded.round().clamp(0, 255).to(torch.uint8).numpy(), labels.numpy(), which[rows]

    write_segmentation(output_path, split, store.frame_ids(), frame_size, produce)
    log.info("segmented %d %s frames with %d fold models", store.num_frames, split, len(models))
