"""Props of the synthetic world: yaw-rotated boxes and the chair built from them.

All coordinates are the body-local frame of ``patchpose.synthetic.kinematics`` (mm, z up, floor at
z = 0, the subject faces +y, +x is the subject's right). Boxes only rotate about the vertical, so the
world assembly moves them with the subject by a yaw and a translation (``Box.transformed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Box", "make_chair"]


@dataclass(frozen=True)
class Box:
    """A box: ``centre`` (3,) mm, ``half_size`` (3,) mm along its own axes (all > 0), ``yaw`` rad
    about +z (box axes = ``rotation`` columns, box -> body-local frame). ``name`` labels the part."""

    centre: np.ndarray
    half_size: np.ndarray
    yaw: float = 0.0
    name: str = "box"

    def __post_init__(self) -> None:
        for field in ("centre", "half_size"):
            value = np.array(getattr(self, field), dtype=np.float64)
            if value.shape != (3,) or not np.all(np.isfinite(value)):
                raise ValueError(f"Box {self.name}: {field} must be 3 finite mm, got {value}")
            value.setflags(write=False)
            object.__setattr__(self, field, value)
        if np.any(self.half_size <= 0):
            raise ValueError(f"Box {self.name}: half_size must be > 0 mm, got {self.half_size}")
        if not np.isfinite(self.yaw):
            raise ValueError(f"Box {self.name}: yaw must be finite rad, got {self.yaw}")
        object.__setattr__(self, "yaw", float(self.yaw))

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) rotation about z by ``yaw``: box axes -> body-local frame."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    def corners(self) -> np.ndarray:
        """(8, 3) mm corner points in the body-local frame."""
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        return self.centre + (signs * self.half_size) @ self.rotation.T

    def contains(self, points, margin_mm: float = 0.0) -> np.ndarray:
        """(..., 3) mm points -> (...,) bool: inside the box grown by ``margin_mm``."""
        local = (np.asarray(points, dtype=np.float64) - self.centre) @ self.rotation
        return np.all(np.abs(local) <= self.half_size + margin_mm, axis=-1)

    def transformed(self, yaw: float, translation) -> Box:
        """This box after rotating the frame by ``yaw`` rad about +z (through the origin) and then
        translating by ``translation`` (3,) mm (e.g. the subject's global placement)."""
        c, s = np.cos(yaw), np.sin(yaw)
        rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        centre = rz @ self.centre + np.asarray(translation, dtype=np.float64)
        return Box(centre, self.half_size, self.yaw + float(yaw), self.name)


def make_chair(
    seat_height_mm: float,
    seat_width_mm: float = 460.0,
    seat_depth_mm: float = 440.0,
    *,
    back_y_mm: float = -150.0,
    seat_thickness_mm: float = 40.0,
    backrest_height_mm: float = 420.0,
    backrest_thickness_mm: float = 30.0,
    leg_width_mm: float = 35.0,
    centre_xy_mm=(0.0, 0.0),
) -> tuple[Box, ...]:
    """A chair under a subject sitting at ``centre_xy_mm`` facing +y, in the body-local frame.

    seat_height_mm: height of the seat's TOP surface above the floor (z = 0), mm.
    The seat spans ``back_y_mm .. back_y_mm + seat_depth_mm`` in y relative to ``centre_xy_mm`` (the
    pelvis's horizontal position; negative = behind it) and ``seat_width_mm`` centred in x.
    Returns ``(seat, backrest, leg, leg, leg, leg)``: the backrest stands on the seat's back edge
    (behind the pelvis) and rises ``backrest_height_mm`` above the seat top; the four legs run from the
    floor to the seat's underside at its corners.
    """
    sizes = dict(
        seat_width_mm=seat_width_mm,
        seat_depth_mm=seat_depth_mm,
        seat_thickness_mm=seat_thickness_mm,
        backrest_height_mm=backrest_height_mm,
        backrest_thickness_mm=backrest_thickness_mm,
        leg_width_mm=leg_width_mm,
    )
    bad = [f"{k}={v}" for k, v in sizes.items() if not (np.isfinite(v) and v > 0)]
    if bad:
        raise ValueError(f"make_chair: sizes must be positive finite mm, got {', '.join(bad)}")
    if not (np.isfinite(seat_height_mm) and seat_height_mm > seat_thickness_mm):
        raise ValueError(
            f"seat_height_mm must exceed the seat thickness ({seat_thickness_mm} mm), got {seat_height_mm}"
        )
    if leg_width_mm * 2 >= min(seat_width_mm, seat_depth_mm):
        raise ValueError("leg_width_mm must be less than half the seat width and depth")
    cx, cy = (float(v) for v in centre_xy_mm)
    y_mid = cy + back_y_mm + seat_depth_mm / 2
    seat_bottom = seat_height_mm - seat_thickness_mm
    seat = Box((cx, y_mid, seat_height_mm - seat_thickness_mm / 2), (seat_width_mm / 2, seat_depth_mm / 2,
               seat_thickness_mm / 2), 0.0, "seat")  # fmt: skip
    backrest = Box(
        (cx, cy + back_y_mm + backrest_thickness_mm / 2, seat_height_mm + backrest_height_mm / 2),
        (seat_width_mm / 2, backrest_thickness_mm / 2, backrest_height_mm / 2),
        0.0,
        "backrest",
    )
    leg_half = (leg_width_mm / 2, leg_width_mm / 2, seat_bottom / 2)
    dx, dy = seat_width_mm / 2 - leg_width_mm / 2, seat_depth_mm / 2 - leg_width_mm / 2
    legs = tuple(
        Box((cx + sx * dx, y_mid + sy * dy, seat_bottom / 2), leg_half, 0.0, "leg") for sx in (-1, 1) for sy in (-1, 1)
    )
    return (seat, backrest, *legs)
