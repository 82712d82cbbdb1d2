"""What the synthetic world looks like: clothing materials, backgrounds, per-frame lighting.

Colours are display RGB floats in [0, 1] (no gamma is applied). A ``Material`` is evaluated on hit points
expressed in a primitive's texture frame (see ``primitives.AxisFrame``): its bands
(rings or stripes) are a function of a coordinate in mm along a frame direction, so
on a limb pointing toward or away from the camera rings project to ellipses that
bend one way or the other. Limb ends are never given a colour of their own: a
garment ends only where the next garment (or skin) begins, as clothing does.
Left and right limbs always share a material.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

__all__ = ["Material", "Appearance", "Lighting", "make_appearance", "sample_lighting", "make_background"]

KINDS = ("plain", "rings", "stripes", "head")

# Anchor colours that clothing (and background clutter) is drawn around, RGB in [0, 1].
_CLOTHING = np.array(
    [
        (0.08, 0.08, 0.09), (0.9, 0.9, 0.88), (0.5, 0.5, 0.52), (0.12, 0.16, 0.35), (0.2, 0.35, 0.65),
        (0.3, 0.4, 0.55), (0.7, 0.12, 0.12), (0.4, 0.08, 0.12), (0.15, 0.45, 0.2), (0.35, 0.38, 0.18),
        (0.75, 0.68, 0.48), (0.85, 0.8, 0.68), (0.4, 0.26, 0.15), (0.9, 0.78, 0.2), (0.9, 0.45, 0.12),
        (0.4, 0.2, 0.5), (0.9, 0.55, 0.65), (0.1, 0.5, 0.5),
    ]
)  # fmt: skip
_SKIN = np.array([(0.96, 0.8, 0.69), (0.87, 0.67, 0.52), (0.7, 0.5, 0.35), (0.45, 0.3, 0.2), (0.28, 0.18, 0.12)])
_HAIR = np.array([(0.05, 0.04, 0.04), (0.25, 0.15, 0.08), (0.55, 0.38, 0.2), (0.85, 0.72, 0.45), (0.6, 0.6, 0.6)])


def _colour(rng: np.random.Generator, anchors: np.ndarray = _CLOTHING, jitter: float = 0.06) -> np.ndarray:
    """One colour near a random anchor: (3,) float in [0, 1]."""
    base = anchors[rng.integers(len(anchors))]
    return np.clip(base * rng.uniform(0.8, 1.15) + rng.normal(0.0, jitter, 3), 0.0, 1.0)


def _f3(value, name: str) -> np.ndarray:
    array = np.array(value, dtype=np.float64)  # a copy: the caller's array stays writeable
    if array.shape != (3,) or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be 3 finite numbers, got {value!r}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Material:
    """A surface's albedo as a function of its texture coordinate.

    kind: "plain"; "rings" (bands across the frame axis: coordinate = (p - origin) . axis, mm);
        "stripes" (bands across the frame's lateral direction axis x ref, mm); "head" (skin face,
        ``stripe_colour`` hair on top and back; coordinates normalised by the frame length).
    colour / stripe_colour: (3,) RGB in [0, 1]; bands mix ``stripe_colour`` in with weight ``contrast``.
    period_mm, phase (rad): band period and offset; contrast in [0, 1].
    band: (lo, hi) fractions of the frame length along its axis where this garment covers the
        surface; outside it the surface is the untextured ``outside_colour`` (e.g. skin past a short sleeve).
    hairline: for "head", the normalised height above which the head is hair.
    print_colour: (3,) RGB of a print on the garment's front (None: none): the surface with a positive coordinate
        along the frame's ref (its front), between ``print_region``'s (lo, hi) fractions of the frame length
        along its axis and within its third value times the frame length of the axis sideways.
    """

    kind: str = "plain"
    colour: np.ndarray = (0.5, 0.5, 0.5)
    stripe_colour: np.ndarray = (0.0, 0.0, 0.0)
    period_mm: float = 40.0
    contrast: float = 0.0
    phase: float = 0.0
    band: tuple[float, float] = (-np.inf, np.inf)
    outside_colour: np.ndarray = (0.5, 0.5, 0.5)
    hairline: float = 0.2
    print_colour: np.ndarray | None = None
    print_region: tuple[float, float, float] = (0.45, 0.8, 0.22)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Material.kind must be one of {KINDS}, got {self.kind!r}")
        names = ("colour", "stripe_colour", "outside_colour") + (() if self.print_colour is None else ("print_colour",))
        for name in names:
            value = _f3(getattr(self, name), f"Material.{name}")
            if np.any(value < 0) or np.any(value > 1):
                raise ValueError(f"Material.{name} must lie in [0, 1], got {value}")
            object.__setattr__(self, name, value)
        if not (np.isfinite(self.period_mm) and self.period_mm > 0):
            raise ValueError(f"Material.period_mm must be > 0 mm, got {self.period_mm}")
        if not 0.0 <= self.contrast <= 1.0:
            raise ValueError(f"Material.contrast must lie in [0, 1], got {self.contrast}")
        if not self.band[0] < self.band[1]:
            raise ValueError(f"Material.band must be (lo, hi) with lo < hi, got {self.band}")
        lo, hi, half = self.print_region
        if not (lo < hi and half > 0):
            raise ValueError(f"Material.print_region must be (lo, hi, half width) with lo < hi, half width > 0, "
                             f"got {self.print_region}")  # fmt: skip

    def albedo(self, along_mm: np.ndarray, lateral_mm: np.ndarray, front_mm: np.ndarray, length_mm: float, fade):
        """Albedo at hit points given in texture-frame coordinates.

        along_mm / lateral_mm / front_mm: (N,) coordinates in mm along the frame's axis, axis x ref and ref.
        length_mm: the frame length. fade: (N,) in [0, 1] or scalar, 1 = full band contrast, 0 = the
        bands' mean colour (used against aliasing where a band period spans under ~4 pixels).
        Returns (N, 3) float RGB in [0, 1].
        """
        n = along_mm.shape[0]
        out = np.empty((n, 3))
        if self.kind == "head":
            u, v = along_mm / length_mm, front_mm / length_mm  # up and forward, in head radii
            # hair above the hairline, and at the back reaching lower the further back
            hair = (u > self.hairline) | ((v < -0.15) & (u > -0.55 + 0.6 * np.clip(v + 0.15, -1, 0)))
            out[:] = self.colour
            out[hair] = self.stripe_colour
            return out
        if self.kind == "plain" or self.contrast == 0.0:
            out[:] = self.colour
        else:
            coord = along_mm if self.kind == "rings" else lateral_mm
            wave = np.cos(coord * (2.0 * np.pi / self.period_mm) + self.phase)
            weight = self.contrast * (0.5 + 0.5 * np.asarray(fade) * np.tanh(3.0 * wave))
            out[:] = self.colour
            out += weight[:, None] * (self.stripe_colour - self.colour)
        if np.isfinite(self.band[0]) or np.isfinite(self.band[1]):
            frac = along_mm / length_mm
            out[(frac < self.band[0]) | (frac > self.band[1])] = self.outside_colour
        if self.print_colour is not None:
            lo, hi, half = self.print_region
            frac = along_mm / length_mm
            inside = (front_mm > 0) & (frac >= lo) & (frac <= hi) & (np.abs(lateral_mm) <= half * length_mm)
            out[inside] = self.print_colour
        return out


@dataclass(frozen=True)
class Appearance:
    """One subject's clothing: a material per body slot (left and right share each one).

    Slots: torso, waist (trouser top at the hips), upper_arm, lower_arm, hand, neck, head,
    upper_leg, lower_leg, foot. ``sleeves`` is "short" or "long"; ``shorts`` whether the legs are bare.
    """

    materials: dict
    sleeves: str
    shorts: bool

    SLOTS = ("torso", "waist", "upper_arm", "lower_arm", "hand", "neck", "head", "upper_leg", "lower_leg", "foot")

    def __post_init__(self) -> None:
        missing = set(self.SLOTS) - set(self.materials)
        if missing:
            raise ValueError(f"Appearance lacks materials for slots {sorted(missing)}")

    def __getitem__(self, slot: str) -> Material:
        return self.materials[slot]


def _garment(rng, kind, colour, period_range_mm, contrast_range, **extra) -> Material:
    """A textured garment: bands of a darker/lighter shade or of a second clothing colour."""
    shade = colour * 0.35 if colour.mean() > 0.4 else colour + (1.0 - colour) * 0.65
    stripe = np.clip(shade, 0.0, 1.0) if rng.random() < 0.5 else _colour(rng)
    return Material(
        kind=kind,
        colour=colour,
        stripe_colour=stripe,
        period_mm=float(rng.uniform(*period_range_mm)),
        contrast=float(rng.uniform(*contrast_range)),
        phase=float(rng.uniform(0.0, 2.0 * np.pi)),
        **extra,
    )


def make_appearance(
    rng: np.random.Generator,
    *,
    period_range_mm: tuple[float, float] = (60.0, 110.0),
    contrast_range: tuple[float, float] = (0.5, 0.9),
    short_sleeve_probability: float = 0.2,
    shorts_probability: float = 0.15,
    glove_probability: float = 0.05,
    torso_patterns: tuple[str, ...] = ("plain", "rings", "stripes"),
    front_print: bool = False,
) -> Appearance:
    """Draw one subject's clothing. Limbs get ring textures (period in ``period_range_mm`` along
    the limb axis, contrast in ``contrast_range``, random phase; the default periods span 4-7 px at
    the default 128 px crops, about 16 mm/px, so that rings stay resolved until foreshortened); the torso a pattern from
    ``torso_patterns`` (plain, horizontal rings, vertical stripes). With ``front_print`` the top gets a print on
    its chest's front (``Material.print_colour``) in a colour that stands out from the top's, drawn after every
    other draw, so the rest of the outfit is the same with and without it. Deterministic given ``rng``.
    """
    if not (0 < period_range_mm[0] <= period_range_mm[1]):
        raise ValueError(f"period_range_mm must be 0 < lo <= hi, got {period_range_mm}")
    if not (0 <= contrast_range[0] <= contrast_range[1] <= 1):
        raise ValueError(f"contrast_range must be 0 <= lo <= hi <= 1, got {contrast_range}")
    if not torso_patterns or set(torso_patterns) - {"plain", "rings", "stripes"}:
        raise ValueError(f"torso_patterns must be a non-empty subset of plain/rings/stripes, got {torso_patterns}")
    for name, p in (("short_sleeve", short_sleeve_probability), ("shorts", shorts_probability)):
        if not 0 <= p <= 1:
            raise ValueError(f"{name}_probability must lie in [0, 1], got {p}")
    skin = np.clip(_SKIN[rng.integers(len(_SKIN))] * rng.uniform(0.92, 1.05), 0, 1)
    hair = np.clip(_HAIR[rng.integers(len(_HAIR))] * rng.uniform(0.85, 1.15), 0, 1)
    top, trousers, shoes = _colour(rng), _colour(rng), _colour(rng) * 0.6
    sleeve = top if rng.random() < 0.7 else _colour(rng)
    short_sleeves = bool(rng.random() < short_sleeve_probability)
    shorts = bool(rng.random() < shorts_probability)
    rings = dict(period_range_mm=period_range_mm, contrast_range=contrast_range)

    pattern = torso_patterns[rng.integers(len(torso_patterns))]
    waist = float(rng.uniform(0.1, 0.25))  # trouser top, fraction of pelvis -> thorax
    torso = _garment(rng, pattern, top, (40.0, 90.0), contrast_range, band=(waist, np.inf), outside_colour=trousers)
    sleeve_material = _garment(rng, "rings", sleeve, **rings)
    if short_sleeves:
        upper_arm = replace(sleeve_material, band=(-np.inf, rng.uniform(0.3, 0.7)), outside_colour=skin)
        lower_arm = Material(colour=skin)
    else:
        upper_arm = sleeve_material
        lower_arm = replace(sleeve_material, band=(-np.inf, rng.uniform(0.88, 1.05)), outside_colour=skin)
    leg = _garment(rng, "rings", trousers, **rings)
    if shorts:
        upper_leg = replace(leg, band=(-np.inf, rng.uniform(0.3, 0.7)), outside_colour=skin)
        lower_leg = Material(colour=skin)
    else:
        upper_leg = lower_leg = leg
    hand = Material(colour=_colour(rng) if rng.random() < glove_probability else skin)
    materials = {
        "torso": torso,
        "waist": Material(colour=trousers),
        "upper_arm": upper_arm,
        "lower_arm": lower_arm,
        "hand": hand,
        "neck": Material(colour=skin),
        "head": Material(kind="head", colour=skin, stripe_colour=hair, hairline=float(rng.uniform(0.0, 0.4))),
        "upper_leg": upper_leg,
        "lower_leg": lower_leg,
        "foot": Material(colour=shoes),
    }
    if front_print:
        colour = _colour(rng)
        if np.abs(colour - top).mean() < 0.25:  # too near the top's colour: its light or dark shade instead
            colour = top * 0.3 if top.mean() > 0.4 else top + (1.0 - top) * 0.7
        materials["torso"] = replace(torso, print_colour=np.clip(colour, 0.0, 1.0))
    return Appearance(materials=materials, sleeves="short" if short_sleeves else "long", shorts=shorts)


@dataclass(frozen=True)
class Lighting:
    """Per-frame scene nuisances.

    direction: (3,) unit vector from the surface toward a directional light, camera frame.
    ambient, diffuse: shading = ambient + diffuse * max(0, n . direction) (flat: ambient + 0.6 diffuse).
    dim: global brightness factor (1 normal, < 1 a dim frame). noise_sigma: sensor noise, 8-bit units.
    falloff, reference_mm: the light on a surface point at distance r (mm) from the camera centre is
    scaled by (reference_mm / r) ** falloff: the lights stand by the camera and the exposure is set for
    a point ``reference_mm`` away (the subject). 0 (default): no falloff; 2: a point lamp at the camera.
    The background is a picture and is not scaled.
    """

    direction: np.ndarray
    ambient: float = 0.35
    diffuse: float = 0.7
    dim: float = 1.0
    noise_sigma: float = 0.0
    falloff: float = 0.0
    reference_mm: float = 5000.0

    def __post_init__(self) -> None:
        direction = _f3(self.direction, "Lighting.direction")
        if abs(np.linalg.norm(direction) - 1.0) > 1e-6:
            raise ValueError(f"Lighting.direction must be a unit vector, got norm {np.linalg.norm(direction)}")
        object.__setattr__(self, "direction", direction)
        if min(self.ambient, self.diffuse, self.noise_sigma) < 0 or not 0 < self.dim <= 1:
            raise ValueError("Lighting needs ambient, diffuse, noise_sigma >= 0 and 0 < dim <= 1")
        finite = np.isfinite(self.falloff) and np.isfinite(self.reference_mm)
        if not (finite and self.falloff >= 0 and self.reference_mm > 0):
            raise ValueError(
                f"Lighting needs a finite falloff >= 0 and reference_mm > 0, got {self.falloff}, {self.reference_mm}"
            )


def sample_lighting(
    rng: np.random.Generator,
    *,
    up=(0.0, -1.0, 0.0),
    elevation_deg: float = 35.0,
    cone_half_angle_deg: float = 40.0,
    ambient_range: tuple[float, float] = (0.25, 0.45),
    diffuse_range: tuple[float, float] = (0.55, 0.8),
    dim_fraction: float = 0.15,
    dim_range: tuple[float, float] = (0.3, 0.6),
    noise_sigma_range: tuple[float, float] = (1.0, 5.0),
) -> Lighting:
    """Draw a frame's lighting: a directional light uniform within a cone of ``cone_half_angle_deg``
    about the direction ``elevation_deg`` above the camera's front (-z), "above" meaning ``up``
    (the world's up in the camera frame, default image-up -y); ambient/diffuse terms; a dim factor
    in ``dim_range`` for a ``dim_fraction`` of frames; gaussian sensor noise sigma (8-bit units).
    """
    if not 0 <= dim_fraction <= 1:
        raise ValueError(f"dim_fraction must lie in [0, 1], got {dim_fraction}")
    front = np.array([0.0, 0.0, -1.0])
    up = _f3(up, "up")
    up_perp = up - (up @ front) * front
    if np.linalg.norm(up_perp) < 1e-3:
        raise ValueError(f"up must not be parallel to the viewing axis, got {up}")
    up_perp /= np.linalg.norm(up_perp)
    elevation = np.radians(elevation_deg)
    centre = np.cos(elevation) * front + np.sin(elevation) * up_perp
    # uniform over the spherical cap about ``centre``
    cos_theta = rng.uniform(np.cos(np.radians(cone_half_angle_deg)), 1.0)
    phi = rng.uniform(0.0, 2.0 * np.pi)
    e1 = up_perp - (up_perp @ centre) * centre
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(centre, e1)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    direction = cos_theta * centre + sin_theta * (np.cos(phi) * e1 + np.sin(phi) * e2)
    dim = float(rng.uniform(*dim_range)) if rng.random() < dim_fraction else 1.0
    return Lighting(
        direction=direction / np.linalg.norm(direction),
        ambient=float(rng.uniform(*ambient_range)),
        diffuse=float(rng.uniform(*diffuse_range)),
        dim=dim,
        noise_sigma=float(rng.uniform(*noise_sigma_range)),
    )


def make_background(
    height: int, width: int, rng: np.random.Generator, *, n_shapes: tuple[int, int] = (10, 25), blur_sigma: float = 0.7
) -> np.ndarray:
    """A cluttered room: a wall and a floor gradient below a random horizon, then rectangles,
    ellipses, stripe bands and limb-like rounded bars in clothing-like colours.

    Returns (height, width, 3) uint8 RGB. Deterministic given ``rng``.
    """
    if height < 1 or width < 1:
        raise ValueError(f"background size must be positive, got {height}x{width}")
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    wall, floor = _colour(rng) * 0.8 + 0.1, _colour(rng) * 0.7
    horizon = rng.uniform(0.35, 0.75)
    image = np.where(rows < horizon, wall * (0.85 + 0.25 * rows), floor * (0.7 + 0.5 * (rows - horizon)))
    image = np.ascontiguousarray(np.broadcast_to(image, (height, width, 3)) * 255.0)
    scale = max(height, width)
    for _ in range(int(rng.integers(n_shapes[0], n_shapes[1] + 1))):
        colour = tuple(float(c) for c in _colour(rng) * 255.0)
        kind = rng.integers(4)
        cx, cy = rng.uniform(-0.1, 1.1) * width, rng.uniform(-0.1, 1.1) * height
        size = rng.uniform(0.04, 0.35) * scale
        if kind == 0:
            w, h = size, size * rng.uniform(0.2, 2.0)
            cv2.rectangle(image, (int(cx - w / 2), int(cy - h / 2)), (int(cx + w / 2), int(cy + h / 2)), colour, -1)
        elif kind == 1:
            axes = (max(1, int(size / 2)), max(1, int(size / 2 * rng.uniform(0.3, 1.0))))
            cv2.ellipse(image, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        elif kind == 2:  # a band of parallel stripes
            angle, gap = rng.uniform(0, np.pi), max(2.0, rng.uniform(0.01, 0.05) * scale)
            d = np.array([np.cos(angle), np.sin(angle)])
            for k in range(int(rng.integers(3, 9))):
                o = np.array([cx, cy]) + np.array([-d[1], d[0]]) * k * gap
                p0, p1 = o - d * size, o + d * size
                cv2.line(image, _pt(p0), _pt(p1), colour, max(1, int(gap / 3)))
        else:  # a limb-like rounded bar, half of them ringed like a sleeve
            angle, thick = rng.uniform(0, np.pi), max(2, int(rng.uniform(0.02, 0.06) * scale))
            d = np.array([np.cos(angle), np.sin(angle)])
            p0, p1 = np.array([cx, cy]) - d * size / 2, np.array([cx, cy]) + d * size / 2
            cv2.line(image, _pt(p0), _pt(p1), colour, thick, lineType=cv2.LINE_AA)
            if rng.random() < 0.5:
                ring, gap = tuple(float(c) for c in _colour(rng) * 255.0), rng.uniform(0.3, 0.8) * thick
                for s in np.arange(gap / 2, size, gap):
                    o, n = p0 + d * s, np.array([-d[1], d[0]]) * thick * 0.45
                    cv2.line(image, _pt(o - n), _pt(o + n), ring, max(1, int(gap / 2)), lineType=cv2.LINE_AA)
    if blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
    return np.clip(image + rng.normal(0.0, 2.0, image.shape), 0, 255).astype(np.uint8)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0])), int(round(p[1]))
