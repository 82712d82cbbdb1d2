"""A generative model of 3D pose errors: initial poses for an updater whose baseline has no training split.

An updater learns ΔU = U_gt - U_init from a baseline's training-split predictions (``patchpose.updater.stage``).
A baseline that brings only test predictions (``baselines.<name>.updater: error_model``) trains on *synthetic*
initial poses instead: the training split's ground truth perturbed by this model, whose parameters are fitted on
real residuals (pairs of predicted and true poses: a validation file, or other baselines' training splits).

Poses are (N, 17, 3) mm in the camera frame (x right, y down, z forward), ``H36M`` joint order. Ground truth
is given *absolute* (``DatasetStore.joints_3d``: every joint at z > 0), because a depth flip is about the camera
ray; predictions are root-relative. Limbs are ``H36M.limbs`` (16, parent before child), limb ``k`` from joint
``P[k]`` to ``C[k]``, with direction ``d_k`` (unit) and length ``L_k`` mm, and ``r_k`` the unit camera ray through
its parent joint. A predicted pose is drawn per frame as:

1. **global scale** ``s = exp(log_scale_mean + log_scale_std z)``;
2. **depth-sign flip**: with probability ``flip_probability[k]`` the limb's component along the ray changes
   sign, ``u = d - 2 (d . r) r`` (the mirror ambiguity of a limb seen from the camera); else ``u = d``;
3. **orientation noise** on the unit sphere about ``u``: the tangent vector ``a e_depth + b e_image`` mapped by the
   exponential map, ``a ~ N(0, depth_sigma_rad[k]^2)`` towards the ray (``e_depth``: the tangent direction
   that changes the limb's depth), ``b ~ N(0, image_sigma_rad[k]^2)`` across it (``e_image = u x e_depth``,
   perpendicular to the ray: to first order it keeps the depth and turns the limb in the image);
4. the pose rebuilt root to leaves with the *true* lengths times ``s``, root at 0;
5. **joint jitter**: ``N(0, jitter_mm[j]^2)`` per axis on every joint but the root (``jitter_mm[0] = 0``).

Fitting (``fit_error_model``) inverts these in order of what each is blind to. Bone lengths ignore flips and
orientation noise: the per-frame scale is the ratio of total predicted to total true bone length, and the
jitter variances solve (non-negative least squares) the linear system that the mean squared length
residuals of the 16 limbs give to first order, the scale's own estimation error included. Directions then
give, per limb, a two-component mixture (flipped or not) of anisotropic Gaussians in the tangent plane,
fitted by EM (so a limb nearly perpendicular to the ray, whose flip changes nothing, weighs nothing), and the
jitter's share of the tangent variance (``(σ_child² + σ_parent²) / (s L)²``) is subtracted. Parameters drawn
from this model are recovered to within sampling error (``tests/test_error_model.py`` states the tolerances).

Numpy and scipy only (no torch): the workflow's fit and sample rules run it in the core environment.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from patchpose.atomic import atomic_write_text
from patchpose.skeleton import H36M

__all__ = [
    "FORMAT_VERSION",
    "MIN_FIT_FRAMES",
    "ErrorModel",
    "fit_error_model",
    "sample_poses",
    "residual_statistics",
    "write_error_model",
    "read_error_model",
]

FORMAT_VERSION = 1
MIN_FIT_FRAMES = 10  # fewer pairs cannot pin 66 parameters down at all
NUM_JOINTS, NUM_LIMBS = H36M.num_joints, H36M.num_limbs
CHILDREN, PARENTS = H36M.limb_children, H36M.limb_parents
_EM_ITERATIONS, _EM_TOLERANCE = 500, 1e-10
_SIGMA_FLOOR = 1e-6  # rad: keeps the mixture's densities finite when a fit set has no noise at all
_DEPTH_DEFINED = 0.3  # |d . r| above which a limb's depth sign counts in residual_statistics


def _vector(values, size: int, name: str, low: float, high: float = math.inf) -> np.ndarray:
    array = np.array(values, dtype=np.float64)
    if array.shape != (size,):
        raise ValueError(f"{name} must hold {size} numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < low) or np.any(array > high):
        raise ValueError(f"{name} must be finite and within [{low}, {high}], got {array.tolist()}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class ErrorModel:
    """The parameters (module docstring): ``log_scale_mean``, ``log_scale_std`` (natural log of the global
    scale); per limb (16, ``H36M.limbs`` order) ``flip_probability`` in [0, 1], ``depth_sigma_rad`` and
    ``image_sigma_rad`` >= 0; per joint (17) ``jitter_mm`` >= 0 with 0 at the root. Arrays are read-only."""

    log_scale_mean: float
    log_scale_std: float
    flip_probability: np.ndarray
    depth_sigma_rad: np.ndarray
    image_sigma_rad: np.ndarray
    jitter_mm: np.ndarray

    def __post_init__(self) -> None:
        for name in ("log_scale_mean", "log_scale_std"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or (name == "log_scale_std" and value < 0):
                raise ValueError(f"{name} must be finite{' and >= 0' if name == 'log_scale_std' else ''}, got {value}")
            object.__setattr__(self, name, float(value))
        probability = _vector(self.flip_probability, NUM_LIMBS, "flip_probability", 0, 1)
        object.__setattr__(self, "flip_probability", probability)
        for name in ("depth_sigma_rad", "image_sigma_rad"):
            object.__setattr__(self, name, _vector(getattr(self, name), NUM_LIMBS, name, 0))
        object.__setattr__(self, "jitter_mm", _vector(self.jitter_mm, NUM_JOINTS, "jitter_mm", 0))
        if self.jitter_mm[0] != 0:
            raise ValueError(f"jitter_mm of the root must be 0 (poses are root-relative), got {self.jitter_mm[0]}")

    @classmethod
    def identity(cls) -> ErrorModel:
        """No error at all: sampling returns the ground truth, root-relative."""
        return cls(0.0, 0.0, np.zeros(NUM_LIMBS), np.zeros(NUM_LIMBS), np.zeros(NUM_LIMBS), np.zeros(NUM_JOINTS))

    def equals(self, other: ErrorModel) -> bool:
        """Exact equality of every parameter."""
        return self.to_dict() == other.to_dict()

    def to_dict(self) -> dict:
        """JSON-ready: the parameters as floats and lists, with the limb and joint names they follow."""
        return {
            "log_scale_mean": self.log_scale_mean,
            "log_scale_std": self.log_scale_std,
            "limb_names": list(H36M.limb_names),
            "flip_probability": self.flip_probability.tolist(),
            "depth_sigma_rad": self.depth_sigma_rad.tolist(),
            "image_sigma_rad": self.image_sigma_rad.tolist(),
            "joint_names": list(H36M.joint_names),
            "jitter_mm": self.jitter_mm.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ErrorModel:
        """Inverse of :meth:`to_dict`; ValueError on a missing key, a bad value or another limb/joint order."""
        fields = ("log_scale_mean", "log_scale_std", "flip_probability", "depth_sigma_rad", "image_sigma_rad",
                  "jitter_mm")  # fmt: skip
        missing = [key for key in fields if key not in data]
        if missing:
            raise ValueError(f"error model parameters lack {', '.join(missing)}")
        for key, names in (("limb_names", H36M.limb_names), ("joint_names", H36M.joint_names)):
            if key in data and tuple(data[key]) != names:
                raise ValueError(f"{key} {list(data[key])} differ from the H36M order {list(names)}")
        return cls(*(data[key] for key in fields))


def write_error_model(path: str | os.PathLike, model: ErrorModel, fitted_on: dict) -> None:
    """Write ``model`` as JSON (atomically) with ``fitted_on``: what the parameters were fitted on."""
    payload = {"format_version": FORMAT_VERSION, **model.to_dict(), "fitted_on": fitted_on}
    atomic_write_text(path, json.dumps(payload, indent=2) + "\n")


def read_error_model(path: str | os.PathLike) -> ErrorModel:
    """The model a ``write_error_model`` file holds; ValueError naming the file if it is not one."""
    try:
        data = json.loads(open(path, encoding="utf-8").read())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable error-model JSON file: {error}") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        version = data.get("format_version") if isinstance(data, dict) else None
        raise ValueError(f"{path}: error-model format_version {version!r}, expected {FORMAT_VERSION}")
    try:
        return ErrorModel.from_dict(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


# --- geometry: limbs, rays, the tangent plane of a direction ---


def _poses(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 3 or array.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"{name} must have shape (N, {NUM_JOINTS}, 3), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds {int(np.count_nonzero(~np.isfinite(array)))} NaN or inf values")
    return array


def _limbs(ground_truth) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Root-relative truth (N, 17, 3), bone lengths L (N, 16) mm, directions d and parent rays r (N, 16, 3)."""
    truth = _poses(ground_truth, "ground_truth")
    if np.any(truth[..., 2] <= 0):
        raise ValueError("ground_truth must be absolute camera-frame joints (every z > 0), as DatasetStore.joints_3d")
    relative = truth - truth[:, :1]
    bones = relative[:, CHILDREN] - relative[:, PARENTS]
    lengths = np.linalg.norm(bones, axis=-1)
    if np.any(lengths <= 0):
        raise ValueError("ground_truth has a bone of zero length")
    rays = truth[:, PARENTS] / np.linalg.norm(truth[:, PARENTS], axis=-1, keepdims=True)
    return relative, lengths, bones / lengths[..., None], rays


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", a, b)


def _flip(directions: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """The depth-sign flip: the component along the ray negated."""
    return directions - 2 * _dot(directions, rays)[..., None] * rays


def _tangent_basis(directions: np.ndarray, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(e_depth, e_image), unit tangents at ``directions``: towards the ray, and across it. A direction along the
    ray has no depth tangent; any perpendicular pair serves there."""
    towards = rays - _dot(rays, directions)[..., None] * directions
    norm = np.linalg.norm(towards, axis=-1, keepdims=True)
    fallback = np.cross(directions, np.where(np.abs(directions[..., :1]) < 0.9, [1.0, 0, 0], [0, 1.0, 0]))
    towards = np.where(norm > 1e-9, towards, fallback)
    depth = towards / np.linalg.norm(towards, axis=-1, keepdims=True)
    return depth, np.cross(directions, depth)


def _log_map(base: np.ndarray, target: np.ndarray, rays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tangent coordinates (…, 2) rad (depth, image) of unit ``target`` seen from unit ``base``, and the angle."""
    cosine = np.clip(_dot(base, target), -1.0, 1.0)
    angle = np.arccos(cosine)
    sideways = target - cosine[..., None] * base
    norm = np.linalg.norm(sideways, axis=-1, keepdims=True)
    tangent = np.where(norm > 1e-12, sideways / np.maximum(norm, 1e-12), 0.0) * angle[..., None]
    depth, image = _tangent_basis(base, rays)
    return np.stack([_dot(tangent, depth), _dot(tangent, image)], axis=-1), angle


def _exp_map(base: np.ndarray, coordinates: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """The unit direction reached from ``base`` along the tangent (depth, image) ``coordinates`` (…, 2) rad."""
    depth, image = _tangent_basis(base, rays)
    tangent = coordinates[..., :1] * depth + coordinates[..., 1:] * image
    angle = np.linalg.norm(tangent, axis=-1, keepdims=True)
    return np.cos(angle) * base + np.sinc(angle / np.pi) * tangent  # sinc(θ/π) = sin θ / θ, 1 at θ = 0


def _rebuild(bone_vectors: np.ndarray) -> np.ndarray:
    """(N, 16, 3) mm limb vectors -> (N, 17, 3) root-relative pose, root to leaves."""
    poses = np.zeros((bone_vectors.shape[0], NUM_JOINTS, 3))
    for k, (child, parent) in enumerate(H36M.limbs):
        poses[:, child] = poses[:, parent] + bone_vectors[:, k]
    return poses


# --- sampling ---


def sample_poses(model: ErrorModel, ground_truth, rng: np.random.Generator) -> np.ndarray:
    """Synthetic predictions (N, 17, 3) mm, camera frame, root-relative, one per frame of ``ground_truth``
    (N, 17, 3) mm absolute camera frame, drawn from ``model`` (module docstring) with ``rng``. Every draw is
    made whatever the parameters, so a seed gives the same stream for every model."""
    _, lengths, directions, rays = _limbs(ground_truth)
    count = lengths.shape[0]
    scale = np.exp(model.log_scale_mean + model.log_scale_std * rng.standard_normal(count))
    flipped = rng.random((count, NUM_LIMBS)) < model.flip_probability
    noise = rng.standard_normal((count, NUM_LIMBS, 2)) * np.stack([model.depth_sigma_rad, model.image_sigma_rad], -1)
    jitter = rng.standard_normal((count, NUM_JOINTS, 3)) * model.jitter_mm[:, None]
    base = np.where(flipped[..., None], _flip(directions, rays), directions)
    noisy = _exp_map(base, noise, rays)
    poses = _rebuild(scale[:, None, None] * lengths[..., None] * noisy) + jitter
    return poses - poses[:, :1]


# --- fitting ---


def _predicted_bones(predicted, count: int) -> tuple[np.ndarray, np.ndarray]:
    poses = _poses(predicted, "predicted")
    if poses.shape[0] != count:
        raise ValueError(f"predicted has {poses.shape[0]} frames but ground_truth has {count}")
    bones = poses[:, CHILDREN] - poses[:, PARENTS]
    return bones, np.linalg.norm(bones, axis=-1)


def _jitter_system(directions: np.ndarray, weights: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """A (16 limbs, 16 non-root joints): the mean squared length residual of limb k per unit jitter variance of
    joint j, to first order. The residual is (1/s) Σ_j n_j . h_kj with h_kj = g_kj - w_k Σ_m g_mj (g_mj = ±d_m
    when joint j is limb m's child/parent, w_k = L_k / Σ L: the scale absorbs part of every limb's error)."""
    count = directions.shape[0]
    summed = np.zeros((count, NUM_JOINTS, 3))  # Σ_m g_mj
    np.add.at(summed, (slice(None), CHILDREN), directions)
    np.add.at(summed, (slice(None), PARENTS), -directions)
    inverse = 1 / scale**2
    system = np.einsum("nk,nj->kj", weights**2 * inverse[:, None], _dot(summed, summed)) / count
    for k in range(NUM_LIMBS):
        for joint, sign in ((CHILDREN[k], 1.0), (PARENTS[k], -1.0)):
            cross = sign * _dot(directions[:, k], summed[:, joint])  # g_kj . Σ_m g_mj
            system[k, joint] += np.mean(inverse * (1 - 2 * weights[:, k] * cross))
    return system[:, 1:]


def _mixture(coordinates: tuple[np.ndarray, np.ndarray], angles: tuple[np.ndarray, np.ndarray]):
    """EM per limb for (flip probability, depth variance, image variance) of the two-hypothesis mixture.
    coordinates: (N, 16, 2) tangent coordinates from the unflipped and the flipped truth; angles: (N, 16)."""
    jacobian = [-np.log(np.sinc(np.minimum(a, np.pi - 1e-6) / np.pi)) for a in angles]  # log(θ / sin θ)
    squares = [c**2 for c in coordinates]
    chosen = angles[1] < angles[0]
    probability = np.clip(chosen.mean(axis=0), 0.01, 0.99)
    variance = np.maximum(np.where(chosen[..., None], squares[1], squares[0]).mean(axis=0), _SIGMA_FLOOR**2)
    for _ in range(_EM_ITERATIONS):
        log_density = [
            -0.5 * (s / variance).sum(-1) - 0.5 * np.log(variance).sum(-1) + j
            for s, j in zip(squares, jacobian, strict=True)
        ]
        odds = np.log(np.clip(probability, 1e-12, 1)) - np.log(np.clip(1 - probability, 1e-12, 1))
        flipped = 1 / (1 + np.exp(-np.clip(odds + log_density[1] - log_density[0], -700, 700)))
        new_probability = flipped.mean(axis=0)
        new_variance = ((1 - flipped)[..., None] * squares[0] + flipped[..., None] * squares[1]).mean(axis=0)
        new_variance = np.maximum(new_variance, _SIGMA_FLOOR**2)
        change = max(np.abs(new_probability - probability).max(), np.abs(new_variance - variance).max())
        probability, variance = new_probability, new_variance
        if change < _EM_TOLERANCE:
            break
    return probability, variance


def fit_error_model(ground_truth, predicted) -> ErrorModel:
    """The error model's parameters from N >= MIN_FIT_FRAMES pairs: ``ground_truth`` (N, 17, 3) mm absolute camera
    frame and ``predicted`` (N, 17, 3) mm camera frame (any root; only limbs are used). Deterministic. Frames
    with a predicted bone of zero length (a collapsed pose) are left out; ValueError if too few remain."""
    _, lengths, directions, rays = _limbs(ground_truth)
    bones, predicted_lengths = _predicted_bones(predicted, lengths.shape[0])
    usable = np.all(predicted_lengths > 1e-6 * lengths, axis=1)
    if usable.sum() < MIN_FIT_FRAMES:
        raise ValueError(
            f"an error model needs at least {MIN_FIT_FRAMES} pairs of predicted and true poses with no collapsed "
            f"bone; got {int(usable.sum())} of {len(usable)}"
        )
    lengths, directions, rays = lengths[usable], directions[usable], rays[usable]
    bones, predicted_lengths = bones[usable], predicted_lengths[usable]
    predicted_directions = bones / predicted_lengths[..., None]
    scale = predicted_lengths.sum(axis=1) / lengths.sum(axis=1)
    weights = lengths / lengths.sum(axis=1, keepdims=True)
    residual = predicted_lengths / scale[:, None] - lengths
    jitter_variance, _ = nnls(_jitter_system(predicted_directions, weights, scale), np.mean(residual**2, axis=0))
    jitter_variance = np.r_[0.0, jitter_variance]
    summed = np.zeros((len(scale), NUM_JOINTS, 3))
    np.add.at(summed, (slice(None), CHILDREN), predicted_directions)
    np.add.at(summed, (slice(None), PARENTS), -predicted_directions)
    scale_noise = (_dot(summed, summed) @ jitter_variance) / (scale * lengths.sum(axis=1)) ** 2
    # Jitter lengthens bones on average (its component across a bone adds (σ_c² + σ_p²) / (s L) to first
    # order), which would read as a larger scale.
    lengthening = (jitter_variance[CHILDREN] + jitter_variance[PARENTS]) / (scale[:, None] ** 2 * lengths)
    log_scale = np.log(scale) - lengthening.sum(axis=1) / lengths.sum(axis=1)
    flipped_truth = _flip(directions, rays)
    unflipped, angle0 = _log_map(directions, predicted_directions, rays)
    flipped, angle1 = _log_map(flipped_truth, predicted_directions, rays)
    probability, variance = _mixture((unflipped, flipped), (angle0, angle1))
    tangent_jitter = (jitter_variance[CHILDREN] + jitter_variance[PARENTS]) / (scale[:, None] * lengths) ** 2
    variance = np.maximum(variance - tangent_jitter.mean(axis=0)[:, None], 0.0)
    return ErrorModel(
        log_scale_mean=float(log_scale.mean()),
        log_scale_std=float(np.sqrt(max(log_scale.var() - scale_noise.mean(), 0.0))),
        flip_probability=np.clip(probability, 0, 1),
        depth_sigma_rad=np.sqrt(variance[:, 0]),
        image_sigma_rad=np.sqrt(variance[:, 1]),
        jitter_mm=np.sqrt(jitter_variance),
    )


def residual_statistics(ground_truth, predicted) -> dict[str, np.ndarray]:
    """What the plot compares between real and sampled residuals, per frame: ``mpjpe_mm`` (N,); ``log_scale``
    (N,) total predicted over total true bone length; per limb (N, 16): ``angle_deg`` between predicted and true
    directions, ``length_residual_mm`` (scale removed), ``depth_flipped`` (the sign of the limb's component
    along the ray differs) and ``depth_defined`` (|d . r| > 0.3, where that sign means something)."""
    relative, lengths, directions, rays = _limbs(ground_truth)
    bones, predicted_lengths = _predicted_bones(predicted, lengths.shape[0])
    poses = np.asarray(predicted, dtype=np.float64)
    scale = predicted_lengths.sum(axis=1) / lengths.sum(axis=1)
    unit = bones / np.maximum(predicted_lengths, 1e-12)[..., None]
    along_truth, along_predicted = _dot(directions, rays), _dot(unit, rays)
    return {
        "mpjpe_mm": np.linalg.norm((poses - poses[:, :1]) - relative, axis=-1).mean(axis=1),
        "log_scale": np.log(np.maximum(scale, 1e-12)),
        "angle_deg": np.degrees(np.arccos(np.clip(_dot(unit, directions), -1, 1))),
        "length_residual_mm": predicted_lengths / np.maximum(scale, 1e-12)[:, None] - lengths,
        "depth_flipped": np.sign(along_truth) != np.sign(along_predicted),
        "depth_defined": np.abs(along_truth) > _DEPTH_DEFINED,
    }
