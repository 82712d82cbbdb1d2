"""Synthetic Human3.6M-like motion: 15 action families sampled in joint-angle space.

``sample_angles`` draws a sequence of joint angles (``patchpose.synthetic.kinematics`` order, degrees)
for one action: per-sequence parameters (speed, amplitude, style, dominant hand) and per-frame
variation (time along cycles, smoothly varying noise, events such as hand-to-mouth). The families
live in ``motion_families``; ``MotionBuilder`` is the toolkit they write with. ``sample_sequence``
runs forward kinematics for a subject and places the pose on the floor (and on a chair).

Frame (body-local, mm): z up, floor at z = 0, the subject faces about +y (the root yaw wanders and
turns within a sequence), +x is the subject's right. Horizontally the pelvis stays at the origin
(walking is in place; the world assembly adds a global yaw and translation), except in chair
transitions, where the feet stay planted and the origin is under the seated pelvis. Vertically:
standing / walking -> the lowest ankle is ``ANKLE_HEIGHT_MM`` above the floor in every frame; chair
sitting -> the feet reach the floor and the hip joints rest at most 40 mm (half the thigh radius)
above the seat top (the pelvis joint ~50 mm); floor sitting -> the pelvis ``FLOOR_PELVIS_MM``
(scaled) above the floor, raised where the feet need it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from patchpose.actions import ACTIONS, check_action
from patchpose.synthetic.body import H36M_MEAN_BONE_LENGTHS_MM, SubjectBody
from patchpose.synthetic.kinematics import (
    DOF_INDEX,
    NUM_DOFS,
    arm_ik,
    clip_to_limits,
    forward_kinematics,
    mirror_angles,
)
from patchpose.synthetic.motion_families import FAMILIES
from patchpose.synthetic.props import Box, make_chair

__all__ = [
    "ACTIONS",
    "FRAME_RATE_HZ",
    "ANKLE_HEIGHT_MM",
    "SUPPORTS",
    "AngleSequence",
    "PoseSequence",
    "MotionBuilder",
    "sample_angles",
    "sample_sequence",
]

FRAME_RATE_HZ = 50.0  # Human3.6M's capture rate; sequence time t = t0 + frame / FRAME_RATE_HZ
ANKLE_HEIGHT_MM = 80.0  # ankle joint above the floor when the foot is flat
FLOOR_PELVIS_MM = 100.0  # pelvis joint above the floor when sitting on it (scaled with the body)
SUPPORTS = ("standing", "chair", "chair_transition", "floor")
_CHAIR_TRIES, _CHAIR_MARGIN_MM = 12, 15.0  # chair fitting: attempts, joint clearance from its boxes
# Per-DOF standard deviation (deg) of the smooth per-frame noise added to every family.
_NOISE_SD = {"root": 1.0, "spine": 2.0, "neck": 4.0, "sh": 4.0, "elbow": 4.0, "hip": 2.0, "knee": 2.0}


@dataclass(frozen=True)
class AngleSequence:
    """Sampled joint angles: ``angles_deg`` (F, 25) degrees within ``JOINT_LIMITS_DEG``; ``support``
    one of ``SUPPORTS`` (how ``sample_sequence`` places the pose); ``mirrored``: the dominant hand is
    the left one; ``reference_deg`` (25,): the pose just after the sequence, fully seated for
    ``chair_transition`` (the chair is fitted to it)."""

    action: str
    angles_deg: np.ndarray
    support: str
    mirrored: bool
    reference_deg: np.ndarray


@dataclass(frozen=True)
class PoseSequence:
    """A posed sequence: ``joints`` (F, 17, 3) mm in the body-local frame (module docstring),
    ``props`` (the chair's boxes, same frame, static over the sequence; empty if none),
    ``support`` (``SUPPORTS``) and the ``angles_deg`` (F, 25) it was posed from."""

    action: str
    joints: np.ndarray
    props: tuple[Box, ...]
    support: str
    angles_deg: np.ndarray

    def __post_init__(self) -> None:
        for field in ("joints", "angles_deg"):
            value = np.array(getattr(self, field), dtype=np.float64)
            value.setflags(write=False)
            object.__setattr__(self, field, value)
        if self.joints.ndim != 3 or self.joints.shape[1:] != (17, 3):
            raise ValueError(f"joints must be (F, 17, 3) mm, got {self.joints.shape}")


class MotionBuilder:
    """Mutable (F, 25) angle buffer plus the helpers the action families write with.

    The buffer holds ``num_frames + 1`` frames: the last one is a reference frame (time just after the
    sequence) that chair-transition families force to the fully seated pose, so the chair fits even a
    sequence that never sits; ``sample_angles`` splits it off.
    ``m["r_elbow"]`` is the (F + 1,) column of that DOF (deg; assignment broadcasts). Hip angles are
    authored relative to the world vertical: ``resolved()`` adds the root pitch / roll to the hips so
    that tilting the pelvis does not swing the legs. Offsets of body landmarks are in mm for a
    mean-sized body and scale with the subject (``scale``). Right is the dominant side.
    """

    def __init__(self, body: SubjectBody, num_frames: int, rng: np.random.Generator, frame_step: int = 1):
        self.body, self.rng, self.num_frames = body, rng, num_frames + 1
        self.lengths = np.asarray(body.bone_lengths_mm, dtype=np.float64)
        self.scale = float(self.lengths.sum() / H36M_MEAN_BONE_LENGTHS_MM.sum())
        self.t = rng.uniform(0.0, 100.0) + np.arange(self.num_frames) * (frame_step / FRAME_RATE_HZ)  # s
        self.a = np.zeros((self.num_frames, NUM_DOFS))
        self.support = "standing"

    def __getitem__(self, name: str) -> np.ndarray:
        return self.a[:, DOF_INDEX[name]]

    def __setitem__(self, name: str, value) -> None:
        self.a[:, DOF_INDEX[name]] = value

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def smooth(self, sd: float, min_period_s: float = 1.0, max_period_s: float = 6.0, n: int = 3) -> np.ndarray:
        """(F,) smooth zero-mean noise (sum of ``n`` random sinusoids), standard deviation ~``sd``."""
        freq = 1.0 / self.rng.uniform(min_period_s, max_period_s, size=n)
        phase = self.rng.uniform(0.0, 2 * np.pi, size=n)
        return sd * np.sqrt(2.0 / n) * np.sin(2 * np.pi * self.t[:, None] * freq + phase).sum(axis=1)

    def events(self, mean_gap_s: float, duration_s: float, ramp_s: float = 0.5) -> np.ndarray:
        """(F,) envelope in [0, 1]: episodes of ``duration_s`` (+-30 %) with raised-cosine ramps,
        starting at random with ``mean_gap_s`` between starts."""
        t0, t1 = self.t[0] - duration_s - mean_gap_s, self.t[-1] + ramp_s
        starts = t0 + np.cumsum(self.rng.exponential(mean_gap_s, size=int((t1 - t0) / mean_gap_s * 2) + 4))
        starts = starts[starts < t1]
        ends = starts + duration_s * self.rng.uniform(0.7, 1.3, size=starts.size)
        envelope = np.zeros(self.num_frames)
        spans = np.searchsorted(self.t, np.stack([starts, ends], axis=1))
        for start, end, (lo, hi) in zip(starts, ends, spans, strict=True):
            x = np.minimum(self.t[lo:hi] - start, end - self.t[lo:hi]) / ramp_s
            envelope[lo:hi] = np.maximum(envelope[lo:hi], 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0)))
        return envelope

    def modes(self, weights, mean_dwell_s: float, ramp_s: float = 0.6) -> np.ndarray:
        """(F, K) soft one-hot weights of K modes visited at random (probabilities ``weights``),
        dwelling ~``mean_dwell_s`` each, crossfading over ``ramp_s``; rows sum to 1."""
        p = np.asarray(weights, dtype=np.float64) / np.sum(weights)
        t0, t1 = self.t[0] - ramp_s, self.t[-1] + ramp_s
        gaps = self.rng.exponential(mean_dwell_s, size=int((t1 - t0) / mean_dwell_s * 3) + 3)
        knots = np.concatenate([[t0], np.minimum(t0 + np.cumsum(gaps), t1), [t1]])
        state = self.rng.choice(p.size, size=knots.size - 1, p=p)  # the mode of each [knot, next knot)
        time_in = np.diff(knots)[:, None] * (state[:, None] == np.arange(p.size))  # (knots - 1, K)
        integral = np.concatenate([np.zeros((1, p.size)), np.cumsum(time_in, axis=0)])  # time spent so far
        lo, hi = self.t - ramp_s, self.t + ramp_s  # box window: the share of it spent in each mode
        out = np.stack(
            [np.interp(hi, knots, integral[:, k]) - np.interp(lo, knots, integral[:, k]) for k in range(p.size)], 1
        )
        return out / (2 * ramp_s)

    def stand(self) -> None:
        """A relaxed standing posture with a per-sequence style."""
        u = self.uniform
        for side in ("l", "r"):
            self[f"{side}_hip_flex"] = u(0, 6)
            self[f"{side}_hip_abd"] = u(2, 8)
            self[f"{side}_hip_rot"] = u(-10, 5)
            self[f"{side}_knee"] = u(2, 10)
            self[f"{side}_sh_flex"] = u(-5, 8)
            self[f"{side}_sh_abd"] = u(6, 14)
            self[f"{side}_sh_rot"] = u(5, 25)
            self[f"{side}_elbow"] = u(5, 25)
        self["spine_flex"], self["neck_flex"], self["root_pitch"] = u(-3, 8), u(-5, 12), u(-3, 4)

    def gait(self, freq_hz: float, amp: float, envelope=1.0) -> None:
        """Add a gait cycle (stride ``freq_hz``, amplitude factor ``amp``, optional (F,) envelope):
        hips and knees half a cycle apart between the legs, arms swinging opposite, pelvis rotation."""
        phi = 2 * np.pi * freq_hz * self.t + self.uniform(0, 2 * np.pi)
        e = amp * np.asarray(envelope, dtype=np.float64)
        for side, shift in (("r", 0.0), ("l", np.pi)):
            p = phi + shift
            self[f"{side}_hip_flex"] += e * (4 + 22 * np.sin(p))
            swing = np.maximum(0.0, np.cos(p + 0.25 * np.pi)) ** 2
            stance = np.maximum(0.0, np.cos(2 * (p - 0.7 * np.pi))) ** 2 * (np.cos(p - 0.7 * np.pi) > 0)
            self[f"{side}_knee"] += e * (58 * swing + 14 * stance)
            self[f"{side}_sh_flex"] += e * 24 * np.sin(p + np.pi)
            self[f"{side}_elbow"] += e * 9 * (1 + np.sin(p + np.pi))
        self["root_yaw"] += e * 6 * np.sin(phi)
        self["spine_twist"] -= e * 9 * np.sin(phi)
        self["root_roll"] += e * 3 * np.sin(2 * phi)
        self["root_pitch"] += e * 3

    def turn(self, rate_deg_s: float = 0.0, wander_deg: float = 0.0, period_s=(3.0, 12.0)) -> None:
        """Root yaw: a steady turn plus a slow wander (deg)."""
        self["root_yaw"] += rate_deg_s * (self.t - self.t[0]) + self.smooth(wander_deg, *period_s)

    def look(self, twist_sd: float, flex_sd: float = 6.0, period_s=(1.5, 6.0)) -> None:
        self["neck_twist"] += self.smooth(twist_sd, *period_s)
        self["neck_flex"] += self.smooth(flex_sd, *period_s)
        self["neck_lat"] += self.smooth(0.3 * flex_sd, *period_s)

    def resolved(self) -> np.ndarray:
        """(F, 25) angles with the root tilt compensated at the hips, clipped to the joint limits."""
        a = self.a.copy()
        for side, sign in (("l", -1.0), ("r", 1.0)):
            a[:, DOF_INDEX[f"{side}_hip_flex"]] += self["root_pitch"]
            a[:, DOF_INDEX[f"{side}_hip_abd"]] += sign * self["root_roll"]
        return clip_to_limits(a)

    def frames(self):
        """``forward_kinematics`` (joints, frames) of the current resolved angles, pelvis at the origin."""
        return forward_kinematics(self.resolved(), self.lengths, return_frames=True)

    def point(self, frame: np.ndarray, origin: np.ndarray, offset_mm) -> np.ndarray:
        """(F, 3) body-local points ``origin + frame @ (scale * offset_mm)`` (offset in the segment frame)."""
        return origin + self.scale * np.einsum("fij,j->fi", frame, np.asarray(offset_mm, dtype=np.float64))

    def reach(self, side: str, target: np.ndarray, swivel_deg=20.0) -> np.ndarray:
        """(F, 4) ``sh_flex, sh_abd, sh_rot, elbow`` putting ``side``'s wrist at ``target`` (F, 3)."""
        joints, frames = self.frames()
        shoulder, upper = (14, 14) if side == "r" else (11, 11)
        return arm_ik(joints[:, shoulder], frames["thorax"], target, self.lengths[upper], self.lengths[upper + 1],
                      side, swivel_deg)  # fmt: skip

    @staticmethod
    def arm(flex, abd, rot, elbow) -> np.ndarray:
        """(..., 4) arm angles from broadcastable degrees."""
        return np.stack(np.broadcast_arrays(flex, abd, rot, elbow), axis=-1).astype(np.float64)

    def set_arm(self, side: str, angles, weight=1.0) -> None:
        """Blend ``side``'s (flex, abd, rot, elbow) towards ``angles`` (4,) or (F, 4) by ``weight`` (F,)."""
        w = np.asarray(weight, dtype=np.float64)[..., None] * np.ones((self.num_frames, 1))
        cols = [DOF_INDEX[f"{side}_{n}"] for n in ("sh_flex", "sh_abd", "sh_rot", "elbow")]
        self.a[:, cols] = (1.0 - w) * self.a[:, cols] + w * np.asarray(angles, dtype=np.float64)

    def finish(self) -> np.ndarray:
        """Add the per-frame smooth noise and small jitter; return resolved (clipped) angles (F, 25)."""
        for name, i in DOF_INDEX.items():
            key = name.split("_")[0] if name.split("_")[0] in _NOISE_SD else name.split("_")[1]
            sd = _NOISE_SD.get(key, 1.0) * (0.0 if name == "root_yaw" else 1.0)
            self.a[:, i] += self.smooth(sd, 0.8, 4.0) + self.rng.normal(0.0, 0.1 * sd, self.num_frames)
        return self.resolved()


def _check_args(action: str, body: SubjectBody, num_frames: int, rng: np.random.Generator, frame_step: int) -> None:
    check_action(action)
    if not isinstance(body, SubjectBody):
        raise ValueError(f"body must be a SubjectBody, got {type(body).__name__}")
    for name, value in (("num_frames", num_frames), ("frame_step", frame_step)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")


def sample_angles(
    action: str, body: SubjectBody, num_frames: int, rng: np.random.Generator, *, frame_step: int = 1
) -> AngleSequence:
    """Joint angles (F = ``num_frames``, 25) deg of one sequence of ``action`` for ``body``, one frame
    every ``frame_step`` frames of the ``FRAME_RATE_HZ`` motion (e.g. 64 as in the Human3.6M test
    protocol: poses far apart in time, nearly independent; 1: smooth consecutive frames).

    The body matters for the hand contacts (phone at the ear, hands on the knees...), solved by IK.
    Half of the sequences (at random) are mirrored so the left hand leads. Deterministic for ``rng``.
    """
    _check_args(action, body, num_frames, rng, frame_step)
    m = MotionBuilder(body, int(num_frames), rng, int(frame_step))
    FAMILIES[action](m)
    angles = m.finish()
    if m.support not in SUPPORTS:
        raise AssertionError(f"family {action} set an unknown support {m.support!r}")
    mirrored = m.chance(0.5)
    if mirrored:
        angles = mirror_angles(angles)
    angles.setflags(write=False)
    return AngleSequence(action, angles[:-1], m.support, mirrored, angles[-1])


def _place(joints: np.ndarray, reference: np.ndarray, support: str, body: SubjectBody, rng: np.random.Generator):
    """Move root-relative joints (F, 17, 3) onto the floor / chair (``reference`` (17, 3): the seated
    pose of a chair transition); returns (joints, props)."""
    ankle_z = joints[:, [3, 6], 2].min(axis=1)
    scale = float(np.sum(body.bone_lengths_mm) / H36M_MEAN_BONE_LENGTHS_MM.sum())
    if support == "standing":
        return joints + np.stack([0 * ankle_z, 0 * ankle_z, ANKLE_HEIGHT_MM - ankle_z], axis=-1)[:, None], ()
    if support == "floor":
        height = max(FLOOR_PELVIS_MM * scale, float(np.max(0.6 * ANKLE_HEIGHT_MM - ankle_z)))
        return joints + np.array([0.0, 0.0, height]), ()
    clearance = min(0.5 * float(body.limb_radii_mm[1]), 40.0)  # hip joints above the seat top
    if support == "chair":  # constant pelvis: the feet reach the floor in the frame they reach lowest
        joints = joints + np.array([0.0, 0.0, float(np.max(ANKLE_HEIGHT_MM - ankle_z))])
        seat = joints[0, 0].copy()
    else:  # chair_transition: feet planted where the seated reference pose has them
        ref_mid = reference[[3, 6], :2].mean(axis=0)
        shift = np.concatenate([ref_mid - joints[:, [3, 6], :2].mean(axis=1), ANKLE_HEIGHT_MM - ankle_z[:, None]], 1)
        joints = joints + shift[:, None]
        reference = reference + [0.0, 0.0, ANKLE_HEIGHT_MM - reference[[3, 6], 2].min()]
        joints = np.concatenate([joints, reference[None]])  # the seat must clear the reference's hips too
        seat = reference[0]
    seat_top = float(joints[:, [1, 4], 2].mean(axis=1).min()) - clearance
    thigh = float(body.bone_lengths_mm[1])
    torso_y = joints[:, [0, 7, 8], 1].min() - seat[1] if support == "chair" else 0.0
    back = float(body.limb_radii_mm[7]) - min(float(torso_y), 0.0) + rng.uniform(10.0, 50.0)
    min_width = 2 * (float(body.bone_lengths_mm[0]) + float(body.limb_radii_mm[1])) + 20.0
    best, best_hits = (), np.inf
    for _ in range(_CHAIR_TRIES):  # a chair no joint pokes into (hanging hands, tucked feet), else the best one
        chair = make_chair(
            seat_top,
            seat_width_mm=max(min_width, rng.uniform(400.0, 520.0) * scale),
            seat_depth_mm=back + rng.uniform(0.3, 0.65) * thigh,
            back_y_mm=-back,
            backrest_height_mm=rng.uniform(350.0, 500.0) * scale,
            centre_xy_mm=seat[:2],
        )
        hits = sum(int(box.contains(joints, _CHAIR_MARGIN_MM).sum()) for box in chair)
        if hits < best_hits:
            best, best_hits = chair, hits
        if hits == 0:
            break
    return (joints if support == "chair" else joints[:-1]), best


def sample_sequence(
    action: str, body: SubjectBody, num_frames: int, rng: np.random.Generator, *, frame_step: int = 1
) -> PoseSequence:
    """One sequence of ``action`` posed for ``body``: ``num_frames`` frames, ``frame_step`` frames of the
    ``FRAME_RATE_HZ`` motion apart (see ``sample_angles``), placed in the body-local world frame
    (module docstring), with the chair for chair-sitting sequences. Deterministic for ``rng``;
    ``ValueError`` for an unknown action (listing the 15) or a bad argument."""
    angles = sample_angles(action, body, num_frames, rng, frame_step=frame_step)
    joints = forward_kinematics(angles.angles_deg, body)
    reference = forward_kinematics(angles.reference_deg, body)
    joints, props = _place(joints, reference, angles.support, body, rng)
    return PoseSequence(action, joints, props, angles.support, angles.angles_deg)
