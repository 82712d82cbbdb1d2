"""The 15 Human3.6M action families, authored in joint-angle space with ``motion.MotionBuilder``.

Each family writes a right-handed sequence into the builder (angles in degrees, hips relative to the
world vertical, DOFs of ``kinematics.DOF_NAMES``) and sets ``m.support``; ``motion.sample_angles``
adds noise, clips to the joint limits and mirrors half of the sequences. Hand contacts (phone at
the ear, food to the mouth, hands on hips / knees / a partner) are solved by arm IK against body
landmarks given in segment frames (mm for a mean-sized body): ``x`` toward the subject's right,
``y`` forward, ``z`` up in the rest pose of that segment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from patchpose.synthetic.motion import MotionBuilder

__all__ = ["FAMILIES", "EATING_SEATED_FRACTION"]

EATING_SEATED_FRACTION = 0.3  # fraction of Eating sequences eaten on a chair
_X = {"r": 1.0, "l": -1.0}  # +x is the subject's right
_HIP = {"r": 1, "l": 4}  # hip joint of each side


# Wrist targets: landmark -> (segment, offset mm in that segment's frame for the RIGHT hand, elbow
# swivel range deg for ``kinematics.arm_ik``, chosen so the elbow sits where people put it).
_LANDMARKS = {
    "ear": ("head", (85, -15, -10), (90, 130)),
    "mouth": ("head", (30, 75, -110), (30, 70)),
    "face": ("head", (70, 140, -60), (20, 60)),
    "chin": ("head", (15, 70, -150), (20, 60)),
    "nape": ("head", (60, -90, 10), (192, 208)),
    "hip": ("pelvis", (190, -15, 110), (60, 95)),
    "pocket": ("pelvis", (150, 80, 20), (0, 30)),
    "behind": ("pelvis", (70, -170, 40), (-80, -60)),
    "crossed": ("thorax", (-135, 190, -240), (30, 50)),
    "across": ("thorax", (-90, 190, -310), (30, 50)),
    "chest": ("thorax", (70, 260, -250), (20, 70)),
    "waist": ("thorax", (130, 260, -360), (10, 50)),
    "knee": ("thigh", (-15, 70, -400), (10, 40)),
    "lap": ("thigh", (-25, 80, -200), (10, 40)),
}
_ORIGIN = {"head": 9, "pelvis": 0, "thorax": 8}


def _reach(m: MotionBuilder, side: str, where: str, jiggle_mm: float = 0.0) -> np.ndarray:
    """(F, 4) arm angles putting ``side``'s wrist at landmark ``where`` (+ smooth wander ``jiggle_mm``)."""
    j, f = m.frames()
    segment, offset, (lo, hi) = _LANDMARKS[where]
    origin = j[:, _HIP[side]] if segment == "thigh" else j[:, _ORIGIN[segment]]
    frame = f[f"{side}_thigh"] if segment == "thigh" else f[segment]
    target = m.point(frame, origin, np.multiply(offset, (_X[side], 1.0, 1.0)))
    if jiggle_mm:
        target = target + np.stack([m.smooth(jiggle_mm, 0.8, 3.0) for _ in range(3)], axis=1)
    return m.reach(side, target, m.uniform(lo, hi) + m.smooth(5.0))


def _gesture(m: MotionBuilder, side: str, amp_mm: float = 90.0, height: float = -220.0) -> np.ndarray:
    """Talking-hands: the wrist wanders in front of the chest."""
    j, f = m.frames()
    centre = np.array([120 * _X[side], 290, height])
    wander = np.stack([m.smooth(amp_mm, 0.7, 3.0) for _ in range(3)], axis=1) * [1.0, 0.8, 1.0]
    target = j[:, 8] + m.scale * np.einsum("fij,fj->fi", f["thorax"], centre + wander)
    return m.reach(side, target, 25.0 + m.smooth(10.0))


def _point(m: MotionBuilder, side: str, azimuth, elevation, straight: float = 0.99) -> np.ndarray:
    """Arm pointing along (azimuth: + outward, elevation: + up) deg in the thorax frame."""
    j, f = m.frames()
    az, el = np.deg2rad(azimuth) * np.ones(m.num_frames), np.deg2rad(elevation) * np.ones(m.num_frames)
    d = np.stack([_X[side] * np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)], axis=1)
    k = 14 if side == "r" else 11  # shoulder joint = upper-arm limb index
    reach = straight * (m.lengths[k] + m.lengths[k + 1])
    return m.reach(side, j[:, k] + reach * np.einsum("fij,fj->fi", f["thorax"], d), 10.0)


def _free_arm(m: MotionBuilder, side: str, options: dict[str, float], dwell_s: float = 5.0) -> None:
    """Blend ``side``'s arm over time between behaviours ('hang' keeps the current angles)."""
    names = list(options)
    weights = m.modes([options[n] for n in names], dwell_s)
    solved = {
        n: _gesture(m, side) if n == "gesture" else _reach(m, side, n)
        for k, n in enumerate(names)
        if n != "hang" and weights[:, k].max() > 0
    }
    base = weights[:, names.index("hang")] if "hang" in names else 0.0
    _mix(m, side, base, [(weights[:, k], solved[n]) for k, n in enumerate(names) if n in solved])


def _mix(m: MotionBuilder, side: str, current_weight, options: list) -> None:
    """Set ``side``'s arm to ``current_weight * current + sum(w * angles)`` over (w (F,), angles (F, 4))."""
    total = np.asarray(current_weight, dtype=np.float64) + np.zeros(m.num_frames)
    for weight, angles in options:
        total = total + weight
        m.set_arm(side, angles, weight / np.maximum(total, 1e-9))


def _variants(m: MotionBuilder, variants: list, probs, dwell_s: float, ramp_s: float = 0.8) -> None:
    """Blend whole-body variants (functions editing ``m``) that the sequence moves between."""
    weights, base, out = m.modes(probs, dwell_s, ramp_s), m.a.copy(), np.zeros_like(m.a)
    for k, edit in enumerate(variants):
        if weights[:, k].max() > 0:
            m.a = base.copy()
            edit(m)
            out += weights[:, k : k + 1] * m.a
    m.a = out


def _weight_shift(m: MotionBuilder, amount: float = 1.0) -> None:
    w = amount * np.tanh(m.smooth(1.0, 4.0, 12.0))
    m["root_roll"] += 4 * w
    m["spine_lat"] -= 3 * w
    m["l_knee"] += 12 * np.maximum(w, 0)
    m["r_knee"] += 12 * np.maximum(-w, 0)


def _seated(m: MotionBuilder) -> None:
    """Chair sitting: thighs near horizontal, knees flexed, torso upright / leaning, a leg style."""
    m.stand()
    m.support = "chair"
    for side in ("l", "r"):
        m[f"{side}_hip_flex"] = m.uniform(80, 100) + m.smooth(3, 3, 10)
        m[f"{side}_knee"] = m.uniform(80, 110) + m.smooth(5, 3, 10)
        m[f"{side}_hip_abd"] = m.uniform(3, 20)
        m[f"{side}_hip_rot"] = m.uniform(-15, 10)
    style = m.rng.choice(["plain", "crossed", "extended", "tucked"], p=[0.45, 0.2, 0.2, 0.15])
    if style == "crossed":
        m["r_hip_flex"], m["r_hip_abd"], m["r_knee"] = m.uniform(100, 115), m.uniform(-20, -8), m.uniform(75, 95)
    elif style == "extended":
        m["r_hip_flex"], m["r_knee"] = m.uniform(75, 85), m.uniform(35, 65)
    elif style == "tucked":
        m["l_knee"], m["r_knee"] = m.uniform(110, 130), m.uniform(105, 130)
    m["root_pitch"] = m.uniform(-15, 8) + m.smooth(3, 4, 12)
    m["spine_flex"] = m.uniform(-5, 30) + m.smooth(5, 4, 12)
    m["root_yaw"] += m.smooth(5, 4, 12)
    m.look(20)


def _standing(m: MotionBuilder, walk_p: float = 0.0) -> None:
    m.stand()
    if m.chance(walk_p):
        m.gait(m.uniform(0.55, 0.8), m.uniform(0.3, 0.6), 1 - m.events(6, 3))
        m.turn(m.uniform(-20, 20), 40)
    else:
        _weight_shift(m)
        m.turn(0, 30)


def directions(m: MotionBuilder) -> None:
    m.stand()
    m.turn(0, 60, (4, 12))
    m.gait(m.uniform(0.7, 0.9), m.uniform(0.3, 0.6), m.events(8, 2.5))
    pointing = m.events(m.uniform(3, 6), m.uniform(1.5, 3.5))
    azimuth, elevation = m.uniform(-30, 90) + m.smooth(30, 4, 10), m.uniform(-20, 25) + m.smooth(10, 3, 8)
    m["neck_twist"] -= 0.5 * azimuth * pointing
    m.look(15)
    m.set_arm("r", _point(m, "r", azimuth, elevation, m.uniform(0.93, 0.995)), pointing)
    _free_arm(m, "l", {"hang": 2, "hip": 1, "pocket": 1, "gesture": 1})


def discussion(m: MotionBuilder) -> None:
    _standing(m, walk_p=0.3)
    m.look(25)
    _free_arm(m, "r", {"gesture": 4, "hang": 1, "hip": 1}, 4.0)
    _free_arm(m, "l", {"gesture": 3, "hang": 2, "crossed": 1, "pocket": 1}, 4.0)


def eating(m: MotionBuilder) -> None:
    if m.chance(EATING_SEATED_FRACTION):
        _seated(m)
    else:
        _standing(m)
        m.look(10)
    bite = m.events(m.uniform(3, 6), m.uniform(1.0, 2.2))
    m["neck_flex"] += m.uniform(5, 20) * bite
    seated = m.support == "chair"
    m.set_arm("r", _reach(m, "r", "chest" if seated else "waist", 30.0))
    m.set_arm("r", _reach(m, "r", "mouth"), bite)
    m.set_arm("l", _reach(m, "l", "chest" if seated else "waist", 20.0), 1.0 if seated else 0.8)


def greeting(m: MotionBuilder) -> None:
    m.stand()
    m.turn(0, 35)
    m.look(20)
    m.gait(m.uniform(0.7, 0.9), m.uniform(0.4, 0.8), m.events(6, 2.5))
    weights = m.modes([1.2, 1.0, 0.8], 3.0, 0.6)  # wave, handshake, idle
    m["spine_flex"] += m.uniform(5, 20) * weights[:, 1]
    j, f = m.frames()
    wave_hz, wave_mm = m.uniform(1.5, 3.0), m.uniform(50, 110)
    hand = np.stack([300 + wave_mm * np.sin(2 * np.pi * wave_hz * m.t), 200 + 0 * m.t, m.uniform(60, 250) + 0 * m.t], 1)
    wave = m.reach("r", j[:, 8] + m.scale * np.einsum("fij,fj->fi", f["thorax"], hand), 30.0)
    shake = np.stack([110 + 0 * m.t, m.uniform(420, 500) + 0 * m.t, -300 + 30 * np.sin(2 * np.pi * 2 * m.t)], 1)
    shake = m.reach("r", j[:, 8] + m.scale * np.einsum("fij,fj->fi", f["thorax"], shake), 15.0)
    _mix(m, "r", weights[:, 2], [(weights[:, 0], wave), (weights[:, 1], shake)])
    _free_arm(m, "l", {"hang": 3, "gesture": 1, "hip": 1})


def phoning(m: MotionBuilder) -> None:
    _standing(m, walk_p=0.4)
    m.look(20)
    m.set_arm("r", _reach(m, "r", "ear"), 1 - 0.8 * m.events(45, 1.5))
    _free_arm(m, "l", {"hang": 2, "hip": 1, "pocket": 1, "across": 1, "gesture": 1}, 6.0)


def photo(m: MotionBuilder) -> None:
    m.stand()
    m.turn(0, 40)
    if m.chance(0.35):
        crouch = np.clip(m.events(8, 6) + m.chance(0.5), 0, 1)
        for side in ("l", "r"):
            m[f"{side}_hip_flex"] += m.uniform(45, 95) * crouch
            m[f"{side}_knee"] += m.uniform(60, 110) * crouch
        m["root_pitch"] += m.uniform(5, 25) * crouch
    else:
        _weight_shift(m)
    m["spine_lat"] += m.smooth(6, 3, 8)
    m["spine_twist"] += m.smooth(10, 3, 8)
    m.look(6)
    up = m.events(m.uniform(2, 5), m.uniform(2, 5))
    for side in ("r", "l"):
        m.set_arm(side, _reach(m, side, "chest", 20.0))
        m.set_arm(side, _reach(m, side, "face"), up)


def _pose_library(m: MotionBuilder) -> list:
    def arms_out(m):
        for s in ("l", "r"):
            m[f"{s}_sh_abd"], m[f"{s}_sh_flex"], m[f"{s}_elbow"] = (
                m.uniform(70, 105),
                m.uniform(-10, 40),
                m.uniform(0, 20),
            )

    def hands_on_hips(m):
        for s in ("l", "r"):
            m.set_arm(s, _reach(m, s, "hip"))

    def lunge(m):
        m["r_hip_flex"], m["r_knee"], m["r_hip_abd"] = m.uniform(55, 85), m.uniform(60, 95), m.uniform(0, 15)
        m["l_hip_flex"], m["l_knee"] = m.uniform(-25, -10), m.uniform(0, 25)
        m["spine_flex"] = m.uniform(-10, 15)
        m.set_arm("r", m.arm(m.uniform(60, 150), m.uniform(0, 30), 0, m.uniform(0, 30)))

    def arm_up(m):
        m.set_arm("r", m.arm(m.uniform(140, 175), m.uniform(0, 35), m.uniform(-20, 20), m.uniform(0, 30)))
        m.set_arm("l", _reach(m, "l", "hip"), m.chance(0.5))

    def both_up(m):
        for s in ("l", "r"):
            m.set_arm(s, m.arm(m.uniform(110, 170), m.uniform(20, 70), 0, m.uniform(0, 40)))

    def flex(m):
        for s in ("l", "r"):
            m.set_arm(s, m.arm(m.uniform(-5, 20), m.uniform(75, 100), m.uniform(-85, -60), m.uniform(100, 135)))

    def behind_head(m):
        for s in ("l", "r"):
            m.set_arm(s, _reach(m, s, "nape"))

    def stork(m):
        m["r_hip_flex"], m["r_knee"] = m.uniform(60, 100), m.uniform(70, 110)
        arms_out(m)

    def side_bend(m):
        m["spine_lat"], m["spine_twist"] = m.uniform(-25, 25), m.uniform(-30, 30)
        m.set_arm("l", m.arm(m.uniform(120, 170), m.uniform(60, 110), 0, m.uniform(0, 40)))

    return [arms_out, hands_on_hips, lunge, arm_up, both_up, flex, behind_head, stork, side_bend]


def posing(m: MotionBuilder) -> None:
    m.stand()
    m.turn(0, 25)
    m.look(15)
    library = _pose_library(m)
    chosen = m.rng.choice(len(library), size=4, replace=False)
    _variants(m, [library[i] for i in chosen], [1, 1, 1, 1], m.uniform(2.5, 5), 0.8)


def purchases(m: MotionBuilder) -> None:
    m.stand()
    m.turn(0, 40)
    m.gait(m.uniform(0.7, 0.9), m.uniform(0.5, 0.9), m.events(7, 3))
    m.look(15, 10)

    def reach(m):
        low = m.uniform(0, 1)
        m["root_pitch"] += 40 * low**1.5 + m.uniform(0, 8)
        m["spine_flex"] += 25 * low + m.uniform(0, 8)
        for s in ("l", "r"):
            m[f"{s}_knee"] += m.uniform(10, 60) * low
            m[f"{s}_hip_flex"] += m.uniform(5, 35) * low
        m["neck_flex"] += 15 * low
        m.set_arm(
            "r", _point(m, "r", m.uniform(-20, 30), m.uniform(-60, 30) * (1 - low) - 30 * low, m.uniform(0.85, 0.98))
        )

    def carry_bag(m):
        m.set_arm("r", m.arm(m.uniform(-10, 10), m.uniform(10, 25), m.uniform(0, 20), m.uniform(5, 35)))

    def carry_box(m):
        m["spine_flex"] -= m.uniform(0, 8)
        for s in ("l", "r"):
            m.set_arm(s, _reach(m, s, "waist"))

    def examine(m):
        m["neck_flex"] += m.uniform(15, 35)
        for s in ("l", "r"):
            m.set_arm(s, _reach(m, s, "chest", 25.0))

    _variants(m, [reach, carry_bag, carry_box, examine], [2, 1, 1, 1], m.uniform(2.5, 5))


def sitting(m: MotionBuilder) -> None:
    _seated(m)
    _free_arm(m, "r", {"lap": 3, "gesture": 2, "chin": 1, "ear": 1, "crossed": 1}, 5.0)
    _free_arm(m, "l", {"lap": 4, "gesture": 1, "crossed": 1, "knee": 1}, 5.0)


def sitting_down(m: MotionBuilder) -> None:
    m.stand()
    if m.chance(0.4):
        return _floor(m)
    m.support = "chair_transition"
    sit = m.modes([1.0, 1.5], m.uniform(2.5, 5.0), m.uniform(0.6, 1.2))[:, 1]
    sit = sit * sit * (3 - 2 * sit)  # ease in / out
    sit[-1] = 1.0  # the builder's trailing reference frame: fully seated (fits the chair)
    for side in ("l", "r"):
        m[f"{side}_hip_flex"] += (m.uniform(95, 115) - m[f"{side}_hip_flex"]) * sit
        m[f"{side}_knee"] += (m.uniform(100, 130) - m[f"{side}_knee"]) * sit
        m[f"{side}_hip_abd"] += m.uniform(0, 15) * sit
    lean_sit = m.uniform(0, 35)
    m["root_pitch"] += 25 * np.sin(np.pi * sit) + 0.4 * lean_sit * sit
    m["spine_flex"] += 20 * np.sin(np.pi * sit) + 0.6 * lean_sit * sit
    m.look(15)
    on_knees = np.clip(np.sin(np.pi * sit) + sit * m.chance(0.6), 0, 1)
    m.set_arm("r", _reach(m, "r", "lap"), sit)
    m.set_arm("l", _reach(m, "l", "lap"), sit)
    for side in ("l", "r"):
        m.set_arm(side, _reach(m, side, "knee"), on_knees)


def _floor_leg(m: MotionBuilder, reach: float) -> tuple[float, float]:
    """(world hip flexion, knee flexion) deg putting the ankle ``reach`` x leg length in front of the
    hip and 20 mm below it (planar two-link IK): feet on the floor, the knee as high as it must be."""
    l1, l2 = float(m.lengths[1]), float(m.lengths[2])
    d = reach * (l1 + l2)
    dist = np.hypot(d, 20.0)
    knee = 180.0 - np.degrees(np.arccos(np.clip((l1**2 + l2**2 - dist**2) / (2 * l1 * l2), -1, 1)))
    rise = np.degrees(np.arccos(np.clip((l1**2 + dist**2 - l2**2) / (2 * l1 * dist), -1, 1)) - np.arctan2(20.0, d))
    return 90.0 + rise, knee


def _floor(m: MotionBuilder) -> None:
    """Sitting on the floor: legs crossed, stretched or knees up; leaning back on the hands or not."""
    m.support = "floor"
    legs = m.rng.choice(["crossed", "stretched", "knees_up"])
    for s in ("l", "r"):
        if legs == "crossed":
            hip, abd, rot, knee = m.uniform(85, 95), m.uniform(45, 60), m.uniform(-80, -70), m.uniform(140, 150)
        else:
            hip, knee = _floor_leg(m, m.uniform(0.93, 0.995) if legs == "stretched" else m.uniform(0.62, 0.8))
            abd, rot = m.uniform(3, 15), m.uniform(-15, 5)
        m[f"{s}_hip_flex"], m[f"{s}_hip_abd"], m[f"{s}_hip_rot"], m[f"{s}_knee"] = hip, abd, rot, knee
    lean = m.modes([1.0, 1.0], m.uniform(3, 8))[:, 0] if legs != "knees_up" else np.ones(m.num_frames)
    m["root_pitch"] = -m.uniform(10, 30) * lean + m.uniform(0, 15) * (1 - lean)
    m["spine_flex"] = m.uniform(0, 25) * (1 - lean) + m.uniform(0, 15) * (legs == "knees_up") + m.smooth(4, 3, 10)
    m.look(25)
    if legs == "knees_up":
        lean = 1.0 - m.modes([1.0, 1.0], m.uniform(3, 8))[:, 0]  # hands: on the knees or behind
    yaw = np.deg2rad(m["root_yaw"])
    for side in ("l", "r"):  # hands on the floor behind (the pelvis sits FLOOR_PELVIS_MM above it)
        x, y = 200 * _X[side], -m.uniform(180, 260)
        floor = np.stack([x * np.cos(yaw) - y * np.sin(yaw), x * np.sin(yaw) + y * np.cos(yaw), 0 * yaw - 60], 1)
        behind = m.reach(side, m.scale * floor, m.uniform(130, 180))
        front = _reach(m, side, "knee" if legs == "knees_up" else "lap")
        m.set_arm(side, front, 1 - lean)
        m.set_arm(side, behind, lean)


def smoking(m: MotionBuilder) -> None:
    _standing(m, walk_p=0.3)
    m.look(20)
    puff = m.events(m.uniform(6, 12), m.uniform(1.5, 3.0))
    m.set_arm("r", _reach(m, "r", "chest", 30.0), m.uniform(0.3, 1.0))
    m.set_arm("r", _reach(m, "r", "mouth"), puff)
    _free_arm(m, "l", {"across": 3, "hang": 1, "pocket": 1, "hip": 1}, 8.0)


def waiting(m: MotionBuilder) -> None:
    m.stand()
    _weight_shift(m, 1.5)
    m.turn(0, 40)
    m.look(40, 8)
    arms = {"crossed": 2, "hip": 1, "behind": 1, "hang": 2, "pocket": 1}
    _free_arm(m, "r", arms, 7.0)
    _free_arm(m, "l", arms, 7.0)
    if m.chance(0.35):
        squat = m.events(12, m.uniform(2, 5), 0.8)
        for s in ("l", "r"):
            m[f"{s}_hip_flex"] += m.uniform(80, 110) * squat
            m[f"{s}_knee"] += m.uniform(100, 135) * squat
        m["root_pitch"] += m.uniform(15, 35) * squat
        for s in ("l", "r"):
            m.set_arm(s, _reach(m, s, "knee"), squat)


def walk_dog(m: MotionBuilder) -> None:
    m.stand()
    m.gait(m.uniform(0.8, 1.0), m.uniform(0.7, 1.1), 1 - m.uniform(0.5, 1.0) * m.events(6, 2.5))
    m.turn(m.uniform(-25, 25), 35)
    m["spine_flex"] += m.uniform(-8, 12)
    m["neck_flex"] += m.uniform(10, 30) * m.events(5, 2)
    m.look(15)
    m.set_arm(
        "r", m.arm(m.uniform(15, 45) + m.smooth(8, 0.5, 2), m.uniform(5, 20), 10, m.uniform(15, 45) + m.smooth(10))
    )


def walking(m: MotionBuilder) -> None:
    m.stand()
    m.gait(m.uniform(0.75, 1.05), m.uniform(0.8, 1.25))
    m.turn(m.uniform(-30, 30), 20)
    m.look(8)
    if m.chance(0.15):
        for side in ("l", "r"):
            m.set_arm(side, _reach(m, side, "pocket"))


def walk_together(m: MotionBuilder) -> None:
    m.stand()
    m.gait(m.uniform(0.6, 0.85), m.uniform(0.5, 0.85))
    m.turn(m.uniform(-15, 15), 20)
    m["neck_twist"] -= m.uniform(15, 45)  # toward the partner on the right
    m.look(12)
    if m.chance(0.4):
        m.set_arm("r", m.arm(m.uniform(10, 35), m.uniform(75, 100), 0, m.uniform(30, 70)), m.events(5, 4))
    _free_arm(m, "l", {"hang": 4, "gesture": 1}, 5.0)


FAMILIES = {
    "Directions": directions,
    "Discussion": discussion,
    "Eating": eating,
    "Greeting": greeting,
    "Phoning": phoning,
    "Photo": photo,
    "Posing": posing,
    "Purchases": purchases,
    "Sitting": sitting,
    "SittingDown": sitting_down,
    "Smoking": smoking,
    "Waiting": waiting,
    "WalkDog": walk_dog,
    "Walking": walking,
    "WalkTogether": walk_together,
}
