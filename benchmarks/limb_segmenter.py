"""A second segmenter that looks at the limbs up close: what segmenting them inside their own patches would give.

The segmentation stage segments whole 128 px frames, where a forearm is a few pixels wide (test IoU of the lower
arms ~0.1 on the default world). This script trains, k-fold like the stage (the segmentation store's fold of each
frame: a model never segments a subject it trained on), a small U-Net on the RGB of a run's ``predicted`` limb
patches (placed by keypoints2d's predictions, pooled to ``--side`` px) to segment the 15 parts inside each patch,
against the renderer's part labels warped into the patch. Its part probabilities are pasted back into the stage's
maps wherever the chosen limbs' patches cover a pixel (averaged where patches overlap; the rest of each map stays
the stage's) and written as segmentation stores of both splits under ``--out``, with ``frames.json`` (the frames'
digests). ``benchmarks/segmentation_oracle.py RUN --workdir DIR --from OUT`` then reruns the patches and
everything after them with those stores and prints the claims beside RUN's. A screen of a design, not a stage:
nothing here is in the pipeline.

Run:  .venv/bin/python benchmarks/limb_segmenter.py RUN --out OUT [--limbs arms|legs|all] [--epochs 3]
          [--width 32] [--side 32] [--threads 2]

Prints each split's mean IoU and the IoU of every part, the stage's beside the pasted result, and each fold's
training time. About 4 minutes a fold for the arms at the defaults on 2 idle cores with the default world.
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

from patchpose.dataset_format import open_dataset
from patchpose.parts import NUM_PARTS, PALETTE, PART_NAMES
from patchpose.patches.store import open_patch_store
from patchpose.segmentation.evaluate import confusion_counts, iou_from_counts
from patchpose.segmentation.store import open_segmentation, write_segmentation
from patchpose.skeleton import H36M

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segmentation_oracle import SPLITS, results_directory, write_frames_json  # noqa: E402

LIMB_GROUPS = {
    "arms": tuple(i for i, name in enumerate(H36M.limb_names) if any(j in name for j in ("shoulder", "elbow"))),
    "legs": tuple(i for i, name in enumerate(H36M.limb_names) if any(j in name for j in ("hip", "knee"))),
    "all": tuple(range(len(H36M.limb_names))),
}
BLOCK = 256  # frames per read / paste block


class PatchSegmenter(nn.Module):
    """A three-level U-Net over a limb patch's RGB and a learned embedding of which limb it is -> part logits."""

    def __init__(self, width: int, num_limbs: int):
        super().__init__()

        def block(cin, cout, stride=1):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))

        self.limb = nn.Embedding(num_limbs, 8)
        self.down1 = nn.Sequential(block(3 + 8, width), block(width, width))
        self.down2 = nn.Sequential(block(width, 2 * width, 2), block(2 * width, 2 * width))
        self.down3 = nn.Sequential(block(2 * width, 4 * width, 2), block(4 * width, 4 * width))
        self.up2, self.up1 = block(6 * width, 2 * width), block(3 * width, width)
        self.head = nn.Conv2d(width, NUM_PARTS, 1)

    def forward(self, rgb: torch.Tensor, limb: torch.Tensor) -> torch.Tensor:
        code = self.limb(limb)[:, :, None, None].expand(-1, -1, *rgb.shape[2:])
        a = self.down1(torch.cat([rgb, code], 1))
        b = self.down2(a)
        c = self.down3(b)
        b = self.up2(torch.cat([F.interpolate(c, size=b.shape[2:], mode="bilinear"), b], 1))
        a = self.up1(torch.cat([F.interpolate(b, size=a.shape[2:], mode="bilinear"), a], 1))
        return self.head(a)


def patch_to_frame(affines: np.ndarray, cache: int, side: int) -> np.ndarray:
    """(..., 3, 3) maps of patch px at ``side`` px -> frame px, from the store's (..., 2, 3) at ``cache`` px
    (pixel centres at integers in both: u_cache = (u + 0.5) cache / side - 0.5)."""
    k = cache / side
    scale = np.array([[k, 0, 0.5 * k - 0.5], [0, k, 0.5 * k - 0.5], [0, 0, 1]])
    full = np.concatenate([affines, np.broadcast_to([0.0, 0.0, 1.0], (*affines.shape[:-2], 1, 3))], axis=-2)
    return full @ scale


def _grid(maps: np.ndarray, out_size: tuple[int, int], in_size: tuple[int, int]) -> torch.Tensor:
    """grid_sample grid (B, H, W, 2) over an input of ``in_size`` (h, w) px for the output pixels of ``out_size``,
    given ``maps`` (B, 3, 3) output px -> input px (align_corners=False convention)."""
    h, w = out_size
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    points = np.stack([xs, ys, np.ones_like(xs)], -1).reshape(-1, 3)
    mapped = np.einsum("bij,pj->bpi", maps, points)[..., :2]
    normalised = (2 * mapped + 1) / np.array([in_size[1], in_size[0]]) - 1
    return torch.from_numpy(normalised.reshape(len(maps), h, w, 2).astype(np.float32))


def patch_inputs(patches, rows: np.ndarray, limbs: tuple[int, ...], side: int) -> np.ndarray:
    """(B, L, 3, side, side) uint8 RGB of the chosen limbs' patches, area-pooled from the store's size."""
    rgb = patches.read(rows)[:, list(limbs), :3].astype(np.float32)
    k = patches.patch_size // side
    pooled = rgb.reshape(*rgb.shape[:3], side, k, side, k).mean((4, 6))
    return np.rint(pooled).astype(np.uint8)


def patch_labels(dataset, maps: np.ndarray, rows: np.ndarray, side: int) -> np.ndarray:
    """(B, L, side, side) uint8 part labels of the renderer sampled (nearest) at each patch pixel's centre;
    ``maps`` (B, L, 3, 3) patch px -> frame px; outside the frame: background."""
    labels = torch.from_numpy(np.ascontiguousarray(dataset.read_part_labels(rows))).float()[:, None]
    b, limbs = maps.shape[:2]
    grid = _grid(maps.reshape(-1, 3, 3), (side, side), dataset.frame_size)
    sampled = F.grid_sample(labels.repeat_interleave(limbs, 0), grid, mode="nearest", align_corners=False)
    return sampled.reshape(b, limbs, side, side).round().to(torch.uint8).numpy()


def train_fold(inputs, labels, frames: np.ndarray, limbs: int, args, seed: int) -> PatchSegmenter:
    """One fold's segmenter on every (frame, limb) patch of ``frames``: Adam one-cycle, channel shuffle and
    per-channel gain jitter (unseen subjects wear other colours)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = PatchSegmenter(args.width, limbs)
    items = np.stack(np.meshgrid(frames, np.arange(limbs), indexing="ij"), -1).reshape(-1, 2)
    steps_per_epoch = max(1, len(items) // args.batch_size)
    optimiser = torch.optim.Adam(model.parameters(), args.learning_rate)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, args.learning_rate, total_steps=args.epochs * steps_per_epoch
    )
    model.train()
    for _ in range(args.epochs):
        order = rng.permutation(len(items))
        for step in range(steps_per_epoch):
            frame, limb = items[order[step * args.batch_size : (step + 1) * args.batch_size]].T
            x = torch.from_numpy(inputs[frame, limb]).float() / 255
            gain = np.exp(rng.normal(0, 0.2, (len(frame), 3, 1, 1))).astype(np.float32)
            x = x[:, torch.from_numpy(rng.permutation(3))] * torch.from_numpy(gain)
            loss = F.cross_entropy(model(x, torch.from_numpy(limb)), torch.from_numpy(labels[frame, limb]).long())
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return model.eval()


@torch.no_grad()
def predict(model: PatchSegmenter, inputs: np.ndarray, frames: np.ndarray, batch: int = 512) -> torch.Tensor:
    """(len(frames), L, 15, side, side) part probabilities of the frames' patches."""
    limbs = inputs.shape[1]
    out = torch.zeros(len(frames), limbs, NUM_PARTS, *inputs.shape[3:])
    for limb in range(limbs):
        for start in range(0, len(frames), batch):
            chunk = frames[start : start + batch]
            x = torch.from_numpy(inputs[chunk, limb]).float() / 255
            out[start : start + len(chunk), limb] = torch.softmax(model(x, torch.full((len(chunk),), limb)), 1)
    return out


def paste(probabilities: torch.Tensor, maps: np.ndarray, encoded, labels, frame_size) -> tuple:
    """The stage's (B, 3, H, W) colours and (B, H, W) labels with the patches' probabilities (B, L, 15, s, s)
    pasted where the patches (``maps`` (B, L, 3, 3) patch px -> frame px) cover a pixel by more than half."""
    b, limbs, _, s, _ = probabilities.shape
    inverse = np.linalg.inv(maps.reshape(-1, 3, 3))
    grid = _grid(inverse, tuple(frame_size), (s, s))
    sampled = F.grid_sample(probabilities.float().reshape(b * limbs, NUM_PARTS, s, s), grid, align_corners=False)
    cover = F.grid_sample(torch.ones(b * limbs, 1, s, s), grid, align_corners=False)
    sampled = sampled.reshape(b, limbs, NUM_PARTS, *frame_size).sum(1)
    cover = cover.reshape(b, limbs, *frame_size).sum(1)
    mine = cover > 0.5
    parts = sampled / cover.clamp_min(1e-6)[:, None]
    parts = parts / parts.sum(1, keepdim=True).clamp_min(1e-6)
    colours = torch.einsum("bkhw,kc->bchw", parts, torch.from_numpy(PALETTE.astype(np.float32)))
    mask = mine.numpy()
    encoded = np.where(mask[:, None], colours.round().clamp(0, 255).to(torch.uint8).numpy(), encoded)
    labels = np.where(mask, parts.argmax(1).to(torch.uint8).numpy(), labels)
    return encoded, labels


def part_iou(dataset, segmentation) -> np.ndarray:
    """(15,) IoU of each part of a segmentation store against the dataset's part labels (NaN: absent from both)."""
    counts = 0
    for start in range(0, dataset.num_frames, BLOCK):
        rows = np.arange(start, min(start + BLOCK, dataset.num_frames))
        counts = counts + confusion_counts(segmentation.read_labels(rows), dataset.read_part_labels(rows))
    return iou_from_counts(counts)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run directory (benchmarks/pipeline.py --workdir)")
    parser.add_argument("--out", type=Path, required=True, help="where the segmentation stores go (must not exist)")
    parser.add_argument("--limbs", choices=sorted(LIMB_GROUPS), default="arms")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--width", type=int, default=32, help="channels of the U-Net's first level")
    parser.add_argument("--side", type=int, default=32, help="patch side the segmenter sees, px (divides the cache)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"--out {args.out}: exists; give a new directory")
    results = results_directory(args.run)
    torch.set_num_threads(args.threads)
    limbs = LIMB_GROUPS[args.limbs]
    data = {}
    for split in SPLITS:
        dataset = open_dataset(results / "dataset" / f"{split}.zarr")
        if not dataset.has_part_labels:
            raise SystemExit(f"{dataset.path}: has no part labels (synthetic world only)")
        patches = open_patch_store(results / "patches" / "predicted" / f"{split}.zarr", dataset)
        if patches.patch_size % args.side:
            raise SystemExit(f"--side {args.side}: does not divide the patch stores' {patches.patch_size} px")
        segmentation = open_segmentation(results / "segmentation" / f"{split}.zarr", dataset)
        rows = np.arange(dataset.num_frames)
        maps = patch_to_frame(patches.read_affine(rows)[:, list(limbs)], patches.patch_size, args.side)
        inputs = np.concatenate([patch_inputs(patches, rows[s : s + BLOCK], limbs, args.side)
                                 for s in range(0, len(rows), BLOCK)])  # fmt: skip
        labels = None
        if split == "train":
            labels = np.concatenate([patch_labels(dataset, maps[s : s + BLOCK], rows[s : s + BLOCK], args.side)
                                     for s in range(0, len(rows), BLOCK)])  # fmt: skip
        data[split] = dict(dataset=dataset, segmentation=segmentation, maps=maps, inputs=inputs, labels=labels,
                           fold=np.asarray(segmentation.fold))  # fmt: skip
    train = data["train"]
    folds = sorted(set(train["fold"].tolist()))
    probabilities = {split: torch.zeros(len(d["fold"]), len(limbs), NUM_PARTS, args.side, args.side,
                                        dtype=torch.float16) for split, d in data.items()}  # fmt: skip
    for fold in folds:
        started = time.perf_counter()
        model = train_fold(train["inputs"], train["labels"], np.flatnonzero(train["fold"] != fold), len(limbs), args,
                           args.seed * 1000 + fold)  # fmt: skip
        print(f"fold {fold}: trained in {time.perf_counter() - started:.0f} s", flush=True)
        for split, d in data.items():
            mine = np.flatnonzero(d["fold"] == fold)
            probabilities[split][mine] = predict(model, d["inputs"], mine).half()
    (args.out / "segmentation").mkdir(parents=True)
    print(f"IoU against the renderer's part labels, the stage's / with the {args.limbs} pasted ({len(limbs)} patches)")
    print(f"{'split':6} {'mean':>13}  " + " ".join(PART_NAMES))
    for split, d in data.items():
        stage = d["segmentation"]

        def produce(start, stop, d=d, stage=stage, split=split):
            rows = np.arange(start, stop)
            return (*paste(probabilities[split][rows], d["maps"][rows], stage.read_encoded(rows),
                           stage.read_labels(rows), d["dataset"].frame_size), d["fold"][rows])  # fmt: skip

        path = args.out / "segmentation" / f"{split}.zarr"
        write_segmentation(path, split, d["dataset"].frame_ids(), d["dataset"].frame_size, produce)
        before, after = part_iou(d["dataset"], stage), part_iou(d["dataset"], open_segmentation(path, d["dataset"]))
        print(f"{split:6} {np.nanmean(before):.3f}/{np.nanmean(after):.3f}  "
              + " ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(before, after, strict=True)))  # fmt: skip
    write_frames_json(args.out, results)  # last: segmentation_oracle.py --from reads OUT by it


if __name__ == "__main__":
    main()
