"""The synthetic world's ray-caster beside an OpenCV painter's algorithm: speed per core, and how wrong the painter is.

Both draw the SAME frames of the synthetic world: real subjects and actions (Sitting with its chair among
them), the configured Human3.6M cameras with their distortion, the person-centred crops. The frames are
the pipeline's own ``world.sequence_scenes``, so subject, motion, placement, camera and crop are exactly
what the pipeline renders; nothing of world.py is re-implemented.

Per frame, one core (BLAS/OpenMP/OpenCV threads limited to 1 before numpy loads), interleaved:

* ray-caster: ``world.render_scene`` timed whole, and its steps timed one by one (``scene_rays``: crop
  grid + ``pixel_rays`` + tiling; ``scene_primitives``: body + chair boxes; ``scene_conditions``: lighting +
  background; ``render``); the step-by-step frame must equal ``render_scene``'s bit for bit (checked).
* painter: the same primitives projected through the same camera and crop, sorted by mean camera depth
  far -> near and drawn with OpenCV, anti-aliasing off: capsules as a thick line (thickness = 2 x the
  projected radius at mid-depth) plus a disc at each end, ellipsoids as ``cv2.ellipse`` from the projected
  semi-axes, boxes as the filled convex hull of their 8 projected corners. One id buffer is drawn; the
  label map and the flat-colour RGB are palette look-ups of it. The painter's whole frame is
  primitives + lighting/background (timed once, in the ray-caster's pass) + painting.

Then the painter's part labels are compared with the ray-caster's (the ground truth) on body pixels
(any of them says body), split by how many primitives the pixel's ray actually hits (exact ``intersect``
of every primitive, untimed): one, several of one part, several parts (limb/torso/chair overlaps). OpenCV
fills every pixel an outline touches, so its shapes come out about half a pixel fat; a second, untimed
painter with every radius / semi-axis pulled in by ``INSET_PX`` separates that from the depth-order errors.

Run:  .venv/bin/python benchmarks/render.py [--frames 200] [--size 128] [--seed 0] [--out DIR]

Timings are printed as frames/s/core and as ratios measured side by side in one run; nothing asserts on
them.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"  # one core, set before numpy is imported

import argparse  # noqa: E402
import copy  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from patchpose.actions import ACTIONS  # noqa: E402
from patchpose.camera import Camera, pixel_rays, project  # noqa: E402
from patchpose.config import load_config  # noqa: E402
from patchpose.crop_geometry import apply_affine, crop_pixel_grid, invert_affine  # noqa: E402
from patchpose.parts import NUM_PARTS, PALETTE  # noqa: E402
from patchpose.synthetic import world as world_module  # noqa: E402
from patchpose.synthetic.plan import SequencePlan  # noqa: E402
from patchpose.synthetic.primitives import Capsule, Ellipsoid, OrientedBox  # noqa: E402
from patchpose.synthetic.render import intersect, render  # noqa: E402
from patchpose.visualize import annotate, tile  # noqa: E402

cv2.setNumThreads(1)

REPO = Path(__file__).resolve().parents[1]
SHIFT = 4  # OpenCV fixed-point bits for sub-pixel coordinates
ONE = 1 << SHIFT
PROP_KEY = NUM_PARTS  # props (the chair) count as their own "part" when counting overlapping parts
INSET_PX = 0.5  # the painter's second, untimed variant: outlines pulled in by OpenCV's half-pixel fill bias
STEPS = ("rays", "primitives", "light + background", "render()")


@dataclass
class Frame:
    """One frame of the world (its scene, the rng untouched), plus what the benchmark measures."""

    scene: world_module.FrameScene
    action: str
    times: dict = field(default_factory=dict)  # seconds per step
    labels: np.ndarray | None = None  # ray-caster (ground truth)
    painted: np.ndarray | None = None  # painter's labels
    painted_inset: np.ndarray | None = None  # painter's labels, outlines pulled in by INSET_PX (untimed)
    rgb: np.ndarray | None = None
    painted_rgb: np.ndarray | None = None
    hits: np.ndarray | None = None  # primitives each pixel's ray hits
    parts_hit: np.ndarray | None = None  # distinct parts (props as one more) each pixel's ray hits

    def fresh_scene(self) -> world_module.FrameScene:
        """The scene with a copy of its untouched stream, so every rendering draws the same numbers."""
        return replace(self.scene, rng=copy.deepcopy(self.scene.rng))


def collect_frames(world: dict, seed: int, frames: int) -> list[Frame]:
    """``frames`` frames of the world, one pose per sequence seen from every configured camera.

    Sequence k: subject k of (train + test subjects) cyclically, action k of the 15 starting at Sitting
    (so Sitting and SittingDown, with their chair, come first), subaction 1 + k // 105.
    """
    subjects = list(world["train_subjects"]) + list(world["test_subjects"])
    cameras = len(world["cameras"])
    start = ACTIONS.index("Sitting")
    result: list[Frame] = []
    for k in range(-(-frames // cameras)):
        subject, action = subjects[k % len(subjects)], ACTIONS[(start + k) % len(ACTIONS)]
        plan = SequencePlan(subject, action, 1 + k // 105, 1)
        result.extend(Frame(scene, action) for scene in world_module.sequence_scenes(plan, world, seed))
    return result[:frames]


def _ticks() -> float:
    return time.perf_counter()


def raycast_steps(frame: Frame, world: dict):
    """``world.render_scene``'s steps, in its order and with its stream draws, each timed."""
    scene = frame.fresh_scene()
    t0 = _ticks()
    rays = world_module.scene_rays(scene, world["frame_size"])
    t1 = _ticks()
    primitives = world_module.scene_primitives(scene)
    t2 = _ticks()
    lighting, background, cues = world_module.scene_conditions(scene, world)
    t3 = _ticks()
    result = render(primitives, rays, lighting, background, scene.rng, cues)
    t4 = _ticks()
    frame.times.update(zip(STEPS, np.diff([t0, t1, t2, t3, t4]), strict=True))
    return primitives, background, result


def paint(primitives, camera: Camera, affine: np.ndarray, background: np.ndarray, inset: float = 0.0):
    """Painter's algorithm: (labels (H, W) uint8, flat-colour rgb (H, W, 3) uint8).

    inset: px taken off every projected radius / semi-axis (0: as specified). OpenCV fills every pixel its
    outline touches, about half a pixel past the true edge; ``INSET_PX`` undoes most of that.
    """
    size = background.shape[0]
    scale = float(affine[0, 0])  # original px per crop px
    points, depth = [], np.empty(len(primitives))
    for i, prim in enumerate(primitives):
        if isinstance(prim, Capsule):
            points.append(np.stack([prim.start, prim.end]))
            depth[i] = 0.5 * (prim.start[2] + prim.end[2])
        elif isinstance(prim, Ellipsoid):
            axes = (prim.rotation * prim.radii).T  # (3, 3) semi-axis vectors
            points.append(np.concatenate([prim.centre[None], prim.centre + axes, prim.centre - axes]))
            depth[i] = prim.centre[2]
        else:
            signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
            points.append(prim.centre + (signs * prim.half_size) @ prim.rotation.T)
            depth[i] = prim.centre[2]
    counts = [len(p) for p in points]
    cam_points = np.concatenate(points)
    crop = apply_affine(invert_affine(affine), project(cam_points, camera.intrinsics, camera.distortion)[None])[0]
    fixed = np.round(crop * ONE).astype(np.int64)
    px_per_mm = camera.fx / scale / cam_points[:, 2]  # crop px per mm at each point's depth
    offsets = np.concatenate([[0], np.cumsum(counts)])
    ids = np.zeros((size, size), np.uint8)
    for i in np.argsort(-depth, kind="stable"):  # far -> near
        prim, lo, value = primitives[i], offsets[i], int(i) + 1
        if isinstance(prim, Capsule):
            p0, p1 = (int(fixed[lo, 0]), int(fixed[lo, 1])), (int(fixed[lo + 1, 0]), int(fixed[lo + 1, 1]))
            r0, r1 = prim.radius * px_per_mm[lo] - inset, prim.radius * px_per_mm[lo + 1] - inset
            cv2.line(ids, p0, p1, value, max(1, round(r0 + r1)), cv2.LINE_8, SHIFT)
            cv2.circle(ids, p0, max(0, round(r0 * ONE)), value, -1, cv2.LINE_8, SHIFT)
            cv2.circle(ids, p1, max(0, round(r1 * ONE)), value, -1, cv2.LINE_8, SHIFT)
        elif isinstance(prim, Ellipsoid):
            semi = 0.5 * (crop[lo + 1 : lo + 4] - crop[lo + 4 : lo + 7])  # (3, 2) projected semi-axes
            w, v = np.linalg.eigh(semi.T @ semi)  # outline of the projected (linearised) ellipsoid
            angle = float(np.degrees(np.arctan2(v[1, 1], v[0, 1])))
            axes = (round((np.sqrt(w[1]) - inset) * ONE), round((np.sqrt(max(w[0], 0.0)) - inset) * ONE))
            cv2.ellipse(ids, (int(fixed[lo, 0]), int(fixed[lo, 1])), axes, angle, 0, 360, value, -1, cv2.LINE_8, SHIFT)
        else:
            hull = cv2.convexHull(fixed[lo : lo + 8].astype(np.int32))
            cv2.fillConvexPoly(ids, hull, value, cv2.LINE_8, SHIFT)
    part_lut = np.array([0] + [p.part for p in primitives], np.uint8)
    colour_lut = np.array([(0.0, 0.0, 0.0)] + [p.material.colour for p in primitives]) * 255.0
    colour_lut = np.round(colour_lut).astype(np.uint8)
    rgb = np.where(ids[..., None] > 0, colour_lut[ids], background)
    return part_lut[ids], rgb


def overlap_counts(primitives, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact, per pixel: how many primitives its ray hits, and how many distinct parts (props one more)."""
    flat = directions.reshape(-1, 3)
    hits = np.zeros(len(flat), np.int32)
    parts = np.zeros(len(flat), np.uint32)
    for prim in primitives:
        hit = np.isfinite(intersect(prim, flat))
        hits += hit
        key = PROP_KEY if isinstance(prim, OrientedBox) else prim.part
        parts |= hit.astype(np.uint32) << np.uint32(key)
    shape = directions.shape[:2]
    return hits.reshape(shape), np.bitwise_count(parts).reshape(shape)


def run(frames: list[Frame], world: dict) -> int:
    """Time and compare every frame; returns how many step-by-step frames equal ``render_scene``'s."""
    for frame in frames[: min(3, len(frames))]:  # imports, caches, first-call costs
        raycast_steps(frame, world)
        world_module.render_scene(frame.fresh_scene(), world)
    identical = 0
    for index, frame in enumerate(frames):
        camera, affine = frame.scene.camera, frame.scene.affine

        def whole(frame=frame):
            scene = frame.fresh_scene()
            t0 = _ticks()
            out = world_module.render_scene(scene, world)
            frame.times["render_scene"] = _ticks() - t0
            return out

        if index % 2:  # alternate the order so neither side always runs on a warm cache
            whole_result = whole()
            primitives, background, result = raycast_steps(frame, world)
        else:
            primitives, background, result = raycast_steps(frame, world)
            whole_result = whole()
        identical += int(
            np.array_equal(whole_result.rgb, result.rgb) and np.array_equal(whole_result.labels, result.labels)
        )
        t0 = _ticks()
        painted, painted_rgb = paint(primitives, camera, affine, background)
        frame.times["paint"] = _ticks() - t0
        frame.labels, frame.rgb, frame.painted, frame.painted_rgb = result.labels, result.rgb, painted, painted_rgb
        frame.painted_inset = paint(primitives, camera, affine, background, INSET_PX)[0]
        directions = pixel_rays(crop_pixel_grid(affine, world["frame_size"]), camera.intrinsics, camera.distortion)
        frame.hits, frame.parts_hit = overlap_counts(primitives, directions)
    return identical


def _fps(frames: list[Frame], *steps: str) -> float:
    return len(frames) / sum(f.times[s] for f in frames for s in steps)


def report(frames: list[Frame], identical: int, world: dict, seed: int) -> None:
    n = len(frames)
    chair = [len(f.scene.boxes) > 0 for f in frames]
    subjects = sorted({f.scene.subject.name for f in frames})
    actions = sorted({f.action for f in frames}, key=ACTIONS.index)
    size = world["frame_size"]
    print(
        f"scenes: {n} frames of {size}x{size} px, seed {seed}: {len(subjects)} subjects ({' '.join(subjects)}), "
        f"{len(actions)} actions, {len(world['cameras'])} Human3.6M cameras, {sum(chair)} frames with the chair"
    )
    print(f"step-by-step ray-caster == world.render_scene (rgb and labels): {identical}/{n} frames")
    print()
    print("ray-caster, ms per frame on one core (mean over frames):")
    total = 0.0
    for step in STEPS:
        ms = 1000 * np.mean([f.times[step] for f in frames])
        total += ms
        print(f"  {step:<22}{ms:8.2f}")
    print(f"  {'sum of the steps':<22}{total:8.2f}")
    print(f"  {'render_scene, whole':<22}{1000 * np.mean([f.times['render_scene'] for f in frames]):8.2f}")
    print(
        f"painter, ms per frame: {1000 * np.mean([f.times['paint'] for f in frames]):.2f} "
        "(projection + depth sort + OpenCV drawing + look-ups)"
    )
    print()
    ray_alone, paint_alone = _fps(frames, "render()"), _fps(frames, "paint")
    ray_whole = _fps(frames, "render_scene")
    paint_whole = _fps(frames, "primitives", "light + background", "paint")
    print(f"{'frames/s/core':<44}{'ray-caster':>11}{'painter':>9}{'painter/ray':>13}")
    print(
        f"{'drawing alone (render() vs paint)':<44}{ray_alone:>11.1f}{paint_alone:>9.1f}"
        f"{paint_alone / ray_alone:>12.1f}x"
    )
    print(
        f"{'whole frame (painter: no rays needed)':<44}{ray_whole:>11.1f}{paint_whole:>9.1f}"
        f"{paint_whole / ray_whole:>12.1f}x"
    )
    print()

    truth = np.stack([f.labels for f in frames])
    variants = {
        "as drawn": np.stack([f.painted for f in frames]),
        f"inset {INSET_PX:g} px": np.stack([f.painted_inset for f in frames]),
    }
    hits = np.stack([f.hits for f in frames])
    parts = np.stack([f.parts_hit for f in frames])
    body = truth > 0
    for painted in variants.values():
        body |= painted > 0
    wrong = {name: body & (truth != painted) for name, painted in variants.items()}
    groups = [
        ("all body pixels", body),
        ("ray hits 1 primitive", body & (hits == 1)),
        ("ray hits >=2 primitives", body & (hits >= 2)),
        ("  of one part", body & (hits >= 2) & (parts == 1)),
        ("  of >=2 parts (overlap)", body & (parts >= 2)),
        ("ray hits nothing (painter spill)", body & (hits == 0)),
    ]
    print("painter's part labels vs the ray-caster's (ground truth); body = any of them says body;")
    print(f"'inset': the painter's outlines pulled in by {INSET_PX:g} px against OpenCV's inclusive fill (untimed)")
    print(f"{'pixels':<36}{'share of body':>14}" + "".join(f"{'wrong, ' + name:>22}" for name in variants))
    for name, mask in groups:
        count = int(mask.sum())
        rates = "".join(f"{100 * w[mask].mean():21.1f}%" if count else f"{'-':>22}" for w in wrong.values())
        print(f"{name:<36}{100 * count / body.sum():13.1f}%{rates}")
    chair = np.array(chair)
    print()
    print("% of body pixels   median frame  worst frame  chair frames  other frames  silhouette  another part")
    for name, painted in variants.items():
        w = wrong[name]
        per_frame = w.reshape(n, -1).sum(axis=1) / np.maximum(body.reshape(n, -1).sum(axis=1), 1)
        silhouette = ((truth > 0) != (painted > 0)).sum() / body.sum()
        swapped = (body & (truth > 0) & (painted > 0) & (truth != painted)).sum() / body.sum()
        cells = [
            np.median(per_frame),
            per_frame.max(),
            w[chair].sum() / body[chair].sum() if body[chair].any() else np.nan,
            w[~chair].sum() / body[~chair].sum() if body[~chair].any() else np.nan,
            silhouette,
            swapped,
        ]
        print(
            f"wrong, {name:<12}"
            + "".join(
                f"{100 * c:>{width}.1f}%" if np.isfinite(c) else f"{'-':>{width + 1}}"
                for c, width in zip(cells, (13, 12, 13, 13, 11, 13), strict=True)
            )
        )


def write_comparison(frames: list[Frame], out: Path, zoom: int = 3) -> Path:
    """PNG of the frame where the painter gets the most overlap pixels wrong."""
    worst = max(frames, key=lambda f: int(((f.parts_hit >= 2) & (f.labels != f.painted)).sum()))
    body = (worst.labels > 0) | (worst.painted > 0)
    diff = np.zeros_like(worst.rgb)
    diff[body] = (90, 90, 90)
    diff[body & (worst.labels != worst.painted)] = (255, 40, 40)
    panels = [
        (worst.rgb, "ray-caster"),
        (PALETTE[worst.labels], "ray-caster labels"),
        (worst.painted_rgb, "painter"),
        (PALETTE[worst.painted], "painter labels"),
        (diff, "labels differ"),
    ]
    big = [
        annotate(cv2.resize(image, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST), text)
        for image, text in panels
    ]
    sheet = tile(big, columns=len(big))
    title = (
        f"{worst.scene.subject.name} {worst.action}, camera {worst.scene.camera.camera_id}: "
        "the frame where the painter (as drawn) gets the most overlap pixels wrong"
    )
    header = np.full((36, sheet.shape[1], 3), 32, np.uint8)
    cv2.putText(header, title, (6, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 1, cv2.LINE_AA)
    sheet = np.concatenate([header, sheet])
    out.mkdir(parents=True, exist_ok=True)
    path = out / "render_vs_painter.png"
    if not cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
        raise RuntimeError(f"{path}: PNG writing failed")
    return path


def main(argv: list[str] | None = None) -> None:
    config = load_config(REPO / "config.yaml")
    defaults = config["dataset"]["synthetic"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200, help="frames to draw (default 200)")
    parser.add_argument(
        "--size",
        type=int,
        default=defaults["frame_size"],
        help=f"crop side in px, 32..512 (default from config.yaml: {defaults['frame_size']})",
    )
    parser.add_argument("--seed", type=int, default=config["seed"], help="world seed (default from config.yaml)")
    parser.add_argument("--out", type=Path, help="write DIR/render_vs_painter.png (one frame, side by side)")
    args = parser.parse_args(argv)
    if args.frames < 1 or not 32 <= args.size <= 512 or args.seed < 0:
        parser.error("--frames must be >= 1, --size in 32..512, --seed >= 0")
    world = dict(defaults, frame_size=args.size)
    started = _ticks()
    frames = collect_frames(world, args.seed, args.frames)
    identical = run(frames, world)
    report(frames, identical, world, args.seed)
    if args.out:
        print(f"wrote {write_comparison(frames, args.out)}")
    print(f"(benchmark wall time {_ticks() - started:.1f} s)")


if __name__ == "__main__":
    main()
