"""Does the limbs' 3D cue survive the patch cache? The cache's area-averaging cut beside one bilinear tap per pixel.

Frames: the synthetic world's test split (S9, S11, the 15 actions, the configured cameras), rendered in
memory at ``--frame-size`` px (default 256, twice the pipeline's 128, so that most limb boxes exceed the
``--size`` = 64 px cache and are downscaled), twice from one seed: with the local 3D cues (ring textures,
directional shading) on and off; poses, cameras, crops and backgrounds are the same. Limb boxes: the
stage's (``patchpose.patches.geometry.limb_patch_geometry`` with the config's ``min_side_at_256`` and
``scale``, square as in the cue test) around the ground-truth 2D joints; kept are the eight arm and leg
limbs of the cue test, with their elevation out of the plane perpendicular to the viewing ray
(``patchpose.synthetic.cue_data``).

Each limb box is cut three ways (RGB, ``--size``² px):

* reference: cut at its native resolution (N = round(box side) px, one bilinear tap per px, step within
  1 +- 1/(2N) of 1) by ``warp_crop``, then area-downscaled to ``--size`` by OpenCV ``INTER_AREA`` (a box
  of at most ``--size`` + 1 px: cut directly, as both others cut it);
* bilinear: one bilinear tap per patch pixel (``warp_crop`` at ``--size``), what the cache held before the
  prefilter (the stage's sampler without it agrees with this to within 1 level);
* cache: the stage's ``patchpose.patches.sampler.cut_patches`` (bilinear up to one px wider than the patch,
  the area average of each pixel's footprint beyond).

Printed per sampling step s (frame px per patch px) and, for the downscaled boxes, per elevation bin:

* PSNR (dB) of the cut against the reference, cues on;
* cue SNR (dB): the cue is the difference cues on - cues off of the same cut (the rings, the shading and the falloff,
  without what both share); 10 log10(sum |reference cue|² / sum |cut cue - reference cue|²): how much of
  the cue the cut keeps undistorted;
* ring band: the cut cue's energy above half the patch's Nyquist frequency (radial frequency 1/4..1/2
  cycle per patch px, where the rings of foreshortened limbs land), as a fraction of the reference cue's
  there: 1 = as an ideal cache; above 1 = false ring energy folded in by aliasing;
* taps per patch pixel: the cache's cost relative to one bilinear tap (``supersampling_factors``, plus
  the one-tap cut that the prefilter overwrites).

Run:  .venv/bin/python benchmarks/patch_cache_cue.py [--frame-size 256] [--size 64] [--poses 2]
                                                     [--sequences 30] [--seed 0]

--poses is poses per (test subject, action) sequence, --sequences how many of the 30 sequences (spread over
both subjects and the actions); frames = sequences x poses x cameras. The defaults render 240 frames twice
(about a minute on one core) and cut 1920 limbs. Deterministic for a seed; nothing asserts on the figures.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"  # one core, set before numpy is imported

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from patchpose.actions import ACTIONS  # noqa: E402
from patchpose.config import load_config  # noqa: E402
from patchpose.crop_geometry import box_affine, warp_crop  # noqa: E402
from patchpose.parts import encode_labels  # noqa: E402
from patchpose.patches.geometry import LimbPatchGeometry, limb_patch_geometry  # noqa: E402
from patchpose.patches.sampler import cut_patches, supersampling_factors  # noqa: E402
from patchpose.synthetic.cue_data import ARM_LEG_LIMBS, ELEVATION_BINS, limb_depth_labels  # noqa: E402
from patchpose.synthetic.params import world_params_for_split  # noqa: E402
from patchpose.synthetic.plan import plan_split  # noqa: E402
from patchpose.synthetic.world import render_sequence  # noqa: E402

cv2.setNumThreads(1)

REPO = Path(__file__).resolve().parents[1]
CUTS = ("bilinear", "cache")
CONDITIONS = {"cues on": True, "cues off": False}  # texture_cue, shading_cue and depth_falloff together


def render(config: dict, args: argparse.Namespace, cues: bool) -> dict[str, np.ndarray]:
    """frames (N, F, F, 3) uint8, part_labels (N, F, F), joints_2d (N, 17, 2) crop px, joints_3d (N, 17, 3) mm."""
    synthetic = dict(config["dataset"]["synthetic"])
    synthetic.update(frame_size=args.frame_size, test_poses_per_action=args.poses, texture_cue=cues, shading_cue=cues)
    if not cues:
        synthetic["depth_falloff"] = 0
    world = world_params_for_split(synthetic, "test")
    plans = plan_split(world, "test")
    chosen = np.unique(np.linspace(0, len(plans) - 1, min(args.sequences, len(plans))).round().astype(int))
    subjects = list(world["test_subjects"])
    batches = [
        render_sequence(plans[i], world, args.seed, subjects.index(plans[i].subject), ACTIONS.index(plans[i].action))
        for i in chosen
    ]
    keys = ("frames", "part_labels", "joints_2d", "joints_3d")
    return {key: np.concatenate([batch[key] for batch in batches]) for key in keys}


def reference_cut(frame: np.ndarray, affine: np.ndarray, size: int) -> np.ndarray:
    """The box of ``affine`` (size² patch px -> frame px, square) cut at its native resolution, then
    area-downscaled to ``size`` px by OpenCV; a box of at most size + 1 px is cut directly (one bilinear tap
    per pixel: nothing to average)."""
    side = abs(affine[0, 0]) * size  # frame px
    if side <= size + 1:
        return warp_crop(frame, affine, size)
    native = int(round(side))
    centre = affine[:, 2] - np.array([affine[0, 0], affine[1, 1]]) / 2 + side / 2
    crop = warp_crop(frame, box_affine(centre, np.array([side, side]), native), native)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def cut_all(data: dict[str, np.ndarray], affines: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """(N, L, size, size, 3) uint8 per cut (reference, bilinear, cache) of the limbs' boxes."""
    frames = data["frames"]
    segmentation = encode_labels(data["part_labels"]).transpose(0, 3, 1, 2).copy()
    cache = cut_patches(frames, segmentation, affines, size)[:, :, :3].transpose(0, 1, 3, 4, 2)
    bilinear = np.stack(
        [[warp_crop(frame, affine, size) for affine in row] for frame, row in zip(frames, affines, strict=True)]
    )
    reference = np.stack(
        [[reference_cut(frame, a, size) for a in row] for frame, row in zip(frames, affines, strict=True)]
    )
    return {"reference": reference, "bilinear": bilinear, "cache": np.ascontiguousarray(cache)}


def ring_band(size: int) -> np.ndarray:
    """(size, size) bool: 2D frequencies of radius 1/4..1/2 cycle per patch px (the upper half of the band)."""
    frequencies = np.fft.fftfreq(size)
    radius = np.hypot(frequencies[:, None], frequencies[None, :])
    return (radius >= 0.25) & (radius <= 0.5)


def band_energy(cue: np.ndarray, band: np.ndarray) -> np.ndarray:
    """(M,) energy of the cue patches (M, R, R, 3) float in ``band``, summed over the colours."""
    spectrum = np.fft.fft2(cue, axes=(1, 2))
    return (np.abs(spectrum) ** 2 * band[None, :, :, None]).sum(axis=(1, 2, 3))


def scores(cuts_on: dict, cuts_off: dict, rows: np.ndarray, band: np.ndarray) -> dict[str, tuple[float, float, float]]:
    """Per cut: (PSNR dB, cue SNR dB, ring band energy / reference's) over the patches ``rows``."""
    reference_on = cuts_on["reference"][rows].astype(np.float64)
    reference_cue = reference_on - cuts_off["reference"][rows]
    reference_band = band_energy(reference_cue, band).sum()
    result = {}
    for cut in CUTS:
        on = cuts_on[cut][rows].astype(np.float64)
        cue = on - cuts_off[cut][rows]
        with np.errstate(divide="ignore"):  # a cut equal to the reference: inf dB
            psnr = 10 * np.log10(255.0**2 / np.mean((on - reference_on) ** 2))
            snr = 10 * np.log10(np.sum(reference_cue**2) / np.sum((cue - reference_cue) ** 2))
        result[cut] = (psnr, snr, band_energy(cue, band).sum() / reference_band if reference_band else np.nan)
    return result


def print_table(title: str, bins: list[tuple[str, np.ndarray]], cuts_on, cuts_off, taps, band) -> None:
    print(f"\n{title}")
    header = f"{'':>16} {'limbs':>6} {'taps/px':>8}"
    for name in ("PSNR dB", "cue SNR dB", "ring band"):
        header += f" | {name + ' (bilinear, cache)':>30}"
    print(header)
    print("-" * len(header))
    for label, rows in bins:
        if not rows.any():
            print(f"{label:>16} {0:6d}")
            continue
        score = scores(cuts_on, cuts_off, rows, band)
        line = f"{label:>16} {int(rows.sum()):6d} {taps[rows].mean():8.2f}"
        for column in range(3):
            pair = f"{score['bilinear'][column]:.2f}, {score['cache'][column]:.2f}"
            line += f" | {pair:>30}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frame-size", type=int, default=256, help="rendered crop side, px (default 256)")
    parser.add_argument("--size", type=int, default=64, help="cache side R, px (default 64)")
    parser.add_argument("--poses", type=int, default=2, help="poses per test sequence (default 2)")
    parser.add_argument("--sequences", type=int, default=30, help="test sequences, of 30 (default all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if min(args.frame_size, args.size, args.poses, args.sequences) < 1:
        parser.error("--frame-size, --size, --poses and --sequences must be >= 1")
    config = load_config(REPO / "config.yaml")
    started = time.perf_counter()
    data = {condition: render(config, args, cues) for condition, cues in CONDITIONS.items()}
    on, off = data["cues on"], data["cues off"]
    if not np.array_equal(on["joints_2d"], off["joints_2d"]):
        raise SystemExit("the two conditions rendered different poses; the cue difference would be meaningless")
    render_s = time.perf_counter() - started
    geometry = LimbPatchGeometry(min_side_at_256=config["patches"]["min_side_at_256"], scale=config["patches"]["scale"],
                                 square=True, cache_size=args.size)  # fmt: skip
    _, affines = limb_patch_geometry(on["joints_2d"].astype(np.float64), (args.frame_size,) * 2, geometry)
    affines = affines[:, list(ARM_LEG_LIMBS)]  # (N, 8, 2, 3)
    cuts = {condition: cut_all(data[condition], affines, args.size) for condition in CONDITIONS}
    cuts_on = {name: array.reshape(-1, args.size, args.size, 3) for name, array in cuts["cues on"].items()}
    cuts_off = {name: array.reshape(-1, args.size, args.size, 3) for name, array in cuts["cues off"].items()}
    _, elevation, _ = limb_depth_labels(on["joints_3d"], ARM_LEG_LIMBS)
    elevation = elevation.reshape(-1)
    step = np.abs(affines[..., 0, 0]).reshape(-1)  # square boxes: one step for both axes
    factors = supersampling_factors(affines, args.size).reshape(-1, 2)
    downscaled = np.any(factors > 1, axis=-1)
    taps = np.where(downscaled, 1 + factors.prod(axis=-1), 1).astype(np.float64)
    band = ring_band(args.size)

    print(f"\n{len(on['frames'])} test frames of {args.frame_size} px x 2 conditions, {step.size} arm/leg limb boxes "
          f"cut to {args.size} px (seed {args.seed}; render {render_s:.0f} s, cut + score "
          f"{time.perf_counter() - started - render_s:.0f} s)")  # fmt: skip
    print(f"downscaled by the cache (box > {args.size + 1} px): {100 * downscaled.mean():.1f}% of the boxes; "
          f"box side: median {np.median(step) * args.size:.0f} px, max {step.max() * args.size:.0f} px; "
          f"mean taps per patch pixel over all boxes {taps.mean():.2f}")  # fmt: skip
    edges = [0.0, 1 + 1 / args.size, 1.5, 2.0, 3.0, np.inf]
    step_bins = [("all", np.ones_like(downscaled))]
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        label = (
            f"s <= {high:.4g}" if low == 0 else (f"s > {low:.4g}" if np.isinf(high) else f"{low:.4g} < s <= {high:.4g}")
        )
        step_bins.append((label, (step > low) & (step <= high)))
    print_table("Per sampling step s (frame px per patch px); the first bin is cut one tap per pixel by all three:",
                step_bins, cuts_on, cuts_off, taps, band)  # fmt: skip
    elevation_bins = []
    for low, high in zip(ELEVATION_BINS[:-1], ELEVATION_BINS[1:], strict=True):
        inside = (elevation >= low) & ((elevation < high) | (high == ELEVATION_BINS[-1]))
        elevation_bins.append((f"{low:.0f}-{high:.0f} deg", downscaled & inside))
    print_table("Downscaled boxes only, per elevation of the limb out of the plane perpendicular to its viewing ray:",
                elevation_bins, cuts_on, cuts_off, taps, band)  # fmt: skip


if __name__ == "__main__":
    main()
