"""The patches stage's speed: its batched cropper beside OpenCV per patch, its store beside the training step.

One run, one core (BLAS/OpenMP/OpenCV/torch threads set to 1 before numpy loads), repetitions interleaved,
medians printed:

1. Cropping, patches/s (a patch = one limb's RGB and segmentation, 6 x R x R): the stage's
   ``patchpose.patches.sampler.cut_patches`` (sampling maps for a group of frames, one ``cv2.remap`` per
   modality) beside the per-patch reference ``patchpose.crop_geometry.warp_crop`` (OpenCV ``warpAffine``
   once for the RGB frame and once for the segmentation of every limb), both from the same frames and
   affines; the reference is timed as OpenCV returns the patches (H x W x 3 each) and copied into the
   store's (16, 6, R, R) layout; RGB alone (one call per patch) is printed too. The outputs are checked to
   agree to within 1 level where the stage cuts one bilinear tap per pixel (boxes up to R + 1 px); larger
   boxes the stage area-averages (k x k taps per pixel, ``supersampling_factors``), which OpenCV's one-tap
   reference does not: their share and the stage's mean taps per pixel are printed, and a fourth reference
   does the same per patch with OpenCV (warpAffine of the box at k x R px, then ``INTER_AREA``), checked
   to agree with the stage to within 1 level on every patch.
2. Reading, samples/s (a sample = one frame's 16 x 6 x R x R patches): random batches of 32 from a patch
   store written by ``patchpose.patches.store.write_patch_store`` (lz4 and zstd), read with
   ``PatchStore.read`` (each sample's chunk file read and decoded directly) and, for comparison, through zarr:
   one zarr read per sample (what ``PatchStore.read`` did before) and one orthogonal selection (``oindex``) per
   batch.
3. The updater's training step on CPU, samples/s: a torchvision ResNet-18 whose first convolution takes
   the 96 channels, 64² input, 48 outputs, forward + backward + Adam step, batch 32 (uint8 -> float
   conversion included).

Frames: a dataset store and its segmentation store (default: the pipeline's synthetic test split), limb
boxes from the store's ground-truth 2D joints; without a segmentation store the part labels, colour-coded,
stand in. Run:  .venv/bin/python benchmarks/patches.py [--dataset PATH] [--segmentation PATH] [--frames 256]
Timings are printed as rates and as ratios measured side by side in one run; nothing asserts on them.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_name] = "1"  # one core, set before numpy is imported

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402

from patchpose.crop_geometry import warp_crop  # noqa: E402
from patchpose.dataset_format import open_dataset  # noqa: E402
from patchpose.parts import encode_labels  # noqa: E402
from patchpose.patches.geometry import LimbPatchGeometry, limb_patch_geometry  # noqa: E402
from patchpose.patches.sampler import cut_patches, supersampling_factors  # noqa: E402
from patchpose.patches.store import open_patch_store, write_patch_store  # noqa: E402
from patchpose.segmentation.store import open_segmentation  # noqa: E402
from patchpose.skeleton import H36M  # noqa: E402

cv2.setNumThreads(1)
torch.set_num_threads(1)
BATCH = 32


def load_frames(dataset_path: Path, segmentation_path: Path, count: int):
    """RGB (N, H, W, 3), segmentation (N, 3, H, W), ground-truth joints (N, 17, 2), frame size."""
    store = open_dataset(dataset_path)
    rows = np.unique(np.linspace(0, store.num_frames - 1, min(count, store.num_frames)).round().astype(int))
    if segmentation_path.exists():
        segmentation, what = open_segmentation(segmentation_path, store).read_encoded(rows), "predicted"
    else:
        segmentation, what = encode_labels(store.read_part_labels(rows)).transpose(0, 3, 1, 2).copy(), "labels"
    print(f"{len(rows)} frames of {store.path} ({store.frame_size[0]} px), segmentation: {what}")
    return store.read_frames(rows), segmentation, store.joints_2d[rows].astype(np.float64), store.frame_size


def reference_raw(rgb, segmentation, affines, size):
    """OpenCV per patch: one warpAffine of the RGB frame and one of the segmentation per limb."""
    out = []
    for n in range(len(rgb)):
        seg = np.ascontiguousarray(segmentation[n].transpose(1, 2, 0))
        for affine in affines[n]:
            out.append((warp_crop(rgb[n], affine, size), warp_crop(seg, affine, size)))
    return out


def reference_in_store_layout(rgb, segmentation, affines, size):
    """The same calls, copied into the store's (N, 16, 6, R, R) layout."""
    out = np.empty((len(rgb), affines.shape[1], 6, size, size), np.uint8)
    for n in range(len(rgb)):
        seg = np.ascontiguousarray(segmentation[n].transpose(1, 2, 0))
        for k, affine in enumerate(affines[n]):
            out[n, k, :3] = warp_crop(rgb[n], affine, size).transpose(2, 0, 1)
            out[n, k, 3:] = warp_crop(seg, affine, size).transpose(2, 0, 1)
    return out


def _opencv_area(image, affine, size, kx, ky):
    """One patch as the stage cuts it, with OpenCV per patch: warpAffine of the same box at kx size x ky size
    px, then an INTER_AREA resize by the integer factors (one tap per pixel where kx = ky = 1)."""
    if kx == ky == 1:
        return warp_crop(image, affine, size)
    fine = affine.copy()
    fine[:, :2] /= np.array([kx, ky])[:, None]
    fine[:, 2] += np.array([affine[0, 0] * (0.5 / kx - 0.5), affine[1, 1] * (0.5 / ky - 0.5)])
    taps = cv2.warpAffine(image, fine, (kx * size, ky * size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    return cv2.resize(taps, (size, size), interpolation=cv2.INTER_AREA)


def reference_area(rgb, segmentation, affines, size):
    """OpenCV per patch and modality, area-averaging the patches the stage area-averages; store layout."""
    factors = supersampling_factors(affines, size)
    out = np.empty((len(rgb), affines.shape[1], 6, size, size), np.uint8)
    for n in range(len(rgb)):
        seg = np.ascontiguousarray(segmentation[n].transpose(1, 2, 0))
        for k, affine in enumerate(affines[n]):
            kx, ky = factors[n, k]
            out[n, k, :3] = _opencv_area(rgb[n], affine, size, kx, ky).transpose(2, 0, 1)
            out[n, k, 3:] = _opencv_area(seg, affine, size, kx, ky).transpose(2, 0, 1)
    return out


def reference_rgb_only(rgb, segmentation, affines, size):
    return [warp_crop(rgb[n], affine, size) for n in range(len(rgb)) for affine in affines[n]]


def interleaved(functions: dict, repeats: int) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved."""
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(values)) for name, values in times.items()}


def benchmark_cropping(rgb, segmentation, affines, size, repeats):
    patches = len(rgb) * affines.shape[1]
    ours = cut_patches(rgb, segmentation, affines, size)
    check = reference_in_store_layout(rgb, segmentation, affines, size)
    factors = supersampling_factors(affines, size)  # (N, 16, 2): > 1 where the stage area-averages
    one_tap = np.all(factors == 1, axis=-1)
    difference = int(np.abs(ours[one_tap].astype(int) - check[one_tap]).max()) if one_tap.any() else 0
    taps = np.where(one_tap, 1, 1 + factors.prod(axis=-1)).mean()
    area_difference = int(np.abs(ours.astype(int) - reference_area(rgb, segmentation, affines, size)).max())
    seconds = interleaved(
        {
            "stage: cut_patches (batched, RGB + seg)": lambda: cut_patches(rgb, segmentation, affines, size),
            "OpenCV per patch (RGB + seg)": lambda: reference_raw(rgb, segmentation, affines, size),
            "OpenCV per patch (RGB + seg), store layout": lambda: reference_in_store_layout(
                rgb, segmentation, affines, size
            ),
            "OpenCV per patch (RGB only)": lambda: reference_rgb_only(rgb, segmentation, affines, size),
            "OpenCV per patch, area-averaged as the stage": lambda: reference_area(rgb, segmentation, affines, size),
        },
        repeats,
    )
    ours_rate = patches / seconds["stage: cut_patches (batched, RGB + seg)"]
    print(
        f"\n1. cropping {patches} limb patches of {size}² px ({repeats} interleaved repeats, median; "
        f"max |stage - OpenCV| = {difference} level on the {one_tap.sum()} patches cut with one tap per pixel)"
    )
    print(f"   the stage area-averages {100 * (1 - one_tap.mean()):.1f}% of the patches (box > {size + 1} px; "
          f"OpenCV per patch does not): {taps:.2f} taps per patch pixel on average; max |stage - OpenCV "
          f"per patch area-averaged as the stage| = {area_difference} level on all patches")  # fmt: skip
    print(f"{'':46s} {'patches/s':>10s} {'stage / this':>13s}")
    for name, value in seconds.items():
        rate = patches / value
        print(f"{name:46s} {rate:10.0f} {ours_rate / rate:12.2f}x")
    return ours


def write_store(directory: Path, patches, affines, boxes, compressor: str, frame_size) -> Path:
    n = len(patches)

    def produce(start, stop):
        return patches[start:stop], affines[start:stop], boxes[start:stop]

    path = directory / f"{compressor}.zarr"
    write_patch_store(
        path, kind="limbs", source="groundtruth", split="test", frame_ids=[f"frame{i}" for i in range(n)],
        frame_size=frame_size, patch_names=H36M.limb_names, patch_size=patches.shape[-1], geometry={},
        compressor=compressor, compression_level={"lz4": 5, "zstd": 3}[compressor], chunk_frames=64,
        produce=produce,
    )  # fmt: skip
    return path


def benchmark_reading(patches, affines, boxes, frame_size, batches: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    order = [np.sort(rng.choice(len(patches), BATCH, replace=False)) for _ in range(batches)]
    rates = {}
    print(f"\n2. reading random batches of {BATCH} samples ({patches[0].nbytes / 1e3:.0f} kB raw each), "
          f"{batches} batches, from a {len(patches)}-sample store")  # fmt: skip
    print(f"{'':30s} {'MB/sample':>10s} {'read()/s':>10s} {'zarr/s':>10s} {'oindex/s':>10s} {'read/zarr':>10s}")
    with tempfile.TemporaryDirectory() as directory:
        for compressor in ("lz4", "zstd"):
            path = write_store(Path(directory), patches, affines, boxes, compressor, frame_size)
            store = open_patch_store(path)
            array = store._group["patches"]  # the zarr array, for the comparisons only
            size = sum(f.stat().st_size for f in (path / "patches").iterdir()) / len(patches) / 1e6
            timing = interleaved(
                {
                    "read": lambda store=store: [store.read(batch) for batch in order],
                    "zarr": lambda array=array: [[array[int(i)] for i in batch] for batch in order],
                    "oindex": lambda array=array: [array.oindex[batch] for batch in order],
                },
                3,
            )
            rates[compressor] = batches * BATCH / timing["read"]
            zarr_rate = batches * BATCH / timing["zarr"]
            print(f"{compressor + ' (1 sample per chunk)':30s} {size:10.3f} {rates[compressor]:10.0f} "
                  f"{zarr_rate:10.0f} {batches * BATCH / timing['oindex']:10.0f} "
                  f"{rates[compressor] / zarr_rate:9.2f}x")  # fmt: skip
    return rates


def benchmark_training(size: int, steps: int) -> float:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=3 * H36M.num_limbs)
    model.conv1 = torch.nn.Conv2d(6 * H36M.num_limbs, 64, kernel_size=7, stride=2, padding=3, bias=False)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-5)
    batch = torch.randint(0, 256, (BATCH, 6 * H36M.num_limbs, size, size), dtype=torch.uint8)
    target = torch.randn(BATCH, 3 * H36M.num_limbs)

    def step():
        optimiser.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(batch.float().div_(255)), target)
        loss.backward()
        optimiser.step()

    step()  # warm-up
    seconds = interleaved({"step": step}, steps)["step"]
    rate = BATCH / seconds
    print(f"\n3. updater training step on CPU: ResNet-18, 96 x {size}² input, batch {BATCH}, forward + backward + "
          f"Adam: {seconds:.3f} s/step = {rate:.1f} samples/s ({1e3 / rate:.1f} ms/sample)")  # fmt: skip
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", type=Path, default=Path("results/synthetic/dataset/test.zarr"))
    parser.add_argument("--segmentation", type=Path, default=Path("results/synthetic/segmentation/test.zarr"))
    parser.add_argument("--frames", type=int, default=256, help="frames cut and stored")
    parser.add_argument("--size", type=int, default=64, help="cache resolution R, px")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rgb, segmentation, joints, frame_size = load_frames(args.dataset, args.segmentation, args.frames)
    boxes, affines = limb_patch_geometry(joints, frame_size, LimbPatchGeometry(cache_size=args.size))
    patches = benchmark_cropping(rgb, segmentation, affines, args.size, args.repeats)
    read_rates = benchmark_reading(patches, affines, boxes, frame_size, batches=16)
    train_rate = benchmark_training(args.size, steps=args.repeats)
    print("\nratios measured side by side:")
    for compressor, rate in read_rates.items():
        print(f"  store read ({compressor}) / CPU training step: {rate / train_rate:.1f}x "
              f"({rate:.0f} vs {train_rate:.1f} samples/s)")  # fmt: skip


if __name__ == "__main__":
    main()
