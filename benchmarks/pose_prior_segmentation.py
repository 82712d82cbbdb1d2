"""The segmentation stage's part maps steered by its own 2D joints: a screen of a prior drawn from the skeleton.

The default segmentation is the keypoints2d hourglass's part head: a 3x3 and a 1x1 convolution on the trunk's
32 x 32 features. It finds the head, torso and legs but hardly the forearms (test IoU ~0.1 on the default world),
although the same network places the elbows and wrists within a few pixels: a forearm is the band between those
two points, a relation across the whole limb that a head this small cannot draw. This script draws it. For every
frame it takes keypoints2d's predicted joints (``results/<dataset>/keypoints2d/{split}_joints_2d.npz``, k-fold
on the training split, so as good as the test split's) and measures each pixel's distance ``d_k`` to the predicted
place of every body part ``k`` (a limb: the segment between its joints; the torso: the hips-shoulders
quadrilateral and the spine; the head: thorax - nose - head top; a hand or foot: a point beyond the wrist or
ankle, as ``patchpose.h36m.pseudo_labels`` places them). Each part has a radius ``r_k``, the one whose band
``d_k <= r_k`` best matches that part's labels on the training split (IoU). The part head's log-probabilities
then get ``alpha * clip(1 - d_k / r_k, -2, 1)`` added for every body part (background unchanged): ``alpha = 0`` is
the stage, a large ``alpha`` the bands alone. ``alpha`` is chosen on the training split's mean IoU (its labels
are what the stage trains on; the test split only reports).

Writes both splits' segmentation stores with the chosen ``alpha`` under ``--out`` with ``frames.json``, which
``benchmarks/segmentation_oracle.py RUN --workdir DIR --from OUT`` swaps into RUN to retrain the patches and
everything after them. A screen of a design, not a stage: nothing here is in the pipeline.

Run:  .venv/bin/python benchmarks/pose_prior_segmentation.py RUN --out OUT [--alphas 0,0.5,1,2,4,8,inf]
          [--alpha A] [--threads 2]

Prints keypoints2d's median 2D error of the limb joints, the radii and each band's IoU, each alpha's mean IoU on
both splits, and the chosen alpha's per-part IoU beside the stage's.
About 9 minutes on 2 idle cores with the default world.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from patchpose.dataset_format import open_dataset
from patchpose.fold_models import load_fold_models
from patchpose.frames import load_frames, to_unit_float
from patchpose.h36m.pseudo_labels import _EXTREMITIES as PSEUDO_EXTREMITIES
from patchpose.h36m.pseudo_labels import _TORSO as TORSO_POLYGON
from patchpose.keypoints2d.stage import read_predictions
from patchpose.parts import LIMB_PART, NUM_PARTS, PART_NAMES
from patchpose.segmentation.evaluate import confusion_counts, iou_from_counts
from patchpose.segmentation.stage import build_segmenter, encode_probability_maps
from patchpose.segmentation.store import open_segmentation, write_segmentation
from patchpose.skeleton import H36M

sys.path.insert(0, str(Path(__file__).resolve().parent))
from limb_segmenter import part_iou  # noqa: E402
from segmentation_oracle import SPLITS, results_directory, write_frames_json  # noqa: E402

J = H36M.joint_index
RADII = np.arange(1.0, 24.5, 0.5)  # px, the radius grid of the bands
BLOCK = 64
CLIP = 2.0
# each body part's segments (joint id pairs): the skeleton's limbs of that part (``patchpose.parts.LIMB_PART``)
SEGMENTS = {name: [limb for limb, part in zip(H36M.limbs, LIMB_PART, strict=True) if part == k]
            for k, name in enumerate(PART_NAMES) if k and k in LIMB_PART}  # fmt: skip
# hands and feet: a point beyond a joint along a limb, as the Human3.6M pseudo labels place them
EXTREMITIES = {name: (start, end, fraction) for name, _, start, end, fraction in PSEUDO_EXTREMITIES}


def _segment_distance(pixels: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, P) distance of the pixels (P, 2) to the segments a-b (B, 2)."""
    ab = (b - a)[:, None]
    ap = pixels[None] - a[:, None]
    t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-9)).clamp(0, 1)
    return (ap - t[..., None] * ab).norm(dim=-1)


def _inside(pixels: torch.Tensor, polygon: torch.Tensor) -> torch.Tensor:
    """(B, P) whether the pixels lie inside the polygons (B, V, 2) (even-odd rule)."""
    x, y = pixels[None, :, 0], pixels[None, :, 1]
    inside = torch.zeros(len(polygon), len(pixels), dtype=torch.bool)
    for i in range(polygon.shape[1]):
        (x0, y0), (x1, y1) = polygon[:, i - 1, None].unbind(-1), polygon[:, i, None].unbind(-1)
        crosses = (y0 > y) != (y1 > y)
        at = x0 + (y - y0) * (x1 - x0) / torch.where(y1 == y0, torch.full_like(y1, 1e-9), y1 - y0)
        inside ^= crosses & (x < at)
    return inside


def part_distances(joints: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(B, 14, H, W) each pixel's distance, px, to the place of body parts 1..14 drawn from joints (B, 17, 2)
    crop px (pixel centres at integers)."""
    h, w = size
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    pixels = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)
    points = torch.from_numpy(np.asarray(joints, np.float32))
    out = torch.empty(len(points), NUM_PARTS - 1, h * w)
    for k, name in enumerate(PART_NAMES[1:]):
        if name in EXTREMITIES:
            a, b, fraction = EXTREMITIES[name]
            centre = points[:, b] + fraction * (points[:, b] - points[:, a])
            out[:, k] = (pixels[None] - centre[:, None]).norm(dim=-1)
            continue
        d = torch.stack([_segment_distance(pixels, points[:, a], points[:, b]) for a, b in SEGMENTS[name]])
        d = d.min(0).values
        if name == "torso":
            d = torch.where(_inside(pixels, points[:, TORSO_POLYGON]), torch.zeros_like(d), d)
        out[:, k] = d
    return out.reshape(len(points), NUM_PARTS - 1, h, w)


def fit_radii(dataset, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(14,) the radius of each body part's band with the best IoU against the split's part labels, and (14,)
    that IoU (each band on its own: where bands overlap, both count)."""
    inter = np.zeros((NUM_PARTS - 1, len(RADII)))
    predicted = np.zeros_like(inter)
    truth = np.zeros(NUM_PARTS - 1)
    for start in range(0, dataset.num_frames, BLOCK):
        rows = np.arange(start, min(start + BLOCK, dataset.num_frames))
        d = part_distances(joints[rows], dataset.frame_size).numpy()
        labels = dataset.read_part_labels(rows)
        for k in range(NUM_PARTS - 1):
            mine = labels == k + 1
            band = d[:, k, :, :, None] <= RADII
            inter[k] += (band & mine[..., None]).sum((0, 1, 2))
            predicted[k] += band.sum((0, 1, 2))
            truth[k] += mine.sum()
    iou = inter / np.maximum(predicted + truth[:, None] - inter, 1)
    return RADII[iou.argmax(1)], iou.max(1)


def fused_scores(log_p: torch.Tensor, distances: torch.Tensor, radii: torch.Tensor, alpha: float) -> torch.Tensor:
    """(B, 15, H, W) the part head's log-probabilities with each body part's band added (alpha = inf: the bands
    alone, background where no band reaches)."""
    bands = (1 - distances / radii[None, :, None, None]).clamp(-CLIP, 1)
    if math.isinf(alpha):
        return torch.cat([torch.zeros_like(bands[:, :1]), bands], 1)
    return log_p + alpha * torch.cat([torch.zeros_like(bands[:, :1]), bands], 1)


class Split:
    """One split's dataset, predicted joints and the fold models' part log-probabilities, block by block."""

    def __init__(self, results: Path, split: str):
        self.dataset = open_dataset(results / "dataset" / f"{split}.zarr")
        if not self.dataset.has_part_labels:
            raise SystemExit(f"{self.dataset.path}: has no part labels (synthetic world only)")
        self.joints = read_predictions(results / "keypoints2d" / f"{split}_joints_2d.npz", self.dataset)
        paths = sorted((results / "keypoints2d" / "models").glob("fold*.pt"), key=lambda p: int(p.stem[4:]))
        self.which, self.models, payloads = load_fold_models(
            paths, split, self.dataset.subject_names(), build_segmenter, torch.device("cpu")
        )
        self.size = payloads[0]["model_settings"]["input_size"]
        self.stage = open_segmentation(results / "segmentation" / f"{split}.zarr", self.dataset)

    @torch.no_grad()
    def log_probabilities(self, rows: np.ndarray) -> torch.Tensor:
        out = torch.empty(len(rows), NUM_PARTS, *self.dataset.frame_size)
        for fold, model in enumerate(self.models):
            mine = np.flatnonzero(self.which[rows] == fold)
            if len(mine):
                logits = model(to_unit_float(load_frames(self.dataset, rows[mine], self.size), torch.device("cpu")))
                logits = F.interpolate(logits.float(), self.dataset.frame_size, mode="bilinear", align_corners=False)
                out[mine] = torch.log_softmax(logits, 1)
        return out

    def blocks(self):
        for start in range(0, self.dataset.num_frames, BLOCK):
            rows = np.arange(start, min(start + BLOCK, self.dataset.num_frames))
            yield rows, self.log_probabilities(rows), part_distances(self.joints[rows], self.dataset.frame_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a finished run directory (benchmarks/pipeline.py --workdir)")
    parser.add_argument("--out", type=Path, required=True, help="where the segmentation stores go (must not exist)")
    parser.add_argument("--alphas", default="0,0.5,1,2,4,8,inf", help="the weights of the bands screened")
    parser.add_argument("--alpha", type=float, help="write the stores with this weight (default: the best on train)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"--out {args.out}: exists; give a new directory")
    torch.set_num_threads(args.threads)
    results = results_directory(args.run)
    alphas = [float(a) for a in args.alphas.split(",")]
    splits = {split: Split(results, split) for split in SPLITS}
    print("keypoints2d's 2D error of the limb joints, median px (train: k-fold predictions):")
    limb_joints = [name for name in H36M.joint_names if name.split("_")[-1] in ("shoulder", "elbow", "wrist", "hip",
                                                                                 "knee", "ankle")]  # fmt: skip
    for split, s in splits.items():
        error = np.linalg.norm(s.joints - np.asarray(s.dataset.joints_2d), axis=-1)
        print(f"  {split:6} " + ", ".join(f"{name} {np.median(error[:, J(name)]):.1f}" for name in limb_joints))
    radii, band_iou = fit_radii(splits["train"].dataset, splits["train"].joints)
    print("band radii, px, fitted on the training split's labels, and each band's IoU there:")
    print("\n".join(f"  {name:16} {r:4g} {b:.2f}" for name, r, b in zip(PART_NAMES[1:], radii, band_iou, strict=True)),
          flush=True)  # fmt: skip
    radii_t = torch.from_numpy(radii.astype(np.float32))
    iou = {}
    for split, s in splits.items():
        counts = {alpha: 0 for alpha in alphas}
        same = True
        for rows, log_p, d in s.blocks():
            truth = s.dataset.read_part_labels(rows)
            for alpha in alphas:
                labels = fused_scores(log_p, d, radii_t, alpha).argmax(1).to(torch.uint8).numpy()
                counts[alpha] = counts[alpha] + confusion_counts(labels, truth)
                if alpha == 0:
                    same &= bool((labels == s.stage.read_labels(rows)).mean() > 0.999)
        iou[split] = {alpha: iou_from_counts(c)[0] for alpha, c in counts.items()}
        print(f"{split}: alpha 0 reproduces the stage's labels: {same}", flush=True)
    print(f"{'alpha':>6} " + " ".join(f"{split:>6}" for split in SPLITS))
    for alpha in alphas:
        print(f"{alpha:>6g} " + " ".join(f"{np.nanmean(iou[split][alpha]):6.3f}" for split in SPLITS))
    chosen = args.alpha if args.alpha is not None else max(alphas, key=lambda a: np.nanmean(iou["train"][a]))
    print(f"chosen alpha: {chosen:g}" + ("" if args.alpha is not None else " (best mean IoU on the training split)"))
    (args.out / "segmentation").mkdir(parents=True)
    for split, s in splits.items():
        blocks = s.blocks()

        def produce(start, stop, s=s, blocks=blocks):
            rows, log_p, d = next(blocks)
            assert rows[0] == start and rows[-1] == stop - 1
            p = torch.softmax(fused_scores(log_p, d, radii_t, chosen) * (1 if math.isfinite(chosen) else 8), 1)
            encoded = encode_probability_maps(p).round().clamp(0, 255).to(torch.uint8).numpy()
            return encoded, p.argmax(1).to(torch.uint8).numpy(), s.which[rows]

        path = args.out / "segmentation" / f"{split}.zarr"
        write_segmentation(path, split, s.dataset.frame_ids(), s.dataset.frame_size, produce)
    print(f"IoU against the renderer's part labels, the stage's / alpha {chosen:g}")
    print(f"{'split':6} {'mean':>13}  " + " ".join(PART_NAMES))
    for split, s in splits.items():
        before = part_iou(s.dataset, s.stage)
        after = part_iou(s.dataset, open_segmentation(args.out / "segmentation" / f"{split}.zarr", s.dataset))
        print(f"{split:6} {np.nanmean(before):.3f}/{np.nanmean(after):.3f}  "
              + " ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(before, after, strict=True)))  # fmt: skip
    write_frames_json(args.out, results, alpha=chosen, radii=radii.tolist())  # last: --from reads OUT by it


if __name__ == "__main__":
    main()
