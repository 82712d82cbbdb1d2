"""The synthetic renderer: exact intersections, z-buffer, labels, cues (and the absence of a cap shortcut)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patchpose.parts import NUM_PARTS, PART_NAMES
from patchpose.synthetic.appearance import (
    Appearance,
    Lighting,
    Material,
    make_appearance,
    make_background,
    sample_lighting,
)
from patchpose.synthetic.body import make_subject
from patchpose.synthetic.primitives import AxisFrame, Capsule, Ellipsoid, OrientedBox, body_primitives
from patchpose.synthetic.render import Cues, Rays, intersect, pinhole_rays, render, surface_normals

FRONT_LIGHT = Lighting(direction=(0.0, 0.0, -1.0), ambient=0.3, diffuse=0.7)
FLAT = Cues(texture=False, shading=False)
GREY = Material(colour=(0.6, 0.6, 0.6))

# A hand-made standing pose facing the camera at 4 m, arms and legs spread (camera frame, mm).
SPREAD_POSE = np.array(
    [(0, 0, 0), (-133, 0, 0), (-200, 440, 0), (-280, 880, -30), (133, 0, 0), (200, 440, 0), (280, 880, 0),
     (0, -233, 0), (0, -490, 0), (0, -600, -60), (0, -700, -10), (150, -470, 0), (400, -400, 0), (620, -330, -50),
     (-150, -470, 0), (-400, -400, 0), (-620, -330, -50)], dtype=np.float64,
) + (0.0, -100.0, 4000.0)  # fmt: skip


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _rot_x(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _body(seed: int = 0, **appearance_kw):
    rng = np.random.default_rng(seed)
    body = make_subject("t", rng)
    appearance = make_appearance(rng, **appearance_kw)
    return body, appearance, body_primitives(SPREAD_POSE, body, appearance)


def _points(result, rays: np.ndarray) -> np.ndarray:
    """Camera-frame hit points (H, W, 3) from the z-depth map."""
    return rays * (result.depth / rays[..., 2])[..., None]


# --- exact intersections -------------------------------------------------------------------------


def test_capsule_seen_head_on_is_a_disc_of_the_near_cap() -> None:
    f, near, r = 500.0, 2000.0, 100.0
    rays = pinhole_rays(129, 129, f)  # pixel (64, 64) looks straight down the optical axis
    capsule = Capsule((0, 0, near), (0, 0, near + 400), r, 2, GREY)
    out = render([capsule], rays, FRONT_LIGHT, None, np.random.default_rng(0), FLAT)
    disc_radius_px = f * r / np.sqrt(near**2 - r**2)  # tangent cone of the near cap sphere
    assert abs((out.labels == 2).sum() - np.pi * disc_radius_px**2) < 0.02 * np.pi * disc_radius_px**2
    assert out.depth[64, 64] == pytest.approx(near - r, abs=1e-3)
    assert np.isinf(out.depth[0, 0]) and out.labels[0, 0] == 0 and out.primitive[0, 0] == -1


def test_capsule_side_and_cap_hits_match_hand_computed_distances() -> None:
    capsule = Capsule((-300, 0, 1000), (300, 0, 1000), 100.0, 2, GREY)
    beyond_end = _unit([350.0, 0.0, 1000.0])  # through the right cap's centre line region
    d = np.stack([[0, 0, 1.0], beyond_end, _unit([0, 150, 1000])])
    t = intersect(capsule, d)
    # side: the cylinder's near line; cap: sphere |t d - (300,0,1000)| = 100; third: misses (150 mm off at 1 m)
    b = beyond_end @ np.array([300.0, 0, 1000])
    t_cap = b - np.sqrt(b * b - (300.0**2 + 1000.0**2 - 100.0**2))
    np.testing.assert_allclose(t[:2], [900.0, t_cap], rtol=1e-9)
    assert np.isinf(t[2])


def test_ellipsoid_hits_match_hand_computed_distances() -> None:
    # axes: x, z, -y (a rotation about x); semi-axes 100 along x, 200 along z, 300 along y
    rotation = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    ellipsoid = Ellipsoid((0, 0, 1000), rotation, (100, 200, 300), 1, GREY)
    d = np.stack([[0, 0, 1.0], _unit([0, 0.1, 1.0]), _unit([0.2, 0, 1.0])])
    t = intersect(ellipsoid, d)
    # ray (0, s, 1) t/|.|: (y/300)^2 + ((z - 1000)/200)^2 = 1, solved by hand as a quadratic in z
    s = 0.1
    qa, qb, qc = (s / 300) ** 2 + 1 / 200**2, -2 * 1000 / 200**2, 1000**2 / 200**2 - 1
    z = (-qb - np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
    assert t[0] == pytest.approx(800.0)
    assert t[1] == pytest.approx(z * np.sqrt(1 + s * s))
    assert np.isinf(t[2])  # x = 0.2 z ~ 180 mm > 100 mm semi-axis at every depth it could hit
    normal = surface_normals(ellipsoid, d[:1] * t[:1, None])
    np.testing.assert_allclose(normal, [[0, 0, -1.0]], atol=1e-12)


def test_box_hits_match_hand_computed_distances() -> None:
    box = OrientedBox((0, 0, 1000), (100, 200, 300), np.eye(3))
    turned = OrientedBox((0, 0, 1000), (100, 200, 100), _rot_y(45.0))  # a vertical edge faces the camera
    d = np.stack([[0, 0, 1.0], _unit([0.05, 0.05, 1.0]), _unit([0.2, 0, 1.0])])
    t = intersect(box, d)
    assert t[0] == pytest.approx(700.0)
    assert t[1] == pytest.approx(700.0 * np.linalg.norm([0.05, 0.05, 1.0]))  # same z = 700 face
    assert np.isinf(t[2])  # x = 0.2 z > 100 everywhere on the box's depth range
    assert intersect(turned, d[:1])[0] == pytest.approx(1000.0 - 100.0 * np.sqrt(2.0))
    np.testing.assert_allclose(surface_normals(box, d[:2] * t[:2, None]), [[0, 0, -1.0]] * 2, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(-400, 400), min_size=6, max_size=6),
    st.floats(20.0, 150.0),
    st.integers(0, 2**32 - 1),
)
def test_capsule_hit_is_the_first_surface_point_along_the_ray(ends, radius, seed) -> None:
    a = np.array(ends[:3]) + (0, 0, 2000.0)
    b = np.array(ends[3:]) + (0, 0, 2000.0)
    d = _unit(np.random.default_rng(seed).normal(0.0, 0.12, (64, 3)) + (0, 0, 1.0))
    t = intersect(Capsule(a, b, radius, 3, GREY), d)

    def distance_to_segment(p):
        s = np.clip((p - a) @ (b - a) / max((b - a) @ (b - a), 1e-12), 0, 1)
        return np.linalg.norm(p - (a + s[..., None] * (b - a)), axis=-1)

    hit = np.isfinite(t)
    np.testing.assert_allclose(distance_to_segment(d[hit] * t[hit, None]), radius, rtol=1e-6, atol=1e-6)
    # every sampled point before the hit (and on a missing ray) is outside the capsule
    samples = np.linspace(0.0, 1.0, 400)[:, None] * np.where(hit, t - 1e-3, 3000.0)[None, :]
    assert np.all(distance_to_segment(d[None] * samples[..., None]) > radius - 1e-6)


# --- z-buffer, culling, labels -------------------------------------------------------------------


def test_the_nearer_capsule_wins_shared_pixels_whatever_the_order() -> None:
    rays = pinhole_rays(97, 97, 300.0)
    front = Capsule((-400, 0, 2000), (400, 0, 2000), 80.0, PART_NAMES.index("left_upper_arm"), GREY)
    back = Capsule((0, -500, 2600), (0, 500, 2600), 120.0, PART_NAMES.index("right_upper_leg"), GREY)
    results = [
        render(p, rays, FRONT_LIGHT, None, np.random.default_rng(0), FLAT) for p in ([front, back], [back, front])
    ]
    for out in results:
        labels, depth = out.labels, out.depth
        assert labels[48, 48] == front.part and depth[48, 48] == pytest.approx(1920.0, abs=1e-2)
        assert labels[10, 48] == back.part and depth[10, 48] > 2400  # only the far one above the near one
        assert set(np.unique(labels)) == {0, front.part, back.part}
    np.testing.assert_array_equal(results[0].labels, results[1].labels)
    np.testing.assert_array_equal(results[0].depth, results[1].depth)


def test_tile_culling_is_conservative() -> None:
    rng = np.random.default_rng(4)
    shapes = [Capsule(rng.uniform(-300, 300, 3) + (0, 0, 2500), rng.uniform(-300, 300, 3) + (0, 0, 2500),
                      rng.uniform(20, 120), 3, GREY) for _ in range(4)]  # fmt: skip
    shapes += [
        Capsule((100, -100, 2000), (100, -100, 2000), 60.0, 4, GREY),  # zero length: a sphere
        Ellipsoid((-200, 150, 2200), _rot_y(40.0) @ _rot_x(30.0), (250, 60, 40), 5, GREY),
        OrientedBox((250, 250, 2400), (200, 40, 120), _rot_y(-25.0) @ _rot_x(50.0)),
    ]
    _, _, body = _body(1)
    lighting = sample_lighting(np.random.default_rng(2))
    for prims, rays in ((shapes, pinhole_rays(50, 60, 60.0 * 2500 / 700)), (body, pinhole_rays(50, 45, 130.0))):
        brute = render(prims, Rays(rays, tile=60), lighting, None, np.random.default_rng(5))  # one tile: no culling
        assert (brute.primitive >= 0).mean() > 0.15
        for tile in (1, 3, 8):  # sizes that do not divide the image: padding is exercised
            tiled = render(prims, Rays(rays, tile=tile), lighting, None, np.random.default_rng(5))
            np.testing.assert_array_equal(tiled.primitive, brute.primitive)
            np.testing.assert_array_equal(tiled.depth, brute.depth)
            np.testing.assert_array_equal(tiled.rgb, brute.rgb)


def test_every_body_part_is_labelled_and_props_are_background() -> None:
    body, appearance, prims = _body(0)
    chair = OrientedBox((450, 700, 4300), (200, 60, 200), np.eye(3), colour=(0.5, 0.3, 0.2))
    rays = pinhole_rays(128, 128, 0.85 * 128 * 2.0)
    out = render([*prims, chair], rays, FRONT_LIGHT, None, np.random.default_rng(0))
    assert set(np.unique(out.labels)) == set(range(NUM_PARTS))
    assert out.labels[0, 0] == 0 and out.labels.dtype == np.uint8 and out.depth.dtype == np.float32
    chair_pixels = out.primitive == len(prims)
    assert chair_pixels.sum() > 20 and np.all(out.labels[chair_pixels] == 0)
    assert np.all(np.isfinite(out.depth[chair_pixels]))
    # left and right limbs share clothing; feet point forward (toward the camera for this pose)
    by_name = {p.name: p for p in prims}
    for part in ("upper_arm", "lower_arm", "hand", "upper_leg", "lower_leg", "foot"):
        assert by_name[f"left_{part}"].material is by_name[f"right_{part}"].material
    assert by_name["left_foot"].rotation[2, 0] < -0.9 and by_name["right_foot"].rotation[2, 0] < -0.9


# --- cues ----------------------------------------------------------------------------------------


def _ringed(contrast: float = 0.8, period: float = 40.0) -> Material:
    return Material(kind="rings", colour=(0.8, 0.3, 0.2), stripe_colour=(0.1, 0.1, 0.4), period_mm=period,
                    contrast=contrast, phase=0.3)  # fmt: skip


def test_cues_off_is_a_flat_silhouette_and_texture_gives_ring_bands() -> None:
    _, _, prims = _body(3, short_sleeve_probability=0.0, shorts_probability=0.0)
    rays = pinhole_rays(128, 128, 0.85 * 128 * 2.0)
    flat = render(prims, rays, FRONT_LIGHT, None, np.random.default_rng(0), FLAT)
    for index in np.unique(flat.primitive[flat.primitive >= 0]):
        assert len(np.unique(flat.rgb[flat.primitive == index], axis=0)) == 1, prims[index].name
    # one side-on limb with rings, shading off: the colour along its axis alternates in bands
    limb = Capsule((-200, 0, 2000), (200, 0, 2000), 50.0, 3, _ringed())
    rays = pinhole_rays(64, 128, 400.0)
    profile = render([limb], rays, FRONT_LIGHT, None, np.random.default_rng(0), Cues(True, False)).rgb[32, :, 0]
    on_limb = profile[np.abs(np.arange(128) - 63.5) < 35].astype(float)
    dark = on_limb < (on_limb.min() + on_limb.max()) / 2
    assert on_limb.max() - on_limb.min() > 60 and np.count_nonzero(np.diff(dark)) >= 4  # >= 2 of each band


def test_shading_alone_varies_across_a_limb() -> None:
    limb = Capsule((-200, 0, 2000), (200, 0, 2000), 50.0, 3, _ringed(contrast=0.0))
    light = Lighting(direction=_unit([0.0, -0.6, -0.8]))
    rgb = render([limb], pinhole_rays(64, 128, 400.0), light, None, np.random.default_rng(0), Cues(False, True)).rgb
    column = rgb[22:43, 64, 0].astype(int)  # across the limb: lit from above, darker below
    assert column[2] - column[-3] > 30


def _ring_shift(image: np.ndarray, centre_col: int, edge_cols: tuple[int, int], rows: slice) -> int:
    """Rows by which the ring pattern at the limb's centre column sits below its edges (best cross-correlation)."""
    centre = image[rows, centre_col].astype(float)
    edges = image[rows, list(edge_cols)].astype(float).mean(axis=1)
    centre, edges = centre - centre.mean(), edges - edges.mean()
    shifts = range(-4, 5)
    scores = [np.dot(centre[4:-4], edges[4 - k : len(edges) - 4 - k]) for k in shifts]
    return shifts[int(np.argmax(scores))]


def test_rings_bend_toward_the_far_end_so_toward_and_away_differ() -> None:
    f, rays = 600.0, pinhole_rays(128, 128, 600.0)
    near_end = np.array([0.0, 200.0, 3000.0])  # image bottom
    top_ray = _unit([0.0, -200.0, 3000.0])  # image top: the other end lies on this ray
    images = {}
    for name, depth in (("toward", 2700.0), ("away", 3300.0)):
        far_end = top_ray * depth / top_ray[2]  # same 2D endpoints, different depth
        limb = Capsule(near_end, far_end, 60.0, 3, _ringed(period=45.0))
        images[name] = render([limb], rays, FRONT_LIGHT, None, np.random.default_rng(0), Cues(True, False)).rgb[..., 0]
    r_px = int(60.0 * f / 3000.0)
    shift = {
        k: _ring_shift(im, 63, (63 - int(0.8 * r_px), 64 + int(0.8 * r_px)), slice(30, 98)) for k, im in images.items()
    }
    # the visible half of each ring bows toward the end farther from the camera: upward (-rows) when the
    # top end is far ("away"), downward when the top end is near ("toward")
    assert shift["away"] < 0 < shift["toward"], shift
    assert np.abs(images["toward"].astype(int) - images["away"].astype(int)).mean() > 5


def test_the_light_falls_off_with_the_distance_from_the_camera_so_the_nearer_end_is_brighter() -> None:
    # a plain limb, flat shading, running from 3000 mm (image bottom) to 3600 mm (image top) away
    rays = pinhole_rays(128, 128, 600.0)
    limb = Capsule((0.0, 250.0, 3000.0), (0.0, -300.0, 3600.0), 60.0, 3, GREY)
    light = dict(direction=(0.0, 0.0, -1.0), ambient=0.3, diffuse=0.7)

    def draw(lighting):
        return render([limb], rays, lighting, None, np.random.default_rng(0), FLAT)

    plain, same = draw(Lighting(**light)), draw(Lighting(**light, falloff=0.0, reference_mm=1.0))
    lit = draw(Lighting(**light, falloff=4.0, reference_mm=3300.0))
    assert np.array_equal(same.rgb, plain.rgb)  # no falloff: the renderer of before, whatever the reference
    assert np.array_equal(lit.depth, plain.depth) and np.array_equal(lit.labels, plain.labels)
    hit = lit.primitive >= 0
    distance = _points(lit, rays)[hit]
    distance = np.linalg.norm(distance, axis=1)
    expected = plain.rgb[hit][:, 0].astype(float) * (3300.0 / distance) ** 4
    assert np.abs(lit.rgb[hit][:, 0] - np.clip(expected, 0, 255)).max() <= 1.0  # rounding only
    rows = np.flatnonzero(hit.any(axis=1))
    bottom, top = lit.rgb[rows[-8], 64, 0], lit.rgb[rows[8], 64, 0]  # near end, far end
    assert int(bottom) - int(top) > 40, (bottom, top)
    with pytest.raises(ValueError, match="falloff"):
        Lighting(**light, falloff=-1.0)
    with pytest.raises(ValueError, match="reference_mm"):
        Lighting(**light, falloff=2.0, reference_mm=0.0)


def test_limb_ends_carry_no_colour_of_their_own() -> None:
    rays = pinhole_rays(160, 160, 0.85 * 160 * 2.0)
    for seed in range(4):
        _, _, prims = _body(seed)
        out = render(prims, rays, FRONT_LIGHT, None, np.random.default_rng(0), Cues(True, False))
        points = _points(out, rays)
        by_name = {p.name: i for i, p in enumerate(prims)}
        for side in ("left", "right"):
            chain = [f"{side}_upper_arm", f"{side}_lower_arm", f"{side}_hand"]
            chain2 = [f"{side}_upper_leg", f"{side}_lower_leg", f"{side}_foot"]
            for names in (chain, chain2):
                for limb, following in zip(names[:2], names[1:], strict=True):
                    index = by_name[limb]
                    mask = out.primitive == index
                    along = prims[index].frame.coordinates(points[mask])[:, 0] / prims[index].frame.length
                    colours = out.rgb[mask].astype(int)
                    allowed = np.concatenate([colours[(along > 0.05) & (along < 0.95)],
                                              out.rgb[out.primitive == by_name[following]].astype(int)])  # fmt: skip
                    cap = colours[along > 1.0]
                    gap = np.abs(cap[:, None, :] - allowed[None, :, :]).max(axis=2).min(axis=1)
                    assert cap.size == 0 or gap.max() <= 3, (seed, limb, gap.max())


# --- nuisances, determinism, validation ----------------------------------------------------------


def test_lighting_background_and_appearance_draws() -> None:
    rng = np.random.default_rng(7)
    draws = [sample_lighting(rng, dim_fraction=0.25, cone_half_angle_deg=30.0, elevation_deg=40.0) for _ in range(400)]
    centre = np.array([0.0, -np.sin(np.radians(40)), -np.cos(np.radians(40))])
    angles = np.degrees(np.arccos([np.clip(d.direction @ centre, -1, 1) for d in draws]))
    assert angles.max() <= 30.0 + 1e-6 and angles.max() > 20.0
    assert 0.18 < np.mean([d.dim < 1 for d in draws]) < 0.32
    background = make_background(90, 120, np.random.default_rng(1))
    assert background.shape == (90, 120, 3) and background.dtype == np.uint8
    assert len(np.unique(background.reshape(-1, 3) // 16, axis=0)) > 20  # cluttered, not a flat wall
    appearance = make_appearance(np.random.default_rng(3))
    assert isinstance(appearance, Appearance) and set(Appearance.SLOTS) <= set(appearance.materials)
    for slot in ("upper_arm", "upper_leg"):
        assert appearance[slot].kind == "rings" and 60.0 <= appearance[slot].period_mm <= 110.0


def test_a_print_on_the_front_of_the_top_is_seen_from_the_front_only() -> None:
    # the albedo, hand-built coordinates in a 400 mm frame: inside the region on the front only
    material = Material(colour=(0.2, 0.2, 0.2), print_colour=(0.9, 0.8, 0.1), print_region=(0.5, 0.75, 0.2))
    along, lateral, front = np.array([250.0, 250, 250, 150, 310, 250]), np.array([0.0, 70, 90, 0, 0, 0]), np.array(
        [30.0, 30, 30, 30, 30, -30])  # fmt: skip
    inside = np.array([True, True, False, False, False, False])
    albedo = material.albedo(along, lateral, front, 400.0, 1.0)
    np.testing.assert_array_equal(albedo[inside], [[0.9, 0.8, 0.1]] * 2)
    np.testing.assert_array_equal(albedo[~inside], [[0.2, 0.2, 0.2]] * 4)
    with pytest.raises(ValueError, match="print_region"):
        Material(print_colour=(0.5, 0.5, 0.5), print_region=(0.8, 0.5, 0.2))
    with pytest.raises(ValueError, match="print_colour"):
        Material(print_colour=(1.5, 0.5, 0.5))
    # the outfit: the same draws with and without, the print's colour unlike the top's
    plain, printed = (make_appearance(np.random.default_rng(5), front_print=flag) for flag in (False, True))
    assert plain["torso"].print_colour is None and printed["torso"].print_colour is not None
    assert np.abs(printed["torso"].print_colour - printed["torso"].colour).mean() >= 0.2
    for slot in Appearance.SLOTS:
        np.testing.assert_array_equal(plain[slot].colour, printed[slot].colour)
    # rendered: facing the camera, the print changes torso pixels only; turned away, nothing
    body = make_subject("t", np.random.default_rng(0))
    rays = pinhole_rays(128, 128, 0.85 * 128 * 2.0)
    pelvis = SPREAD_POSE[0]
    for pose, seen in ((SPREAD_POSE, True), ((SPREAD_POSE - pelvis) @ _rot_y(180).T + pelvis, False)):
        plain_frame, printed_frame = (
            render(body_primitives(pose, body, outfit), rays, FRONT_LIGHT, None, np.random.default_rng(0))
            for outfit in (plain, printed)
        )
        changed = np.any(plain_frame.rgb != printed_frame.rgb, axis=-1)
        np.testing.assert_array_equal(plain_frame.labels, printed_frame.labels)
        if seen:
            assert changed.sum() > 30 and np.all(printed_frame.labels[changed] == PART_NAMES.index("torso"))
        else:
            assert not changed.any()


def test_render_is_deterministic_for_a_seed() -> None:
    def frame(seed: int):
        rng = np.random.default_rng(seed)
        body = make_subject("d", rng)
        prims = body_primitives(SPREAD_POSE, body, make_appearance(rng))
        rays = pinhole_rays(64, 64, 0.85 * 64 * 2.0)
        return render(prims, rays, sample_lighting(rng), make_background(64, 64, rng), rng).rgb

    np.testing.assert_array_equal(frame(11), frame(11))
    assert np.abs(frame(11).astype(int) - frame(12).astype(int)).mean() > 5


def test_clear_errors_at_entry() -> None:
    body, appearance, prims = _body(0)
    with pytest.raises(ValueError, match="unit"):
        render(prims, pinhole_rays(16, 16, 50.0) * 2.0, FRONT_LIGHT, None, np.random.default_rng(0))
    with pytest.raises(ValueError, match="background"):
        render(prims, pinhole_rays(16, 16, 50.0), FRONT_LIGHT, np.zeros((8, 8, 3), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError, match="joints"):
        body_primitives(SPREAD_POSE[:16], body, appearance)
    with pytest.raises(ValueError, match="radius"):
        Capsule((0, 0, 1), (0, 0, 2), 0.0, 1, GREY)
    with pytest.raises(ValueError, match="rotation"):
        OrientedBox((0, 0, 1000), (1, 1, 1), np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValueError, match="part id"):
        Ellipsoid((0, 0, 1000), np.eye(3), (1, 1, 1), NUM_PARTS, GREY)
    with pytest.raises(ValueError, match="kind"):
        Material(kind="polka")
    with pytest.raises(ValueError, match="unit axis"):
        AxisFrame((0, 0, 0), (0, 0, 2.0), 10.0)
