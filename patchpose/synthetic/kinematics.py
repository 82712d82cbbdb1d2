"""Forward (and a little inverse) kinematics of the Human3.6M 17-joint tree from joint angles.

Body-local frame (right-handed, mm): ``z`` up, the subject faces ``+y``, so ``+x`` is the
subject's RIGHT and ``-x`` the subject's LEFT (``x = y cross z``). Rest pose (all angles 0):
standing straight, legs and arms hanging straight down, pelvis at the origin.

Angles are ``(F, 25)`` degrees in the order of ``DOF_NAMES``:

* ``root_yaw`` (turn left +, about z), ``root_pitch`` (tilt forward +), ``root_roll`` (lean to the
  right +): the pelvis orientation, ``R = Rz(yaw) exp(-pitch x + roll y)``; it carries the legs too.
* ``spine_flex`` (bend forward +), ``spine_lat`` (bend to the right +), ``spine_twist`` (turn left +):
  split equally between the lumbar joint (pelvis -> spine) and the spine joint (spine -> thorax).
* ``neck_flex`` / ``neck_lat`` / ``neck_twist``: the same, split between thorax -> nose and nose -> head.
* ``{l,r}_sh_flex`` (raise forward +, backward -), ``{l,r}_sh_abd`` (raise outward +, across the body -),
  ``{l,r}_sh_rot`` (internal rotation +): a swing ``exp(flex x + s abd y)`` after an axial twist
  ``Rz(-s rot)``, with ``s = +1`` left, ``-1`` right; relative to the thorax frame.
* ``{l,r}_elbow``: flexion (forearm forward/up from the hanging arm), ``Rx(+elbow)``.
* ``{l,r}_hip_flex`` / ``_abd`` / ``_rot``: the same senses, relative to the pelvis, as intrinsic
  Euler angles ``Rx(flex) Ry(s abd) Rz(-s rot)`` (so the knee hinge stays horizontal at any flexion
  and abduction when rot = 0); ``{l,r}_knee``: flexion (shank backward), ``Rx(-knee)``.

Joint limits (degrees, ``JOINT_LIMITS_DEG``), per angle; ``clip_to_limits`` clips to them (``root_yaw``
is wrapped to [-180, 180) instead): root pitch [-40, 90], roll [-30, 30]; spine flexion [-30, 80],
lateral [-35, 35], twist [-45, 45]; neck flexion [-50, 60], lateral [-40, 40], twist [-70, 70];
shoulder flexion [-60, 180], abduction [-45, 180], rotation [-90, 90]; elbow [0, 150]; hip flexion
[-30, 130], abduction [-30, 60], rotation [-80, 45] (external rotation is wide because, in this Euler
form, sitting cross-legged needs ~75 deg of it); knee [0, 150].
"""

from __future__ import annotations

import numpy as np

from patchpose.skeleton import H36M

__all__ = [
    "DOF_NAMES",
    "DOF_INDEX",
    "NUM_DOFS",
    "JOINT_LIMITS_DEG",
    "LIMITS_DEG",
    "REST_DIRECTIONS",
    "axis_angle_to_matrix",
    "rotation_x",
    "rotation_y",
    "rotation_z",
    "euler_to_matrix",
    "clip_to_limits",
    "mirror_angles",
    "forward_kinematics",
    "arm_ik",
]

JOINT_LIMITS_DEG: dict[str, tuple[float, float]] = {
    "root_yaw": (-180.0, 180.0),
    "root_pitch": (-40.0, 90.0),
    "root_roll": (-30.0, 30.0),
    "spine_flex": (-30.0, 80.0),
    "spine_lat": (-35.0, 35.0),
    "spine_twist": (-45.0, 45.0),
    "neck_flex": (-50.0, 60.0),
    "neck_lat": (-40.0, 40.0),
    "neck_twist": (-70.0, 70.0),
    **{
        f"{side}_{name}": limits
        for side in ("l", "r")
        for name, limits in (
            ("sh_flex", (-60.0, 180.0)),
            ("sh_abd", (-45.0, 180.0)),
            ("sh_rot", (-90.0, 90.0)),
            ("elbow", (0.0, 150.0)),
        )
    },
    **{
        f"{side}_{name}": limits
        for side in ("l", "r")
        for name, limits in (
            ("hip_flex", (-30.0, 130.0)),
            ("hip_abd", (-30.0, 60.0)),
            ("hip_rot", (-80.0, 45.0)),
            ("knee", (0.0, 150.0)),
        )
    },
}
DOF_NAMES: tuple[str, ...] = tuple(JOINT_LIMITS_DEG)
DOF_INDEX: dict[str, int] = {name: i for i, name in enumerate(DOF_NAMES)}
NUM_DOFS = len(DOF_NAMES)
LIMITS_DEG = np.array([JOINT_LIMITS_DEG[n] for n in DOF_NAMES], dtype=np.float64)  # (25, 2)
LIMITS_DEG.setflags(write=False)


def _unit_rows(rows) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float64)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


# (16, 3) rest direction of each limb (limb k ends in joint k + 1), body-local frame.
REST_DIRECTIONS = _unit_rows(
    [
        [1, 0, -0.1], [0, 0, -1], [0, 0, -1],  # pelvis -> right hip -> knee -> ankle
        [-1, 0, -0.1], [0, 0, -1], [0, 0, -1],  # pelvis -> left hip -> knee -> ankle
        [0, -0.05, 1], [0, 0.05, 1],  # pelvis -> spine -> thorax
        [0, 0.35, 1], [0, -0.25, 1],  # thorax -> neck/nose -> head top
        [-1, -0.05, -0.12], [0, 0, -1], [0, 0, -1],  # thorax -> left shoulder -> elbow -> wrist
        [1, -0.05, -0.12], [0, 0, -1], [0, 0, -1],  # thorax -> right shoulder -> elbow -> wrist
    ]
)  # fmt: skip
REST_DIRECTIONS.setflags(write=False)


def rotation_x(angle) -> np.ndarray:
    """(...,) rad -> (..., 3, 3) right-handed rotation about x."""
    return _axis_rotation(angle, 0)


def rotation_y(angle) -> np.ndarray:
    """(...,) rad -> (..., 3, 3) right-handed rotation about y."""
    return _axis_rotation(angle, 1)


def rotation_z(angle) -> np.ndarray:
    """(...,) rad -> (..., 3, 3) right-handed rotation about z."""
    return _axis_rotation(angle, 2)


def _axis_rotation(angle, axis: int) -> np.ndarray:
    a = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(a), np.sin(a)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    out = np.zeros(a.shape + (3, 3))
    out[..., axis, axis] = 1.0
    out[..., i, i], out[..., i, j], out[..., j, i], out[..., j, j] = c, -s, s, c
    return out


def axis_angle_to_matrix(rotvec) -> np.ndarray:
    """Rodrigues: (..., 3) rotation vectors (axis * angle, rad) -> (..., 3, 3) rotation matrices."""
    v = np.asarray(rotvec, dtype=np.float64)
    if v.shape[-1:] != (3,):
        raise ValueError(f"rotation vectors must have a last axis of 3, got shape {v.shape}")
    theta = np.linalg.norm(v, axis=-1)[..., None, None]
    k = np.zeros(v.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    k = k - np.swapaxes(k, -1, -2)  # skew matrix of v (unnormalised)
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0 - theta**2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - theta**2 / 24.0, (1.0 - np.cos(safe)) / safe**2)
    return np.eye(3) + a * k + b * (k @ k)


def euler_to_matrix(angles, order: str = "zxy") -> np.ndarray:
    """Intrinsic Euler angles (..., 3) rad -> (..., 3, 3): ``R = R_order[0](a0) R_order[1](a1) R_order[2](a2)``."""
    if len(order) != 3 or set(order) - set("xyz"):
        raise ValueError(f"order must be three of 'x', 'y', 'z' (e.g. 'zxy'), got {order!r}")
    a = np.asarray(angles, dtype=np.float64)
    if a.shape[-1:] != (3,):
        raise ValueError(f"Euler angles must have a last axis of 3, got shape {a.shape}")
    out = _axis_rotation(a[..., 0], "xyz".index(order[0]))
    for i in (1, 2):
        out = out @ _axis_rotation(a[..., i], "xyz".index(order[i]))
    return out


def _check_angles(angles_deg) -> np.ndarray:
    a = np.asarray(angles_deg, dtype=np.float64)
    if a.shape[-1:] != (NUM_DOFS,) or a.ndim not in (1, 2):
        raise ValueError(f"angles must be (F, {NUM_DOFS}) or ({NUM_DOFS},) degrees ({', '.join(DOF_NAMES)})")
    if not np.all(np.isfinite(a)):
        raise ValueError("angles must be finite")
    return a


def clip_to_limits(angles_deg) -> np.ndarray:
    """(..., 25) deg -> a copy clipped to ``JOINT_LIMITS_DEG``; ``root_yaw`` wrapped to [-180, 180)."""
    a = np.array(_check_angles(angles_deg), dtype=np.float64)
    a = np.clip(a, LIMITS_DEG[:, 0], LIMITS_DEG[:, 1])
    yaw = DOF_INDEX["root_yaw"]
    a[..., yaw] = (np.asarray(angles_deg, dtype=np.float64)[..., yaw] + 180.0) % 360.0 - 180.0
    return a


_MIRROR_PERM = np.array([DOF_INDEX[{"l_": "r_", "r_": "l_"}.get(n[:2], n[:2]) + n[2:]] for n in DOF_NAMES])
_MIRROR_SIGN = np.array([-1.0 if n.endswith(("yaw", "roll", "_lat", "_twist")) else 1.0 for n in DOF_NAMES])


def mirror_angles(angles_deg) -> np.ndarray:
    """Angles of the left-right mirrored motion: ``FK(mirror(a))`` is ``FK(a)`` with x negated and
    the left and right joints swapped (for a body with symmetric bone lengths)."""
    a = _check_angles(angles_deg)
    return a[..., _MIRROR_PERM] * _MIRROR_SIGN


def _lengths(body) -> np.ndarray:
    lengths = np.asarray(getattr(body, "bone_lengths_mm", body), dtype=np.float64)
    if lengths.shape != (H36M.num_limbs,) or not np.all(lengths > 0):
        raise ValueError(f"bone lengths must be {H36M.num_limbs} positive mm (a SubjectBody or an array)")
    return lengths


def _shoulder(flex, abd, rot, side: float) -> np.ndarray:
    """Shoulder rotation (relative to the thorax) from degrees (F,): swing after axial twist."""
    swing = np.stack([flex, side * abd, np.zeros_like(flex)], axis=-1)
    return axis_angle_to_matrix(np.deg2rad(swing)) @ rotation_z(np.deg2rad(-side * rot))


def _hip(flex, abd, rot, side: float) -> np.ndarray:
    """Hip rotation (relative to the pelvis) from degrees (F,): Euler flexion, abduction, rotation."""
    return euler_to_matrix(np.deg2rad(np.stack([flex, side * abd, -side * rot], axis=-1)), "xyz")


def _half_bend(flex, lat, twist) -> np.ndarray:
    """Half of a spine / neck bend (applied twice along the chain)."""
    swing = 0.5 * np.stack([-flex, lat, np.zeros_like(flex)], axis=-1)
    return axis_angle_to_matrix(np.deg2rad(swing)) @ rotation_z(np.deg2rad(0.5 * twist))


def forward_kinematics(angles_deg, body, *, return_frames: bool = False):
    """Joint positions from joint angles.

    angles_deg: (F, 25) or (25,) degrees, ``DOF_NAMES`` order (not clipped here).
    body: a ``SubjectBody`` or its (16,) bone lengths in mm (limb order of ``H36M.limbs``).
    Returns joints (F, 17, 3) (or (17, 3)) mm in the body-local frame, pelvis at the origin; with
    ``return_frames`` also a dict of (F, 3, 3) global rotations (local -> body-local) of the segments
    ``pelvis, lumbar, thorax, neck, head, {l,r}_upper_arm, {l,r}_forearm, {l,r}_thigh, {l,r}_shank``.
    Every bone keeps its length exactly.
    """
    a = _check_angles(angles_deg)
    single = a.ndim == 1
    a = np.atleast_2d(a)
    lengths = _lengths(body)
    d = {name: a[:, i] for i, name in enumerate(DOF_NAMES)}
    joints = np.zeros((a.shape[0], H36M.num_joints, 3))

    def bone(child: int, rotation: np.ndarray) -> None:
        offset = rotation @ (REST_DIRECTIONS[child - 1] * lengths[child - 1])
        joints[:, child] = joints[:, H36M.parents[child]] + offset

    f = {}
    tilt = np.stack([-d["root_pitch"], d["root_roll"], np.zeros_like(d["root_pitch"])], axis=-1)
    f["pelvis"] = rotation_z(np.deg2rad(d["root_yaw"])) @ axis_angle_to_matrix(np.deg2rad(tilt))
    spine_half = _half_bend(d["spine_flex"], d["spine_lat"], d["spine_twist"])
    f["lumbar"] = f["pelvis"] @ spine_half
    f["thorax"] = f["lumbar"] @ spine_half
    neck_half = _half_bend(d["neck_flex"], d["neck_lat"], d["neck_twist"])
    f["neck"] = f["thorax"] @ neck_half
    f["head"] = f["neck"] @ neck_half
    for joint, frame in ((7, "lumbar"), (8, "thorax"), (9, "neck"), (10, "head")):
        bone(joint, f[frame])
    for side, s, (hip, knee, ankle), (shoulder, elbow, wrist) in (
        ("r", -1.0, (1, 2, 3), (14, 15, 16)),
        ("l", 1.0, (4, 5, 6), (11, 12, 13)),
    ):
        f[f"{side}_thigh"] = f["pelvis"] @ _hip(d[f"{side}_hip_flex"], d[f"{side}_hip_abd"], d[f"{side}_hip_rot"], s)
        f[f"{side}_shank"] = f[f"{side}_thigh"] @ rotation_x(np.deg2rad(-d[f"{side}_knee"]))
        f[f"{side}_upper_arm"] = f["thorax"] @ _shoulder(
            d[f"{side}_sh_flex"], d[f"{side}_sh_abd"], d[f"{side}_sh_rot"], s
        )
        f[f"{side}_forearm"] = f[f"{side}_upper_arm"] @ rotation_x(np.deg2rad(d[f"{side}_elbow"]))
        bone(hip, f["pelvis"])
        bone(knee, f[f"{side}_thigh"])
        bone(ankle, f[f"{side}_shank"])
        bone(shoulder, f["thorax"])
        bone(elbow, f[f"{side}_upper_arm"])
        bone(wrist, f[f"{side}_forearm"])
    if single:
        joints, f = joints[0], {k: v[0] for k, v in f.items()}
    return (joints, f) if return_frames else joints


def arm_ik(shoulder, thorax_rotation, target, upper_mm: float, fore_mm: float, side: str, swivel_deg=0.0):
    """Analytic two-link arm IK: shoulder and elbow angles that put the wrist at ``target``.

    shoulder, target: (F, 3) mm body-local; thorax_rotation: (F, 3, 3) (the ``thorax`` frame of
    ``forward_kinematics``); upper_mm / fore_mm: upper-arm and forearm lengths; side: 'l' or 'r'.
    swivel_deg: (F,) or scalar rotation of the elbow about the shoulder -> wrist axis, 0 = elbow as
    low (and slightly back) as possible, + = outward for a forward reach. Targets out of reach (or
    closer than the 150 deg elbow allows) are moved along the shoulder -> target ray.
    Returns (F, 4) degrees: ``sh_flex, sh_abd, sh_rot, elbow`` of that side (not clipped).
    """
    if side not in ("l", "r"):
        raise ValueError(f"side must be 'l' or 'r', got {side!r}")
    s = 1.0 if side == "l" else -1.0
    rt = np.swapaxes(np.asarray(thorax_rotation, dtype=np.float64), -1, -2)
    p = np.einsum("fij,fj->fi", rt, np.asarray(target, dtype=np.float64) - shoulder)
    l1, l2 = float(upper_mm), float(fore_mm)
    d_min = np.sqrt(l1**2 + l2**2 - 2 * l1 * l2 * np.cos(np.deg2rad(30.0))) + 1e-3
    dist = np.linalg.norm(p, axis=-1)
    u = p / np.maximum(dist, 1e-9)[:, None]
    dist = np.clip(dist, d_min, l1 + l2 - 1e-3)
    elbow = np.pi - np.arccos(np.clip((l1**2 + l2**2 - dist**2) / (2 * l1 * l2), -1.0, 1.0))
    alpha = np.arccos(np.clip((l1**2 + dist**2 - l2**2) / (2 * l1 * dist), -1.0, 1.0))
    ref = np.array([0.0, -0.3, -1.0]) / np.sqrt(1.09)
    n0 = ref - (u @ ref)[:, None] * u
    n0_norm = np.linalg.norm(n0, axis=-1, keepdims=True)
    n0 = np.where(n0_norm > 1e-6, n0 / np.maximum(n0_norm, 1e-12), np.array([-s, 0.0, 0.0]))
    m = s * np.cross(u, n0)
    psi = np.deg2rad(np.broadcast_to(np.asarray(swivel_deg, dtype=np.float64), dist.shape))[:, None]
    normal = np.cos(psi) * n0 + np.sin(psi) * m
    elbow_pos = l1 * (np.cos(alpha)[:, None] * u + np.sin(alpha)[:, None] * normal)
    arm = elbow_pos / l1
    swing_angle = np.arccos(np.clip(-arm[:, 2], -1.0, 1.0))
    h = np.hypot(arm[:, 0], arm[:, 1])
    ratio = np.where(h > 1e-9, swing_angle / np.maximum(h, 1e-9), 1.0)
    rotvec = np.stack([arm[:, 1] * ratio, -arm[:, 0] * ratio, np.zeros_like(h)], axis=-1)
    fore = (u * dist[:, None] - elbow_pos) / l2
    v = np.einsum("fji,fj->fi", axis_angle_to_matrix(rotvec), fore)
    twist = np.arctan2(-v[:, 0], v[:, 1]) * np.clip(np.sin(elbow) / 0.2, 0.0, 1.0)
    return np.degrees(np.stack([rotvec[:, 0], s * rotvec[:, 1], -s * twist, elbow], axis=-1))
