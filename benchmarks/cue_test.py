"""The cue test: does a single limb patch of the synthetic world show which end of the limb is nearer?

The synthetic world is rendered twice from the same seed, once with its local 3D cues (ring
textures, directional shading, the light's falloff with the distance from the camera: ``depth_falloff``
from config.yaml or ``--depth-falloff``) and once with all three switched off (flat silhouettes); the poses,
cameras, backgrounds and noise are the same. Both conditions render the training subjects (S1 S5 S6
S7 S8) and the test subjects (S9 S11) at the configured frame size. From every frame the eight arm and
leg limbs are cut the paper's way around their ground-truth 2D endpoints
(``patchpose.synthetic.cue_data``: 28 px per 256 px of frame, x 2.3, square, ``--size``² px).

Per condition a small CNN (about 0.3M parameters) is trained on four training subjects' patches (the
fifth, S8, is held out to select the epoch with the best validation balanced accuracy: the test
subjects never influence the model) to
predict the sign of the limb's depth difference: ``toward`` = the child joint (elbow, wrist, knee,
ankle) is nearer the camera centre than the parent (see cue_data's docstring). Its input is the RGB
patch plus two gaussian maps marking the child and the parent endpoint (ground-truth 2D, so the
network knows which end is which; the maps carry no depth). Training: Adam, batch 128, one-cycle
learning rate (10% warm-up to 2e-3, cosine decay), cross-entropy weighted by inverse class frequency
(the classes are unbalanced: about 27% toward, legs mostly away), horizontal flips of patch and
maps together (a mirror about a vertical plane through the camera keeps every distance to the
camera, so it keeps the label; the light, drawn symmetric about that plane, stays plausible). No vertical
flips or rotations: the light comes from above, and turning the patch upside down would invert what
shading means.

Reported on the test subjects, per elevation bin of the limb against the plane perpendicular to its
viewing ray (0-15, 15-30, 30-60, 60-90 deg) and overall: accuracy, balanced accuracy (mean of the
two classes' recalls: 50% is chance whatever the class balance), the class balance, sample counts;
and as a floor, the balanced accuracy of predicting each limb's majority class in training (what
knowing only which limb it is gives). Train accuracy (no augmentation) shows how much is memorised.

Run:  .venv/bin/python benchmarks/cue_test.py [--train-poses 50] [--test-poses 4] [--epochs 30]
                                              [--size 64] [--frame-size 128] [--seed 0] [--out DIR]
                                              [--depth-falloff K] [--outfits per_sequence] [--rule-only]

--train-poses is poses per training subject (x 5 subjects x 4 cameras frames, x 8 limbs patches),
--test-poses poses per test subject and action (x 15 actions x 2 subjects x 4 cameras frames). The
rendered stores go to --out (default: a temporary directory, deleted afterwards) and are reused when
present with the same world. A grid of example patches is written to --out as cue_examples.png.

Defaults (8000 train / 3840 test patches, 30 epochs) take about 7.5 minutes on 2 idle cores (data
30 s, about 200 s of training per condition), up to 11 minutes when the cores are shared. Deterministic
for a seed on one machine.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "2")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from patchpose.config import load_config  # noqa: E402
from patchpose.dataset_format import DatasetFormatError, open_dataset  # noqa: E402
from patchpose.skeleton import H36M  # noqa: E402
from patchpose.synthetic.cue_data import (  # noqa: E402
    ELEVATION_BINS,
    LimbDepthSamples,
    accuracy_by_elevation,
    balanced_accuracy,
    brighter_end_guesses,
    limb_depth_samples,
)
from patchpose.synthetic.params import world_params_for_split  # noqa: E402
from patchpose.synthetic.split import render_split  # noqa: E402
from patchpose.visualize import annotate, tile  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = {"cues on": True, "cues off": False}  # texture_cue, shading_cue and depth_falloff (on: --depth-falloff)
SPLITS = ("train", "test")
BATCH = 128
LEARNING_RATE = 2e-3
WEIGHT_DECAY = 1e-4

log = logging.getLogger("cue_test")


# ----------------------------------------------------------------------------------------------- data


def _world(args: argparse.Namespace, cues: bool) -> dict:
    world = dict(load_config(REPO / "config.yaml")["dataset"]["synthetic"])
    world.update(
        frame_size=args.frame_size,
        train_poses_per_subject=args.train_poses,
        test_poses_per_action=args.test_poses,
        texture_cue=cues,
        shading_cue=cues,
    )
    if not cues:
        world["depth_falloff"] = 0
    elif args.depth_falloff is not None:
        world["depth_falloff"] = args.depth_falloff
    if args.outfits is not None:
        world["outfits"] = args.outfits
    return world


def _store(out: Path, name: str, split: str, world: dict, seed: int, threads: int) -> Path:
    """Render ``split`` to ``out/name.zarr`` unless a complete store of the same world and seed is there."""
    params = world_params_for_split(world, split)
    path = out / f"{name}.zarr"
    if path.exists():
        try:
            attrs = open_dataset(path).attrs
        except DatasetFormatError as error:
            raise SystemExit(
                f"{path} exists but is not a valid store ({error}); remove it or pick another --out"
            ) from None
        if attrs.get("seed") != seed or attrs.get("world") != json.loads(json.dumps(params)):
            raise SystemExit(f"{path} was rendered from another world or seed; remove it or pick another --out")
        log.info("reusing %s", path)
        return path
    started = time.perf_counter()
    frames = render_split(path, out / f"{name}.png", split, params, seed, threads=threads)
    log.info("rendered %s: %d frames in %.0f s", path, frames, time.perf_counter() - started)
    return path


def _endpoint_maps(endpoints: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """(B, 2, 2) patch px (child, parent) -> (B, 2, size, size) gaussian bumps, peak 1."""
    grid = torch.arange(size, dtype=torch.float32)
    dx = grid[None, None, None, :] - endpoints[:, :, 0, None, None]
    dy = grid[None, None, :, None] - endpoints[:, :, 1, None, None]
    return torch.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))


def _inputs(patches: torch.Tensor, endpoints: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
    """uint8 (B, H, W, 3) patches + endpoints -> (B, 5, H, W) float network input, channels-last."""
    size = patches.shape[1]
    image = patches.permute(0, 3, 1, 2).float() / 255.0 - 0.5
    endpoints = endpoints.float().clone()
    if flip is not None and flip.any():
        image[flip] = image[flip].flip(-1)
        endpoints[flip, :, 0] = (size - 1) - endpoints[flip, :, 0]
    maps = _endpoint_maps(endpoints, size, sigma=size / 32)
    return torch.cat([image, maps], dim=1).contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------- model


def _block(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def make_model() -> nn.Module:
    """A small CNN for 64² (or any multiple of 16) 5-channel patches -> 2 logits (away, toward).
    Two stride-2 convolutions take 64² to 16², then conv + max-pool stages to 4², a 2x2 average pool
    and a two-layer head. 284k parameters."""
    return nn.Sequential(
        *_block(5, 32, 2),
        *_block(32, 32, 2),
        *_block(32, 64),
        nn.MaxPool2d(2),
        *_block(64, 128),
        nn.MaxPool2d(2),
        *_block(128, 128),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(512, 64),
        nn.ReLU(inplace=True),
        nn.Dropout(0.3),
        nn.Linear(64, 2),
    )


@torch.no_grad()
def predict(model: nn.Module, samples: LimbDepthSamples) -> np.ndarray:
    """(M,) bool predicted toward."""
    model.eval()
    patches, endpoints = torch.from_numpy(samples.patches), torch.from_numpy(samples.endpoints)
    out = [
        model(_inputs(patches[i : i + 512], endpoints[i : i + 512], None)).argmax(1)
        for i in range(0, len(patches), 512)
    ]
    return torch.cat(out).numpy().astype(bool)


def subset(samples: LimbDepthSamples, mask: np.ndarray) -> LimbDepthSamples:
    """The samples where ``mask`` (M,) is true."""
    return LimbDepthSamples(*(field[mask] for field in samples))


def train(
    train_set: LimbDepthSamples, validation_set: LimbDepthSamples, test_set: LimbDepthSamples, epochs: int, seed: int
):
    """Train a fresh model (seeded) on ``train_set``; keep the weights of the epoch with the best
    balanced accuracy on ``validation_set`` (a held-out TRAINING subject: model selection never sees the
    test subjects). Returns the selected model, its epoch, and the test balanced accuracy every 5 epochs
    as ``{epoch: accuracy}`` (watched only, never used to pick anything)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = make_model().to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    steps_per_epoch = -(-len(train_set.toward) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=LEARNING_RATE, total_steps=epochs * steps_per_epoch, pct_start=0.1
    )
    patches, endpoints = torch.from_numpy(train_set.patches), torch.from_numpy(train_set.endpoints)
    labels = torch.from_numpy(train_set.toward.astype(np.int64))
    history = {}
    best_validation, best_epoch, best_state = -1.0, 0, None
    # inverse-frequency class weights: the loss aims at balanced accuracy, not at the majority class
    counts = torch.bincount(labels, minlength=2).float().clamp(min=1)
    class_weights = counts.sum() / (2 * counts)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        flips = torch.rand(len(labels), generator=generator) < 0.5
        total_loss, correct = 0.0, 0
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            logits = model(_inputs(patches[rows], endpoints[rows], flips[rows]))
            loss = nn.functional.cross_entropy(logits, labels[rows], weight=class_weights)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += float(loss.detach()) * len(rows)
            correct += int((logits.argmax(1) == labels[rows]).sum())
        validation = balanced_accuracy(predict(model, validation_set), validation_set.toward)
        if validation > best_validation:
            best_validation, best_epoch = validation, epoch + 1
            best_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        if epoch % 5 == 4 or epoch == epochs - 1:
            test_bal = history[epoch + 1] = balanced_accuracy(predict(model, test_set), test_set.toward)
            log.info("  epoch %2d: weighted loss %.3f, train (augmented) acc %.1f%%, test balanced acc %.1f%%",
                     epoch + 1, total_loss / len(labels), 100 * correct / len(labels), 100 * test_bal)  # fmt: skip
    model.load_state_dict(best_state)
    log.info("  selected epoch %d (validation balanced acc %.1f%%)", best_epoch, 100 * best_validation)
    return model, best_epoch, history


# -------------------------------------------------------------------------------------------- reports


def limb_prior(train_set: LimbDepthSamples, test_set: LimbDepthSamples) -> np.ndarray:
    """Predict each test sample as its limb's majority class in training."""
    majority = {int(k): train_set.toward[train_set.limb == k].mean() >= 0.5 for k in np.unique(train_set.limb)}
    return np.array([majority.get(int(k), True) for k in test_set.limb])


def _pct(value: float) -> str:
    return "   -" if np.isnan(value) else f"{100 * value:5.1f}"


def print_table(test_set: LimbDepthSamples, predictions: dict[str, np.ndarray], prior: np.ndarray) -> None:
    names = list(predictions)
    stats = {name: accuracy_by_elevation(p, test_set.toward, test_set.elevation_deg) for name, p in predictions.items()}
    prior_stats = accuracy_by_elevation(prior, test_set.toward, test_set.elevation_deg)
    header = f"{'elevation':>10} {'n':>6} {'toward%':>8}"
    for name in names:
        header += f" | {name + ' acc':>13} {'bal.acc':>7}"
    header += f" | {'limb-prior bal.acc':>18}"
    print(header)
    print("-" * len(header))
    for index, (row, prior_row) in enumerate(zip(zip(*stats.values(), strict=True), prior_stats, strict=True)):
        first = row[0]
        label = "all" if index == len(ELEVATION_BINS) - 1 else f"{first.low:.0f}-{first.high:.0f}"
        line = f"{label:>10} {first.count:6d} {_pct(first.toward_fraction):>8}"
        for s in row:
            line += f" | {_pct(s.accuracy):>13} {_pct(s.balanced_accuracy):>7}"
        line += f" | {_pct(prior_row.balanced_accuracy):>18}"
        print(line)
    print(f"{'chance':>10} {'':6} {'':8}" + "".join(f" | {'':>13} {50.0:7.1f}" for _ in names) + f" | {50.0:18.1f}")


def rule_guesses(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The fixed brighter-end rule on every arm/leg limb of a store, in ``limb_depth_samples``' order:
    guesses (M,) and valid (M,) bool (``cue_data.brighter_end_guesses``: ground-truth part masks)."""
    store = open_dataset(path)
    guesses, valid = [], []
    for start in range(0, store.num_frames, 256):
        rows = list(range(start, min(start + 256, store.num_frames)))
        g, v = brighter_end_guesses(store.read_frames(rows), store.read_part_labels(rows), store.joints_2d[rows])
        guesses.append(g.reshape(-1))
        valid.append(v.reshape(-1))
    return np.concatenate(guesses), np.concatenate(valid)


def rule_table(test_set: LimbDepthSamples, rules: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    """Per elevation bin: the share of limbs the rule can read (both ends visible) and its balanced
    accuracy on them, per condition."""
    header = f"{'elevation':>10} {'n':>6}" + "".join(f" | {name + ' read%':>14} {'bal.acc':>7}" for name in rules)
    print(header)
    print("-" * len(header))
    every = accuracy_by_elevation(test_set.toward, test_set.toward, test_set.elevation_deg)  # counts per bin
    read = [accuracy_by_elevation(g[v], test_set.toward[v], test_set.elevation_deg[v]) for g, v in rules.values()]
    for index, row in enumerate(every):
        label = "all" if index == len(every) - 1 else f"{row.low:.0f}-{row.high:.0f}"
        line = f"{label:>10} {row.count:6d}"
        for stats in read:
            line += f" | {_pct(stats[index].count / max(row.count, 1)):>14} {_pct(stats[index].balanced_accuracy):>7}"
        print(line)


def per_limb_table(test_set: LimbDepthSamples, predictions: dict[str, np.ndarray]) -> None:
    print(f"{'limb':>28} {'n':>5} {'toward%':>8}" + "".join(f" {name + ' bal.acc':>17}" for name in predictions))
    for k in np.unique(test_set.limb):
        rows = test_set.limb == k
        line = f"{H36M.limb_names[k]:>28} {rows.sum():5d} {_pct(test_set.toward[rows].mean()):>8}"
        for p in predictions.values():
            line += f" {_pct(balanced_accuracy(p[rows], test_set.toward[rows])):>17}"
        print(line)


def example_grid(path: Path, sets: dict[str, LimbDepthSamples], seed: int, per_row: int = 10) -> None:
    """Rows: (condition, toward/away) at elevation > 45 deg, the same samples in both conditions; the
    child endpoint marked red, the parent blue."""
    first = next(iter(sets.values()))
    rng = np.random.default_rng(seed)
    cells = []
    for toward in (True, False):
        pool = np.flatnonzero((first.toward == toward) & (first.elevation_deg > 45))
        chosen = rng.choice(pool, size=min(per_row, len(pool)), replace=False) if len(pool) else []
        for name, samples in sets.items():
            for i in chosen:
                patch = cv2.resize(samples.patches[i], (128, 128), interpolation=cv2.INTER_NEAREST)
                scale = 128 / samples.patches.shape[1]
                for (x, y), colour in zip(samples.endpoints[i], ((255, 0, 0), (0, 96, 255)), strict=True):
                    centre = (int(round((x + 0.5) * scale - 0.5)), int(round((y + 0.5) * scale - 0.5)))
                    cv2.circle(patch, centre, 3, colour, 1, cv2.LINE_AA)
                text = f"{name} {'T' if toward else 'A'} {samples.elevation_deg[i]:.0f}"
                cells.append(annotate(patch, text))
            cells += [np.zeros((128, 128, 3), np.uint8)] * (per_row - len(chosen))
    sheet = tile(cells, columns=per_row)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


# ----------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-poses", type=int, default=50, help="poses per training subject (default 50)")
    parser.add_argument("--test-poses", type=int, default=4, help="poses per test subject and action (default 4)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--size", type=int, default=64, help="patch side, px (a multiple of 16)")
    parser.add_argument("--frame-size", type=int, default=128, help="rendered crop side, px")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="store directory (default: a temporary one)")
    parser.add_argument("--rule-only", action="store_true", help="render and print the fixed rule's table; no training")
    parser.add_argument(
        "--depth-falloff", type=float, default=None,
        help="the world's depth_falloff with the cues on (default: config.yaml's; 0: texture and shading only)",
    )  # fmt: skip
    parser.add_argument(
        "--outfits", choices=("per_subject", "per_sequence"), default=None,
        help="the world's outfits in both conditions (default: config.yaml's, one per subject)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.size % 16:
        parser.error("--size must be a multiple of 16")
    if args.depth_falloff is not None and not 0 <= args.depth_falloff <= 8:
        parser.error("--depth-falloff must lie in 0..8")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    started = time.perf_counter()

    temporary = args.out is None
    out = Path(tempfile.mkdtemp(prefix="cue_test_")) if temporary else args.out
    out.mkdir(parents=True, exist_ok=True)
    try:
        samples: dict[str, dict[str, LimbDepthSamples]] = {}
        rules: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for condition, cues in CONDITIONS.items():
            world = _world(args, cues)
            tag = f"{'on' if cues else 'off'}_k{world['depth_falloff']:g}_f{args.frame_size}"
            tag += f"_tr{args.train_poses}_te{args.test_poses}_s{args.seed}"
            if world.get("outfits", "per_subject") != "per_subject":
                tag += f"_{world['outfits']}"
            samples[condition] = {}
            for split in SPLITS:
                path = _store(out, f"{split}_{tag}", split, world, args.seed, args.threads)
                split_samples = limb_depth_samples(path, out_size=args.size)
                if split == "test":
                    rules[condition] = rule_guesses(path)
                if split == "train":  # hold out the last training subject for model selection
                    subject = open_dataset(path).subject_names()[split_samples.frame]
                    held_out = subject == world["train_subjects"][-1]
                    samples[condition]["validation"] = subset(split_samples, held_out)
                    split_samples = subset(split_samples, ~held_out)
                samples[condition][split] = split_samples
        render_s = time.perf_counter() - started
        first = samples["cues on"]
        for split in SPLITS:  # same seed -> same poses: the conditions differ only in their pixels
            assert np.array_equal(first[split].toward, samples["cues off"][split].toward)
        example_grid(out / "cue_examples.png", {c: samples[c]["test"] for c in CONDITIONS}, args.seed)
        print()
        print("A fixed rule, no learning: the brighter end of the limb (its own ground-truth part pixels) is the")
        print("nearer one. Test subjects, by elevation (deg); read% = limbs with both ends visible:")
        rule_table(first["test"], rules)
        if args.rule_only:
            return

        predictions, train_accuracy, train_seconds, histories, selected = {}, {}, {}, {}, {}
        for condition in CONDITIONS:
            log.info("training on %s (%d train / %d test patches)", condition,
                     len(samples[condition]["train"].toward), len(samples[condition]["test"].toward))  # fmt: skip
            tick = time.perf_counter()
            model, selected[condition], histories[condition] = train(
                samples[condition]["train"],
                samples[condition]["validation"],
                samples[condition]["test"],
                args.epochs,
                args.seed,
            )
            train_seconds[condition] = time.perf_counter() - tick
            predictions[condition] = predict(model, samples[condition]["test"])
            train_set = samples[condition]["train"]
            train_pred = predict(model, train_set)
            train_accuracy[condition] = (
                (train_pred == train_set.toward).mean(),
                balanced_accuracy(train_pred, train_set.toward),
            )
        prior = limb_prior(first["train"], first["test"])

        test, train_set = first["test"], first["train"]
        params = sum(p.numel() for p in make_model().parameters())
        print()
        print(
            f"Cue test: sign of the limb depth difference from one {args.size}x{args.size} arm/leg patch "
            f"(frames {args.frame_size}px, seed {args.seed}, {args.epochs} epochs, CNN {params / 1e6:.2f}M params)"
        )
        validation = first["validation"]
        print(f"train: {len(train_set.toward)} patches of S1 S5 S6 S7, toward {100 * train_set.toward.mean():.1f}%; "
              f"validation (model selection): {len(validation.toward)} patches of S8; "
              f"test: {len(test.toward)} patches of S9 S11, toward {100 * test.toward.mean():.1f}%")  # fmt: skip
        print("selected epochs (best validation balanced accuracy): "
              + ", ".join(f"{c} {e}" for c, e in selected.items()))  # fmt: skip
        print(f"toward = child nearer the camera centre; it agrees with 'child z < parent z' on "
              f"{100 * (test.toward == test.toward_z).mean():.1f}% of test patches")  # fmt: skip
        print()
        print("Test subjects, by elevation of the limb out of the plane perpendicular to its viewing ray (deg):")
        print_table(test, predictions, prior)
        print()
        print("Train subjects S1 S5 S6 S7, selected model (no augmentation):")
        for condition, (acc, bal) in train_accuracy.items():
            print(f"  {condition:>8}: accuracy {100 * acc:.1f}%, balanced {100 * bal:.1f}%")
        print()
        print("Test balanced accuracy during training (epoch: %):")
        for condition, history in histories.items():
            print(f"  {condition:>8}: " + ", ".join(f"{e}: {100 * a:.1f}" for e, a in history.items()))
        print()
        print("Test subjects, per limb:")
        per_limb_table(test, predictions)
        print()
        total = time.perf_counter() - started
        print(f"time: data {render_s:.0f} s (render + cut), training "
              + ", ".join(f"{c} {s:.0f} s" for c, s in train_seconds.items()) + f", total {total:.0f} s")  # fmt: skip
        if not temporary:
            print(f"example patches: {out / 'cue_examples.png'}")
    finally:
        if temporary:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
