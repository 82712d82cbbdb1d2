"""keypoints2d and segmentation: one hourglass with a part head, or two networks? Side by side on one fold.

On the dataset stage's stores (default ``results/synthetic/dataset``, from ``snakemake
results/synthetic/dataset/train.zarr results/synthetic/dataset/test.zarr``), fold ``--fold``'s models of
the configured pipeline are trained with the stage code, on the same frames, one after the other:

* shared: the keypoints2d hourglass with its part head (``segmentation.network: keypoints2d``, the default);
* separate: the keypoints2d hourglass alone (same settings without the part head) and the segmentation
  stage's own RefineNet-like network (``segmentation.network: refinenet``, its ``model``/``training``).

Each model then predicts the whole test split (subjects no fold model saw). Printed per design: training
wall seconds, 2D mean / median error and PCK (px at the crop size, threshold as the keypoints2d evaluation),
and the mean IoU of the 15 part classes (argmax of the part logits upsampled to the crop, as the
segmentation stage stores them). Single fold, single seed: a comparison of the designs, not the stage's
figures (those are in ``results/<dataset>/{keypoints2d,segmentation}/metrics.csv``).

Run:  .venv/bin/python benchmarks/keypoints2d_segmentation.py [--results results/synthetic] [--configfile config.yaml]
                                            [--fold 0] [--threads 2]
About 6 minutes on 2 idle cores with the default world and config.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from patchpose.augment import unit_to_pixels
from patchpose.config import validate_config
from patchpose.dataset_format import open_dataset
from patchpose.frames import load_frames, to_unit_float
from patchpose.keypoints2d import stage as keypoints2d
from patchpose.keypoints2d.evaluate import summarise
from patchpose.keypoints2d.integral import soft_argmax
from patchpose.keypoints2d.settings import PART_HEAD_KEYS
from patchpose.segmentation import stage as segmentation
from patchpose.segmentation.evaluate import confusion_counts, iou_from_counts
from patchpose.training import load_torch

REPO = Path(__file__).resolve().parents[1]


def _network(path: Path, build, output):
    """(x -> the ``output`` picked from the network's outputs, its input size) of the model file ``path``."""
    payload = load_torch(path)
    model = build(payload["model_settings"])
    model.load_state_dict(payload["model"])
    model.eval()
    return (lambda x: output(model(x))), payload["model_settings"]["input_size"]


def _heatmaps(outputs):
    return outputs[0][-1]  # the hourglass's last stack


def _parts(outputs):
    return outputs[1]  # the hourglass's part head


@torch.no_grad()
def _score(test, joints, parts, threshold_px: float) -> dict[str, float]:
    """2D summary of ``joints`` (heatmap logits, input size) and mean IoU of ``parts`` (part logits, input size)
    on every test frame."""
    side, device = test.crop_side(), torch.device("cpu")
    predicted, counts = np.zeros((test.num_frames, 17, 2)), 0
    for start in range(0, test.num_frames, 64):
        rows = np.arange(start, min(start + 64, test.num_frames))
        (heatmaps, joints_size), (segment, parts_size) = joints, parts
        predicted[rows] = unit_to_pixels(soft_argmax(heatmaps(to_unit_float(load_frames(test, rows, joints_size),
                                                                              device))).numpy(), side)  # fmt: skip
        logits = segment(to_unit_float(load_frames(test, rows, parts_size), device))
        logits = F.interpolate(logits.float(), size=(side, side), mode="bilinear", align_corners=False)
        counts = counts + confusion_counts(logits.argmax(1).numpy(), test.read_part_labels(rows))
    return {**summarise(predicted, test.joints_2d, threshold_px), "mean_iou": iou_from_counts(counts)[1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "results/synthetic")
    parser.add_argument("--configfile", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = validate_config(yaml.safe_load(args.configfile.read_text(encoding="utf-8")))
    train_path, test_path = args.results / "dataset/train.zarr", args.results / "dataset/test.zarr"
    test = open_dataset(test_path)
    k, seed = config["folds"]["k"], config["seed"]
    shared = {key: copy.deepcopy(config["keypoints2d"][key]) for key in ("model", "training", "augment")}
    alone = {block: {key: value for key, value in copy.deepcopy(settings).items()
                     if key not in PART_HEAD_KEYS.get(block, ())} for block, settings in shared.items()}  # fmt: skip
    refinenet = {key: copy.deepcopy(config["segmentation"][key]) for key in ("model", "training", "augment")}
    threshold = config["keypoints2d"]["evaluation"]["pck_threshold"] * test.crop_side()

    rows, seconds = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        jobs = [("shared", keypoints2d, shared), ("keypoints2d alone", keypoints2d, alone),
                ("refinenet", segmentation, refinenet)]  # fmt: skip
        for name, module, settings in jobs:
            began = time.perf_counter()
            model, checkpoint = scratch / f"{name}.pt", scratch / f"{name}.ckpt"
            module.train_fold(train_path, args.fold, k, settings, seed, model, checkpoint, args.threads)
            seconds[name] = time.perf_counter() - began
            print(f"trained {name}: {seconds[name]:.0f} s", flush=True)
        model = scratch / "shared.pt"
        score = _score(test, _network(model, keypoints2d.build_model, _heatmaps),
                       _network(model, keypoints2d.build_model, _parts), threshold)  # fmt: skip
        rows["shared (one hourglass, part head)"] = (seconds["shared"], score)
        score = _score(test, _network(scratch / "keypoints2d alone.pt", keypoints2d.build_model, _heatmaps),
                       _network(scratch / "refinenet.pt", segmentation.build_model, lambda logits: logits),
                       threshold)  # fmt: skip
        rows["separate (hourglass + refinenet)"] = (seconds["keypoints2d alone"] + seconds["refinenet"], score)

    print(f"\nfold {args.fold} of {k}, test split ({test.num_frames} frames), crop {test.crop_side()} px")
    header = f"{'design':36} {'train s':>8} {'mean px':>8} {'median px':>9} {'PCK':>6} {'mIoU':>6}"
    print(header)
    for name, (train_seconds, score) in rows.items():
        print(f"{name:36} {train_seconds:8.0f} {score['mean_error_px']:8.2f} {score['median_error_px']:9.2f} "
              f"{score['pck']:6.3f} {score['mean_iou']:6.3f}")  # fmt: skip
    alone_seconds, refinenet_seconds = seconds["keypoints2d alone"], seconds["refinenet"]
    print(f"(separate: keypoints2d alone {alone_seconds:.0f} s + refinenet {refinenet_seconds:.0f} s)")


if __name__ == "__main__":
    main()
