"""The learning curves of a baseline's fold models in one PNG: training (thin) and validation (thick) loss
per epoch, one colour per fold, the kept (best-validation) epoch ringed. Reads the CSVs that
``patchpose.fitting.write_learning_curve`` writes; drawn with OpenCV (no plotting library needed).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from patchpose.visualize import write_png

__all__ = ["read_curve", "plot_learning_curves"]

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 400, 70, 20, 40, 50


def read_curve(path: str | Path) -> dict[str, np.ndarray]:
    """``epoch``, ``train_loss``, ``val_loss`` (NaN where absent) arrays and ``best`` (bool) of one CSV."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        curve = {
            "epoch": np.array([int(r["epoch"]) for r in rows]),
            "train_loss": np.array([float(r["train_loss"]) for r in rows]),
            "val_loss": np.array([float(r["val_loss"]) if r["val_loss"] else np.nan for r in rows]),
            "best": np.array([r["best"] == "True" for r in rows]),
        }
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: not a learning-curve CSV (epoch, train_loss, val_loss, lr, best): {error}") from None
    if not rows:
        raise ValueError(f"{path}: learning curve without epochs")
    return curve


def _text(image, text, origin, scale=0.45):
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def plot_learning_curves(curve_paths: Sequence[str | Path], output_path: str | Path, title: str) -> None:
    """Draw every fold's curve (``curve_paths[f]`` = fold ``f``) on log-scaled loss axes; write a PNG."""
    curves = [read_curve(path) for path in curve_paths]
    losses = np.concatenate([np.r_[c["train_loss"], c["val_loss"]] for c in curves])
    losses = np.log10(np.clip(losses[np.isfinite(losses)], 1e-12, None))
    low, high = losses.min(), losses.max()
    low, high = (low - 0.5, high + 0.5) if high - low < 1e-9 else (low, high)
    last = max(int(c["epoch"].max()) for c in curves)
    image = np.full((HEIGHT, WIDTH, 3), 255, np.uint8)

    def point(epoch, loss):
        x = LEFT + (epoch - 1) / max(last - 1, 1) * (WIDTH - LEFT - RIGHT)
        y = TOP + (high - np.log10(max(loss, 1e-12))) / (high - low) * (HEIGHT - TOP - BOTTOM)
        return int(round(x)), int(round(y))

    cv2.rectangle(image, (LEFT, TOP), (WIDTH - RIGHT, HEIGHT - BOTTOM), (0, 0, 0), 1)
    for fraction in np.linspace(0, 1, 5):
        value = 10 ** (low + fraction * (high - low))
        _, y = point(1, value)
        cv2.line(image, (LEFT - 4, y), (LEFT, y), (0, 0, 0), 1)
        _text(image, f"{value:.3g}", (4, y + 4), 0.4)
    for epoch in sorted({1, last, *np.linspace(1, last, 6).round().astype(int).tolist()}):
        x, _ = point(epoch, 10**low)
        cv2.line(image, (x, HEIGHT - BOTTOM), (x, HEIGHT - BOTTOM + 4), (0, 0, 0), 1)
        _text(image, str(epoch), (x - 6, HEIGHT - BOTTOM + 18), 0.4)
    _text(image, "epoch", (WIDTH // 2 - 20, HEIGHT - 10))
    _text(image, f"{title}: loss (log scale); thin = train, thick = validation, o = kept epoch", (LEFT, 25))
    for fold, curve in enumerate(curves):
        colour = COLOURS[fold % len(COLOURS)]  # drawn into an RGB image
        for key, thickness in (("train_loss", 1), ("val_loss", 2)):
            points = [point(e, v) for e, v in zip(curve["epoch"], curve[key], strict=True) if np.isfinite(v)]
            if len(points) > 1:
                cv2.polylines(image, [np.array(points, np.int32)], False, colour, thickness, cv2.LINE_AA)
        for epoch, loss in zip(curve["epoch"][curve["best"]], curve["val_loss"][curve["best"]], strict=True):
            cv2.circle(image, point(epoch, loss), 6, colour, 2, cv2.LINE_AA)
        _text(image, f"fold {fold}", (WIDTH - RIGHT - 70, TOP + 18 + 16 * fold))
        cv2.line(image, (WIDTH - RIGHT - 95, TOP + 14 + 16 * fold), (WIDTH - RIGHT - 75, TOP + 14 + 16 * fold),
                 colour, 2)  # fmt: skip
    write_png(output_path, image)
