"""Can the frame tell which way round the 2D joints are? A small network that reads the crop at its full resolution
beside a fold model's joints and says whether left and right are taken for each other; scored on the subjects the
fold model never saw, by how many frames it puts the right way round.

keypoints2d reads the crop at 64 px and takes left for right on a fifth of the frames (README "Why the stage takes
left for right"); at 96 px it takes a third as many, at 1.6x the training time. The cue that decides the sides is
small (the face against the hair, the feet's direction, which limb passes in front), so this asks whether the
crop at its stored resolution carries it, read by a network that does only this.

The verifier: the crop (the store's frame, ``--size`` px) and three maps of the joints (Gaussians at the left-side
joints, the right-side joints, the middle ones) in, one logit out: "these joints have left and right exchanged"
(``baseline_depth_sign.left_right_swapped``: nearer the truth with every left and right joint exchanged). It is
trained on the subjects the fold model trained on, with the fold model's own joints there and the same joints
exchanged, the labels from the ground truth; flips (the sides exchanged with the image) and channel shuffles.
On the held-out subjects each frame's joints are exchanged where the verifier scores them as more likely
exchanged than their exchange. ``--no-image`` trains the same network with the crop blanked: the control for what
the joints' own layout tells (a 2D skeleton can look more plausible one way round).

Prints the training seconds, the share of held-out frames the verifier decides rightly, the 2D error and the
share of frames with left and right exchanged before and after it, by the view (``baseline_depth_sign.py``'s
table). Validation only: the held-out training subjects, never the test split.

Run:  .venv/bin/python benchmarks/sides_verifier.py --dataset results/synthetic/dataset/train.zarr
          --model results/synthetic/keypoints2d/models/fold0.pt [--configfile config.yaml] [--fold 0] [--every 2]
          [--epochs 6] [--width 16] [--size 128] [--seed 0] [--threads 2] [--no-image]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from patchpose.config import ConfigError, load_config
from patchpose.dataset_format import open_dataset
from patchpose.folds import assign_folds
from patchpose.frames import load_frames, to_unit_float
from patchpose.skeleton import H36M
from patchpose.training import load_torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from baseline_depth_sign import camera_view_angles, left_right_swapped, sides_lines  # noqa: E402
from keypoints2d_fold import score  # noqa: E402

SIDE_GROUPS = tuple(
    np.array([j for j, name in enumerate(H36M.joint_names) if test(name)])
    for test in (lambda name: name.startswith("left_"), lambda name: name.startswith("right_"),
                 lambda name: not name.startswith(("left_", "right_")))
)  # fmt: skip
SIGMA_FRACTION = 1.0 / 32  # the joint maps' Gaussian sigma, a fraction of the crop side


def joint_maps(joints: torch.Tensor, side: float, size: int) -> torch.Tensor:
    """(B, 3, size, size) maps of ``joints`` (B, 17, 2) in crop px of a crop ``side`` px wide: per group of
    ``SIDE_GROUPS`` (left, right, middle) the largest Gaussian of its joints, 1 at a joint."""
    scale = size / side
    centres = torch.arange(size, dtype=torch.float32) + 0.5
    points = joints.float() * scale
    sigma = SIGMA_FRACTION * size
    gx = torch.exp(-((centres[None, None, :] - points[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, 17, W)
    gy = torch.exp(-((centres[None, None, :] - points[..., 1:2]) ** 2) / (2 * sigma**2))  # (B, 17, H)
    maps = gy[..., :, None] * gx[..., None, :]  # (B, 17, H, W)
    return torch.stack([maps[:, torch.as_tensor(group)].amax(dim=1) for group in SIDE_GROUPS], dim=1)


def exchange(joints: np.ndarray) -> np.ndarray:
    """The joints with every left and right joint exchanged."""
    return joints[:, H36M.flip_permutation]


class SidesVerifier(nn.Module):
    """Four stride-2 stages of two 3x3 convs (``width``, 2x, 4x, 4x channels), global average pool, one logit."""

    def __init__(self, width: int, in_channels: int = 6):
        super().__init__()
        layers, channels = [], in_channels
        for out in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True), nn.Conv2d(out, out, 3, padding=1, bias=False), nn.BatchNorm2d(out),
                       nn.ReLU(inplace=True)]  # fmt: skip
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))).squeeze(1)


def inputs(frames: torch.Tensor, joints: np.ndarray, side: float, blank: bool) -> torch.Tensor:
    """The verifier's input: the frames (uint8, B x 3 x S x S) in [0, 1], zeros with ``blank``, and the joint maps."""
    images = to_unit_float(frames, torch.device("cpu"))
    if blank:
        images = torch.zeros_like(images)
    return torch.cat([images, joint_maps(torch.from_numpy(joints), side, frames.shape[-1])], dim=1)


def augment(rng: np.random.Generator, frames: torch.Tensor, joints: np.ndarray, side: float):
    """Half the samples flipped left to right with their joints mirrored and their sides exchanged (the label
    stays), every sample's colour channels shuffled."""
    frames, joints = frames.clone(), joints.copy()
    flip = rng.random(len(frames)) < 0.5
    frames[flip] = frames[flip].flip(-1)
    joints[flip] = exchange(joints[flip])
    joints[flip, :, 0] = side - joints[flip, :, 0]
    order = torch.as_tensor(np.stack([rng.permutation(3) for _ in range(len(frames))]))
    frames = torch.gather(frames, 1, order[:, :, None, None].expand_as(frames))
    return frames, joints


def train(frames: torch.Tensor, joints: np.ndarray, truth: np.ndarray, side: float, *, width: int, epochs: int,
          seed: int, blank: bool, batch_size: int = 32, learning_rate: float = 1e-3) -> SidesVerifier:  # fmt: skip
    """A verifier trained on ``frames`` with ``joints`` and their exchange, labelled against ``truth`` (2D)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    both = np.concatenate([joints, exchange(joints)])
    labels = torch.from_numpy(left_right_swapped(both, np.concatenate([truth, truth])).astype(np.float32))
    model = SidesVerifier(width)
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    steps = epochs * ((len(both) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=learning_rate, total_steps=steps)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(both))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            images, points = augment(rng, frames[batch % len(frames)], both[batch], side)
            loss = F.binary_cross_entropy_with_logits(model(inputs(images, points, side, blank)), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def decide(model: SidesVerifier, frames: torch.Tensor, joints: np.ndarray, side: float, blank: bool,
           batch_size: int = 128) -> np.ndarray:  # fmt: skip
    """(N,) bool: the verifier scores ``joints`` as more likely exchanged than their exchange."""
    margins = []
    for start in range(0, len(joints), batch_size):
        images, points = frames[start : start + batch_size], joints[start : start + batch_size]
        as_given = model(inputs(images, points, side, blank))
        margins.append(as_given - model(inputs(images, exchange(points), side, blank)))
    return torch.cat(margins).numpy() > 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, required=True, help="a training split's dataset store")
    parser.add_argument("--model", type=Path, required=True, help="a keypoints2d fold model file of --fold")
    parser.add_argument("--configfile", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--every", type=int, default=2, help="score every N-th frame of the fold's subjects")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--width", type=int, default=16, help="the verifier's first stage's channels")
    parser.add_argument("--size", type=int, help="the verifier's input side, px (default: the store's crop)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-image", dest="blank", action="store_true", help="the control: the crop blanked")
    args = parser.parse_args()
    try:
        k = load_config(args.configfile)["folds"]["k"]
    except ConfigError as error:
        raise SystemExit(str(error)) from None
    if not args.dataset.is_dir():
        raise SystemExit(f"{args.dataset}: missing (a training split's dataset store)")
    if not args.model.is_file():
        raise SystemExit(f"--model {args.model}: missing (a keypoints2d fold model file)")
    for name in ("every", "epochs", "width", "threads"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} {getattr(args, name)}: must be at least 1")
    if args.size is not None and args.size < 16:
        raise SystemExit(f"--size {args.size}: must be at least 16 (four stride-2 stages)")
    trained = load_torch(args.model)
    if trained.get("fold") != args.fold or trained.get("k") != k:
        raise SystemExit(f"--model {args.model}: fold {trained.get('fold')} of {trained.get('k')}, "
                         f"expected fold {args.fold} of {k} (--fold, folds.k)")  # fmt: skip
    torch.set_num_threads(args.threads)
    store = open_dataset(args.dataset)
    side = float(store.crop_side())
    size = args.size or store.crop_side()
    assignment = assign_folds(store.subjects, k)
    held_out = sorted(subject for subject, fold in assignment.items() if fold == args.fold)
    seen = sorted(subject for subject, fold in assignment.items() if fold != args.fold)
    rows = np.flatnonzero(np.isin(store.subject_names(), held_out))[:: args.every]
    seen_rows = np.flatnonzero(np.isin(store.subject_names(), seen))
    seen_score, held_score = score(args.model, store, seen_rows), score(args.model, store, rows)

    started = time.perf_counter()
    model = train(load_frames(store, seen_rows, size), seen_score.joints, store.joints_2d[seen_rows], side,
                  width=args.width, epochs=args.epochs, seed=args.seed, blank=args.blank)  # fmt: skip
    seconds = time.perf_counter() - started
    before = held_score.joints
    flips = decide(model, load_frames(store, rows, size), before, side, args.blank)
    after = np.where(flips[:, None, None], exchange(before), before)
    truth = store.joints_2d[rows]
    right = flips == held_score.joints_exchanged

    print(f"fold {args.fold} of {k}: the fold model {args.model}")
    print(f"verifier: width {args.width}, {size} px input{', the crop blanked (control)' if args.blank else ''}, "
          f"{args.epochs} epochs, seed {args.seed}; trained on {' '.join(seen)} ({len(seen_rows)} frames, the fold "
          f"model's joints exchanged on {seen_score.joints_exchanged.mean():.1%}) in {seconds:.0f} s "
          f"on {args.threads} threads")  # fmt: skip
    print(f"held out {' '.join(held_out)}: {len(rows)} frames (every {args.every}); the verifier decides "
          f"{right.mean():.1%} rightly, exchanges {flips.mean():.1%} of the frames")  # fmt: skip
    error_before = np.linalg.norm(before - truth, axis=-1).mean()
    error_after = np.linalg.norm(after - truth, axis=-1).mean()
    print(f"2D mean error: {error_before:.2f} px before, {error_after:.2f} px after")
    print("left and right exchanged, share of frames, by the view (degrees from facing the camera):")
    sources = [("2D joints", held_score.joints_exchanged), ("after the verifier", left_right_swapped(after, truth))]
    print("\n".join(sides_lines(sources, camera_view_angles(store.joints_3d[rows]), "exchanged 2D")))


if __name__ == "__main__":
    sys.exit(main())
