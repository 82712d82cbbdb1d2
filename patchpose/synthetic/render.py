"""A z-buffered, vectorised numpy ray-caster for the synthetic world.

``render`` casts one ray per pixel (unit directions in the camera frame from the camera centre,
computed by the caller through the real, distorted camera and crop) against ``Capsule``,
``Ellipsoid`` and ``OrientedBox`` primitives. Work scales with primitive area: pixels are grouped
in square tiles, each tile bounded by a cone of rays; each primitive is covered by a chain of
spheres and is intersected exactly only on the tiles whose cone can reach one of its spheres.
The nearest hit wins every pixel (z-buffer), then only the winners are shaded: Lambertian
(ambient + diffuse * max(0, n . l)) times the material's albedo, whose rings/stripes are a
function of the hit point's coordinate along the primitive's texture axis, times the light's
falloff with the distance from the camera (``Lighting.falloff``). A global dim factor and gaussian
sensor noise follow. Part labels are the nearest primitive's part id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchpose.synthetic.appearance import Lighting
from patchpose.synthetic.primitives import Capsule, Ellipsoid, OrientedBox

__all__ = ["Cues", "RenderResult", "Rays", "render", "pinhole_rays", "intersect", "surface_normals"]

FLAT_SHADING = 0.6  # with shading off: ambient + FLAT_SHADING * diffuse, the same for every normal


@dataclass(frozen=True)
class Cues:
    """Switches for the local 3D cues. texture=False: every primitive is its material's base colour
    (no bands, sleeve edges or hair); shading=False: no normal-dependent term. Both off: flat silhouettes."""

    texture: bool = True
    shading: bool = True


@dataclass(frozen=True, eq=False)
class RenderResult:
    """rgb: (H, W, 3) uint8. labels: (H, W) uint8 part ids (0 where the background or a prop is hit).
    depth: (H, W) float32 camera-frame z of the nearest surface in mm (props included), inf where nothing
    is hit. primitive: (H, W) int16 index of the winning primitive into the list rendered, -1 for none."""

    rgb: np.ndarray
    labels: np.ndarray
    depth: np.ndarray
    primitive: np.ndarray


class Rays:
    """A frame's rays, prepared for culling: (H, W, 3) unit camera-frame directions, padded to whole
    ``tile`` x ``tile`` tiles and stored tile-major, with each tile's bounding cone and each pixel's
    angular footprint (rad, from its neighbours' directions; used to fade sub-pixel texture)."""

    def __init__(self, directions: np.ndarray, tile: int = 8) -> None:
        d = np.asarray(directions, dtype=np.float64)
        if d.ndim != 3 or d.shape[2] != 3 or d.shape[0] < 2 or d.shape[1] < 2:
            raise ValueError(f"rays must be (H, W, 3) with H, W >= 2, got {d.shape}")
        if not np.all(np.abs(np.einsum("ijk,ijk->ij", d, d) - 1.0) < 2e-4):  # NaN fails too
            raise ValueError("rays must be finite unit vectors")
        if tile < 1:
            raise ValueError(f"tile must be >= 1, got {tile}")
        self.height, self.width, self.tile = d.shape[0], d.shape[1], tile
        # angle between unit neighbours ~ chord = sqrt(2 - 2 cos)
        step_x = np.sqrt(np.maximum(2.0 - 2.0 * np.einsum("ijk,ijk->ij", d[:, 1:], d[:, :-1]), 0.0))
        step_y = np.sqrt(np.maximum(2.0 - 2.0 * np.einsum("ijk,ijk->ij", d[1:], d[:-1]), 0.0))
        footprint = np.maximum(np.pad(step_x, ((0, 0), (0, 1)), mode="edge"), np.pad(step_y, ((0, 1), (0, 0)), "edge"))
        self.ty, self.tx = -(-self.height // tile), -(-self.width // tile)
        pad = ((0, self.ty * tile - self.height), (0, self.tx * tile - self.width))
        d = np.pad(d, pad + ((0, 0),), mode="edge")
        self.directions = self._to_tiles(d).reshape(-1, 3)  # (n_tiles * tile^2, 3)
        self.footprint = self._to_tiles(np.pad(footprint, pad, mode="edge")).reshape(-1)
        per_tile = self.directions.reshape(self.ty * self.tx, tile * tile, 3)
        axis = per_tile.sum(axis=1)
        norm = np.sqrt(np.einsum("tk,tk->t", axis, axis))
        axis /= np.maximum(norm, 1e-12)[:, None]
        cos_half = np.clip(np.einsum("tpk,tk->tp", per_tile, axis).min(axis=1) - 1e-9, -1.0, 1.0)
        cos_half[norm < 1e-6 * tile * tile] = -1.0  # rays spanning a hemisphere: the tile sees everything
        self.tile_axis, self.tile_cos, self.tile_sin = axis, cos_half, np.sqrt(1.0 - cos_half**2)

    def _to_tiles(self, image: np.ndarray) -> np.ndarray:
        t = self.tile
        tiles = image.reshape(self.ty, t, self.tx, t, *image.shape[2:]).swapaxes(1, 2)
        return np.ascontiguousarray(tiles).reshape(self.ty * self.tx * t * t, *image.shape[2:])

    def to_image(self, flat: np.ndarray) -> np.ndarray:
        """Tile-major (n_pixels, ...) -> (H, W, ...) image order, padding cropped."""
        t = self.tile
        image = flat.reshape(self.ty, self.tx, t, t, *flat.shape[1:]).swapaxes(1, 2)
        return image.reshape(self.ty * t, self.tx * t, *flat.shape[1:])[: self.height, : self.width]


def pinhole_rays(height: int, width: int, focal_px: float, centre_px=None) -> np.ndarray:
    """(H, W, 3) unit rays of an undistorted pinhole camera through pixel centres (x right, y down)."""
    if not focal_px > 0 or height < 1 or width < 1:
        raise ValueError(f"pinhole_rays needs focal_px > 0 and a positive size, got {focal_px}, {height}x{width}")
    cx, cy = ((width - 1) / 2.0, (height - 1) / 2.0) if centre_px is None else centre_px
    x, y = np.meshgrid((np.arange(width) - cx) / focal_px, (np.arange(height) - cy) / focal_px)
    d = np.stack([x, y, np.ones_like(x)], axis=-1)
    return d / np.linalg.norm(d, axis=-1, keepdims=True)


def intersect(prim, d: np.ndarray) -> np.ndarray:
    """Exact nearest hit distance t > 0 (mm) along unit rays ``d`` (N, 3) from the camera centre; inf: miss."""
    if isinstance(prim, Capsule):
        return _capsule_hits(prim.start, prim.end, prim.radius, d)
    if isinstance(prim, Ellipsoid):
        scaled = prim.rotation / prim.radii  # camera -> unit-sphere coordinates (after centring)
        e, g = d @ scaled, prim.centre @ scaled
        ee, eg = np.einsum("ij,ij->i", e, e), e @ g
        h = eg * eg - ee * (g @ g - 1.0)
        t = (eg - np.sqrt(np.maximum(h, 0.0))) / ee
        t[(h < 0) | (t <= 0)] = np.inf
        return t
    if isinstance(prim, OrientedBox):  # slabs in the box frame
        local_d, local_o = d @ prim.rotation, -prim.centre @ prim.rotation
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-prim.half_size - local_o) / local_d, (prim.half_size - local_o) / local_d
        t_near, t_far = np.minimum(t1, t2).max(axis=1), np.maximum(t1, t2).min(axis=1)
        return np.where((t_near <= t_far) & (t_near > 0), t_near, np.inf)
    raise TypeError(f"cannot ray-cast a {type(prim).__name__}; expected Capsule, Ellipsoid or OrientedBox")


def _capsule_hits(a: np.ndarray, b: np.ndarray, r: float, d: np.ndarray) -> np.ndarray:
    """Capsule = min(entry into either cap sphere, entry into the side of the finite cylinder)."""
    proj = d @ np.stack([a, b], axis=1)  # (N, 2): d.a, d.b
    h_caps = proj**2 - (np.array([a @ a, b @ b]) - r * r)
    t_caps = proj - np.sqrt(np.maximum(h_caps, 0.0))
    t_caps[(h_caps < 0) | (t_caps <= 0)] = np.inf
    t = t_caps.min(axis=1)
    ba = b - a
    baba, baa = ba @ ba, ba @ a
    if baba > 1e-12:  # |t d - a|^2 baba - ((t d - a).ba)^2 = r^2 baba, a quadratic qa t^2 + 2 qb t + qc
        da, dba = proj[:, 0], proj[:, 1] - proj[:, 0]
        qa = baba - dba * dba  # baba sin^2(ray, axis)
        qb = baa * dba - baba * da
        h = qb * qb - qa * (baba * (a @ a - r * r) - baa * baa)
        ok = (h >= 0) & (qa > 1e-9 * baba)
        t_cyl = np.where(ok, -qb - np.sqrt(np.maximum(h, 0.0)), 0.0) / np.where(ok, qa, 1.0)
        y = t_cyl * dba - baa  # position along the axis times |ba| (mm^2)
        ok &= (y > 0) & (y < baba) & (t_cyl > 0)
        t = np.where(ok, np.minimum(t, t_cyl), t)
    return t


def surface_normals(prim, points: np.ndarray) -> np.ndarray:
    """Outward unit normals (N, 3) at points (N, 3) on the primitive's surface (camera frame)."""
    if isinstance(prim, Capsule):
        ba = prim.end - prim.start
        s = np.clip((points - prim.start) @ ba / max(ba @ ba, 1e-12), 0.0, 1.0)
        n = points - (prim.start + s[:, None] * ba)
    elif isinstance(prim, Ellipsoid):
        n = ((points - prim.centre) @ prim.rotation / prim.radii**2) @ prim.rotation.T
    else:
        q = (points - prim.centre) @ prim.rotation
        face = np.argmax(np.abs(q) / prim.half_size, axis=1)
        return prim.rotation.T[face] * np.sign(q[np.arange(len(q)), face])[:, None]
    return n / np.maximum(np.sqrt(np.einsum("ij,ij->i", n, n)), 1e-12)[:, None]


def _culling_spheres(primitives) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chains of spheres covering each primitive: centres (S, 3), radii (S,), first sphere per primitive (P,).
    A point within r of segment piece k (projecting inside it) lies within hypot(piece / 2, r) of its centre."""
    centres, radii, starts = [], [], []
    for prim in primitives:
        p0, p1, r = prim.cull_segment()
        n = int(min(64, max(1, np.ceil(np.linalg.norm(p1 - p0) / max(r, 1e-6)))))
        s = (np.arange(n) + 0.5) / n
        starts.append(len(radii))
        centres.extend(p0 + s[:, None] * (p1 - p0))
        radii.extend([np.hypot(np.linalg.norm(p1 - p0) / (2 * n), r)] * n)
    return np.asarray(centres), np.asarray(radii), np.asarray(starts)


def _candidate_tiles(rays: Rays, primitives) -> np.ndarray:
    """(n_tiles, P) bool: tile cone may meet the primitive (cone half-angle + sphere angular radius)."""
    centres, radii, starts = _culling_spheres(primitives)
    dist = np.linalg.norm(centres, axis=1)
    inside = dist <= radii
    sin_b = np.where(inside, 1.0, radii / np.maximum(dist, 1e-9))
    cos_b = np.sqrt(1.0 - sin_b**2)
    cos_angle = rays.tile_axis @ (centres / np.maximum(dist, 1e-9)[:, None]).T  # (T, S)
    # angle <= half + beta  <=>  cos(angle) >= cos(half + beta)  (half + beta <= pi here)
    reach = cos_angle >= rays.tile_cos[:, None] * cos_b - rays.tile_sin[:, None] * sin_b
    reach[:, inside] = True
    return np.logical_or.reduceat(reach, starts, axis=1)


def render(primitives, rays, lighting: Lighting, background: np.ndarray | None, rng: np.random.Generator,
           cues: Cues = Cues()) -> RenderResult:  # fmt: skip
    """Render primitives (camera frame, mm) along ``rays`` ((H, W, 3) unit directions or a ``Rays``).

    lighting: the frame's light, dim factor and noise sigma. background: (H, W, 3) uint8 shown where
    nothing is hit (None: black). rng: draws the sensor noise only. Returns a ``RenderResult``.
    """
    rays = rays if isinstance(rays, Rays) else Rays(rays)
    primitives = list(primitives)
    for prim in primitives:
        if not isinstance(prim, Capsule | Ellipsoid | OrientedBox):
            raise TypeError(f"cannot render a {type(prim).__name__}; expected Capsule, Ellipsoid or OrientedBox")
    if len(primitives) > np.iinfo(np.int16).max:
        raise ValueError(f"at most {np.iinfo(np.int16).max} primitives per frame, got {len(primitives)}")
    if not isinstance(lighting, Lighting):
        raise TypeError("lighting must be a Lighting (see appearance.sample_lighting)")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    shape = (rays.height, rays.width, 3)
    if background is not None and (np.shape(background) != shape or np.asarray(background).dtype != np.uint8):
        raise ValueError(f"background must be uint8 {shape}, got {np.asarray(background).dtype} {np.shape(background)}")
    n_pix, tile_px = rays.directions.shape[0], rays.tile * rays.tile
    t_buf = np.full(n_pix, np.inf)
    winner = np.full(n_pix, -1, dtype=np.int16)
    colour = np.zeros((n_pix, 3), dtype=np.float32)
    hits = []
    if primitives:
        # z-pass: exact intersections on candidate tiles, nearest hit wins
        candidates = _candidate_tiles(rays, primitives)
        offsets = np.arange(tile_px)
        for index, prim in enumerate(primitives):
            tiles = np.flatnonzero(candidates[:, index])
            pix = (tiles[:, None] * tile_px + offsets).ravel()
            t = intersect(prim, rays.directions[pix])
            closer = t < t_buf[pix]
            pix, t = pix[closer], t[closer]
            t_buf[pix], winner[pix] = t, index
            hits.append(pix)
        # shade the winners only
        light = lighting.direction
        for index, prim in enumerate(primitives):
            pix = hits[index][winner[hits[index]] == index]
            if pix.size == 0:
                continue
            d, t = rays.directions[pix], t_buf[pix]
            points = d * t[:, None]
            normals = surface_normals(prim, points) if (cues.shading or cues.texture) else None
            if cues.texture:
                coords = prim.frame.coordinates(points)
                grazing = np.maximum(np.abs(np.einsum("ij,ij->i", normals, d)), 0.25)
                cycles_per_px = t * rays.footprint[pix] / grazing / prim.material.period_mm
                fade = np.clip((0.45 - cycles_per_px) / 0.2, 0.0, 1.0)
                albedo = prim.material.albedo(coords[:, 0], coords[:, 1], coords[:, 2], prim.frame.length, fade)
            else:
                albedo = np.broadcast_to(prim.material.colour, (pix.size, 3))
            if cues.shading:
                shade = lighting.ambient + lighting.diffuse * np.maximum(normals @ light, 0.0)
            else:
                shade = np.full(pix.size, lighting.ambient + FLAT_SHADING * lighting.diffuse)
            if lighting.falloff > 0:  # t is the distance from the camera centre: the rays are unit vectors
                shade = shade * (lighting.reference_mm / t) ** lighting.falloff
            colour[pix] = albedo * shade[:, None]
    primitive = rays.to_image(winner)
    hit = primitive >= 0
    image = rays.to_image(colour) * np.float32(255.0 * lighting.dim)
    if background is not None:
        image = np.where(hit[:, :, None], image, background * np.float32(lighting.dim))
    if lighting.noise_sigma > 0:
        image += np.float32(lighting.noise_sigma) * rng.standard_normal(image.shape, dtype=np.float32)
    parts = np.array([p.part for p in primitives] + [0], dtype=np.uint8)  # index -1 -> background
    depth = rays.to_image(t_buf * rays.directions[:, 2])
    return RenderResult(
        rgb=np.clip(image + np.float32(0.5), 0, 255).astype(np.uint8),  # round half up
        labels=parts[primitive],
        depth=np.where(hit, depth, np.inf).astype(np.float32),
        primitive=np.ascontiguousarray(primitive),
    )
