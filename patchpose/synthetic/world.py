"""Assemble the synthetic world: subjects, sequences, placement, Human3.6M cameras, crops, rendering.

For every sequence of a split (``plan.plan_split``) the subject's poses
(``motion.sample_sequence``, body-local frame) are rotated by a random yaw and
placed on the floor within ``placement_radius_mm`` of the capture-volume
centre (where the four cameras' optical axes meet, on the floor z = 0) of the
Human3.6M world frame (mm, z up). Each pose is seen from every configured
camera: the joints are projected through the real camera (with Human3.6M's
distortion), a square person-centred crop is laid around them (the split's
person box, ``world["person_box"]``: by default the ground-truth box of
``crop_geometry.person_crop_affine``, or a jittered one, ``patchpose.person_box``)
and one ray per crop pixel is cast through the distorted camera
(``camera.pixel_rays``), so the rendered image, the stored 2D joints and the
stored camera + crop affine agree exactly.

Randomness: the subject's body and clothing come from ``stream(seed, 'body' |
'appearance', subject)`` and do not depend on the split or the sizes (with ``outfits:
per_sequence`` each sequence's clothing comes from ``stream(seed, 'appearance', subject,
action, subaction)`` instead; the body stays the subject's); each
sequence from ``stream(seed, 'sequence', subject, action, subaction)``; each
frame's light, background and noise from ``stream(seed, 'frame', ...)``; a
jittered person box's draws from ``stream(box seed, 'person_box', subject,
action, subaction, camera, pose)`` (so they never change the frame's other draws).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np

from patchpose.camera import Camera, h36m_camera, pixel_rays, project, world_to_camera
from patchpose.crop_geometry import apply_affine, crop_pixel_grid, invert_affine
from patchpose.person_box import GROUND_TRUTH, box_affines
from patchpose.rng import stream
from patchpose.synthetic.appearance import Appearance, make_appearance, make_background, sample_lighting
from patchpose.synthetic.body import SubjectBody, make_subject
from patchpose.synthetic.motion import sample_sequence
from patchpose.synthetic.plan import SequencePlan
from patchpose.synthetic.primitives import OrientedBox, body_primitives
from patchpose.synthetic.props import Box
from patchpose.synthetic.render import Cues, Rays, RenderResult, render

__all__ = [
    "PLAIN_BACKGROUND",
    "Subject",
    "FrameScene",
    "make_world_subject",
    "capture_centre",
    "sequence_scenes",
    "scene_rays",
    "scene_primitives",
    "scene_conditions",
    "render_scene",
    "render_sequence",
]

PLAIN_BACKGROUND = (128, 128, 128)  # RGB with clutter switched off
_CHAIR_COLOUR = (0.42, 0.27, 0.16)


@dataclass(frozen=True)
class Subject:
    """A synthetic subject: shape and clothing (fixed per subject and seed)."""

    name: str
    body: SubjectBody
    appearance: Appearance


def make_world_subject(seed: int, name: str, front_print: bool = False) -> Subject:
    """The subject ``name`` of the world with master seed ``seed`` (``front_print``: a print on the top's front)."""
    body = make_subject(name, stream(seed, "body", name))
    return Subject(name, body, make_appearance(stream(seed, "appearance", name), front_print=front_print))


@cache
def capture_centre(subject: str) -> tuple[float, float, float]:
    """Point on the floor (z = 0, world mm) under the least-squares meeting point of the subject's
    four camera axes: the centre of that capture session's volume."""
    normal_sum, rhs = np.zeros((3, 3)), np.zeros(3)
    for camera_id in ("54138969", "55011271", "58860488", "60457274"):
        camera = h36m_camera(subject, camera_id)
        axis = camera.rotation.T @ np.array([0.0, 0.0, 1.0])
        projector = np.eye(3) - np.outer(axis, axis)
        normal_sum += projector
        rhs += projector @ camera.centre
    x, y, _ = np.linalg.solve(normal_sum, rhs)
    return float(x), float(y), 0.0


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _camera_boxes(boxes: tuple[Box, ...], camera: Camera) -> list[OrientedBox]:
    """World-frame boxes -> renderable boxes in the camera frame."""
    return [
        OrientedBox(
            centre=world_to_camera(box.centre, camera.rotation, camera.centre),
            half_size=box.half_size,
            rotation=camera.rotation @ box.rotation,
            colour=_CHAIR_COLOUR,
            name=box.name,
        )
        for box in boxes
    ]


@dataclass(frozen=True, eq=False)
class FrameScene:
    """One frame to render: a posed subject seen by one camera through one crop.

    joints_cam: (17, 3) mm camera frame. joints_px: (17, 2) original-image px. affine: (2, 3) crop px ->
    original px. boxes: props in the camera frame. rng: the frame's own stream (light, background, noise).
    """

    subject: Subject
    camera: Camera
    pose: int
    joints_cam: np.ndarray
    joints_px: np.ndarray
    affine: np.ndarray
    boxes: tuple[OrientedBox, ...]
    rng: np.random.Generator


def scene_rays(scene: FrameScene, frame_size: int) -> Rays:
    """One unit ray per crop pixel centre, cast through the distorted camera (camera frame)."""
    grid = crop_pixel_grid(scene.affine, frame_size)
    return Rays(pixel_rays(grid, scene.camera.intrinsics, scene.camera.distortion))


def scene_primitives(scene: FrameScene) -> list:
    """The body's primitives and the props, camera frame."""
    return body_primitives(scene.joints_cam, scene.subject.body, scene.subject.appearance) + list(scene.boxes)


def scene_conditions(scene: FrameScene, world: dict[str, Any]):
    """Draw the frame's lighting and background from its stream; returns (lighting, background, cues).
    The light falls off as ``world["depth_falloff"]`` powers of the distance from the camera, the exposure
    set for the subject's pelvis, joint 0 (no draw: the stream is the same for every falloff)."""
    size = world["frame_size"]
    lighting = sample_lighting(
        scene.rng,
        up=scene.camera.rotation @ np.array([0.0, 0.0, 1.0]),
        dim_fraction=world["dim_light_fraction"],
        noise_sigma_range=(world["noise_sigma"], world["noise_sigma"]),
    )
    pelvis_mm = float(np.linalg.norm(scene.joints_cam[0]))
    lighting = replace(lighting, falloff=float(world["depth_falloff"]), reference_mm=pelvis_mm)
    if world["clutter"]:
        background = make_background(size, size, scene.rng)
    else:
        background = np.broadcast_to(np.array(PLAIN_BACKGROUND, np.uint8), (size, size, 3)).copy()
    return lighting, background, Cues(texture=world["texture_cue"], shading=world["shading_cue"])


def render_scene(scene: FrameScene, world: dict[str, Any]) -> RenderResult:
    """Render one frame: rays, primitives, conditions, ray-cast (in that order of stream draws)."""
    rays = scene_rays(scene, world["frame_size"])
    primitives = scene_primitives(scene)
    lighting, background, cues = scene_conditions(scene, world)
    return render(primitives, rays, lighting, background, scene.rng, cues)


def sequence_scenes(plan: SequencePlan, world: dict[str, Any], seed: int) -> Iterator[FrameScene]:
    """Every frame of one sequence, camera-major then pose: the subject's poses placed in the world
    (random yaw, position within ``placement_radius_mm``), seen by each configured camera through the
    split's person box ``world["person_box"]`` (``synthetic.params.world_params_for_split``; absent, as in
    the raw ``dataset.synthetic`` block: ground truth)."""
    person_box = world.get("person_box", GROUND_TRUTH)
    front_print = world.get("front_print", False)
    subject = make_world_subject(seed, plan.subject, front_print)
    if world.get("outfits", "per_subject") == "per_sequence":  # the body stays the subject's
        outfit = make_appearance(stream(seed, "appearance", plan.subject, plan.action, plan.subaction),
                                 front_print=front_print)  # fmt: skip
        subject = Subject(subject.name, subject.body, outfit)
    rng = stream(seed, "sequence", plan.subject, plan.action, plan.subaction)
    spacing = world["pose_spacing_frames"]
    sequence = sample_sequence(plan.action, subject.body, plan.num_poses, rng, frame_step=spacing)
    yaw = rng.uniform(0.0, 2 * np.pi)
    radius = world["placement_radius_mm"] * np.sqrt(rng.uniform())
    angle = rng.uniform(0.0, 2 * np.pi)
    translation = np.array(capture_centre(plan.subject)) + radius * np.array([np.cos(angle), np.sin(angle), 0.0])
    joints_world = sequence.joints @ _yaw_matrix(yaw).T + translation
    boxes_world = tuple(box.transformed(yaw, translation) for box in sequence.props)
    for camera_id in world["cameras"]:
        camera = h36m_camera(plan.subject, str(camera_id))
        joints_cam = world_to_camera(joints_world, camera.rotation, camera.centre)
        joints_px = project(joints_cam, camera.intrinsics, camera.distortion)
        names = [(plan.subject, plan.action, plan.subaction, int(camera_id), pose) for pose in range(plan.num_poses)]
        affines = box_affines(joints_px, person_box, world["crop_margin"], world["frame_size"], names)
        boxes = tuple(_camera_boxes(boxes_world, camera))
        for pose in range(plan.num_poses):
            frame_rng = stream(seed, "frame", plan.subject, plan.action, plan.subaction, int(camera_id), pose)
            yield FrameScene(subject, camera, pose, joints_cam[pose], joints_px[pose], affines[pose], boxes, frame_rng)


def render_sequence(plan: SequencePlan, world: dict[str, Any], seed: int, subject_index: int, action_index: int):
    """Render one sequence from every configured camera.

    Returns a batch dict of the dataset format's per-frame fields (docs/data_format.md), frames ordered
    camera-major then pose: (num_poses x cameras) rows.
    """
    batch: dict[str, list] = {}
    for scene in sequence_scenes(plan, world, seed):
        result = render_scene(scene, world)
        camera = scene.camera
        row = {
            "frames": result.rgb,
            "part_labels": result.labels,
            "joints_2d": apply_affine(invert_affine(scene.affine), scene.joints_px[None])[0],
            "joints_3d": scene.joints_cam,
            "crop_affine": scene.affine,
            "camera_intrinsics": camera.intrinsics,
            "camera_distortion": camera.distortion,
            "camera_rotation": camera.rotation,
            "camera_centre": camera.centre,
            "image_size": (camera.res_w, camera.res_h),
            "subject": subject_index,
            "action": action_index,
            "subaction": plan.subaction,
            "camera_id": int(camera.camera_id),
            "frame_index": scene.pose * world["pose_spacing_frames"],
        }
        for key, value in row.items():
            batch.setdefault(key, []).append(value)
    return {key: np.stack([np.asarray(v) for v in values]) for key, values in batch.items()}
