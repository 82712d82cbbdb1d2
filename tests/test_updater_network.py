"""The updater's modalities table, device-side batch preparation and networks: shapes for every network and
modality, channel selection and normalisation by hand, pretrained weights from a file the test writes (and
every refusal naming it), the first convolution's 3 / C scaling, FLOPs by hand, gradients everywhere."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision

from patchpose.baselines.lifting.model import LiftingMLP
from patchpose.updater.inputs import IMAGENET_MEAN, IMAGENET_STD, normalise_boxes, prepare_batch, recolouring
from patchpose.updater.modalities import (
    MODALITIES,
    get_modality,
    num_channels,
    patch_source,
    select_channels,
    wildcard_constraint,
)
from patchpose.updater.network import OUTPUTS, build_network, complexity
from patchpose.updater.resnet import ResNetTrunk, spread_first_conv
from patchpose.updater.variants import variant_settings

SIZE = 32  # network input side in these tests


def settings(architecture: str = "limb_encoder", conditioned: bool = False, **block) -> dict:
    """A small ``updater.model`` block (every architecture's settings present, as the config has them)."""
    model = {
        "architecture": architecture,
        "condition_on_initial_pose": conditioned,
        "input_size": SIZE,
        "resnet": {"depth": 18, "width": 0.25, "pretrained": None, "hidden": 16},
        "limb_encoder": {"widths": [4, 8], "convs_per_stage": 2, "pooled_side": 1, "embedding": 6, "hidden": 16},
        "pose_only": {"width": 16, "blocks": 1, "dropout": 0.1},
    }
    model[architecture].update(block)
    return model


def fake_patches(batch: int, patches: int, size: int = 4) -> np.ndarray:
    """(B, P, 6, R, R) uint8 with value 100 b + 6 p + channel everywhere in patch p's channel."""
    b, p, c = np.meshgrid(np.arange(batch), np.arange(patches), np.arange(6), indexing="ij")
    values = (100 * b + 6 * p + c).astype(np.uint8)
    return np.broadcast_to(values[..., None, None], (batch, patches, 6, size, size)).copy()


# --- modalities -----------------------------------------------------------------------------------


def test_table_channel_counts_and_stores():
    assert {name: num_channels(name) for name in MODALITIES} == {"rgb_seg": 96, "rgb": 48, "seg": 48,
                                                                 "uncropped_rgb": 3}  # fmt: skip
    assert [patch_source(name) for name in MODALITIES] == ["predicted", "predicted", "predicted", "uncropped"]
    assert patch_source("seg", "groundtruth") == "groundtruth"
    assert patch_source("uncropped_rgb", "groundtruth") == "uncropped"
    with pytest.raises(ValueError, match="unknown modality 'depth'.*rgb_seg"):
        get_modality("depth")
    with pytest.raises(ValueError, match="2D source"):
        patch_source("rgb", "oracle")


def test_wildcard_constraint_matches_the_names_only():
    pattern = re.compile(wildcard_constraint())
    assert all(pattern.fullmatch(name) for name in MODALITIES)
    assert not any(pattern.fullmatch(name) for name in ("rgb_", "rgbseg", "segx", "uncropped", "", "rgb|seg"))


@pytest.mark.parametrize("as_tensor", [False, True])
def test_select_channels_golden(as_tensor):
    patches = fake_patches(2, 16)
    uncropped = fake_patches(2, 1)
    if as_tensor:
        patches, uncropped = torch.from_numpy(patches), torch.from_numpy(uncropped)

    def values(name, source, sample):  # one value per output channel (every pixel holds it)
        out = select_channels(source, name)
        assert tuple(out.shape) == (2, num_channels(name), 4, 4) and out.dtype == source.dtype
        return np.asarray(out[sample, :, 0, 0]).tolist()

    assert values("rgb_seg", patches, 0) == list(range(96))  # limb 0's R G B S_R S_G S_B, then limb 1's ...
    assert values("rgb", patches, 0)[:9] == [0, 1, 2, 6, 7, 8, 12, 13, 14]
    assert values("rgb", patches, 0)[-3:] == [90, 91, 92]
    assert values("seg", patches, 0)[:9] == [3, 4, 5, 9, 10, 11, 15, 16, 17]
    assert values("seg", patches, 1)[-3:] == [193, 194, 195]
    assert values("uncropped_rgb", uncropped, 1) == [100, 101, 102]
    with pytest.raises(ValueError, match="modality 'rgb' takes patches \\(B, 16, 6, R, R\\)"):
        select_channels(uncropped, "rgb")


# --- inputs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODALITIES))
def test_prepare_batch_normalises_each_channel_as_imagenet(name):
    modality = get_modality(name)
    patches = fake_patches(2, modality.num_patches, size=8)
    images = prepare_batch(torch.from_numpy(patches), name, 8, "cpu")
    assert images.dtype == torch.float32 and tuple(images.shape) == (2, modality.num_channels, 8, 8)
    for channel in (0, 1, modality.num_channels - 1):
        store_channel = modality.channels[channel % len(modality.channels)]
        value = float(select_channels(patches, name)[1, channel, 0, 0])
        expected = (value / 255 - IMAGENET_MEAN[store_channel % 3]) / IMAGENET_STD[store_channel % 3]
        torch.testing.assert_close(images[1, channel], torch.full((8, 8), expected), rtol=0, atol=1e-5)


def test_prepare_batch_zooms_bilinearly_and_antialiases_only_when_downscaling():
    patches = torch.zeros(1, 1, 6, 16, 16, dtype=torch.uint8)
    patches[..., ::4] = 255  # vertical stripes: one column in four lit
    lit = (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]
    dark = -IMAGENET_MEAN[0] / IMAGENET_STD[0]
    # 4x down: antialiased, each output pixel is a mean over its footprint: a quarter lit (away from the
    # border, where the filter is cut off); one bilinear tap per pixel (at 5.5, 9.5) would see dark columns only
    down = prepare_batch(patches, "uncropped_rgb", 4, "cpu")
    torch.testing.assert_close(down[0, 0, :, 1:3], torch.full((4, 2), dark + (lit - dark) / 4), rtol=0, atol=1e-5)
    up = prepare_batch(patches[..., :2, :2], "uncropped_rgb", 4, "cpu")  # 2x up, no antialias: plain bilinear
    expected = F.interpolate(prepare_batch(patches[..., :2, :2], "uncropped_rgb", 2, "cpu"), size=(4, 4),
                             mode="bilinear", align_corners=False)  # fmt: skip
    torch.testing.assert_close(up, expected)
    assert up[0, 0, 0].tolist()[0] == pytest.approx(lit, abs=1e-5)  # edge pixel replicated: the lit column
    with pytest.raises(ValueError, match="uint8"):
        prepare_batch(patches.float(), "uncropped_rgb", 4, "cpu")


def test_recolouring_permutes_and_scales_each_frames_rgb_from_a_stream_of_its_own():
    rows = np.array([5, 9, 2])
    matrices = recolouring(np.random.default_rng(3), rows, True, 0.3)
    assert tuple(matrices.shape) == (3, 3, 3) and matrices.dtype == torch.float32
    for matrix in matrices.numpy():  # one positive gain per row, in a permuted column
        assert (np.count_nonzero(matrix, axis=1) == 1).all() and (matrix >= 0).all()
        assert sorted(np.flatnonzero(matrix.T.any(axis=1))) == [0, 1, 2]
    # a frame's matrix does not depend on the rest of its batch (nor on a process's share of it)
    alone = recolouring(np.random.default_rng(3), rows[1:2], True, 0.3)
    torch.testing.assert_close(alone[0], matrices[1], rtol=0, atol=0)
    assert not torch.equal(recolouring(np.random.default_rng(4), rows, True, 0.3), matrices)
    shuffled_only = recolouring(np.random.default_rng(3), rows, True, 0.0).numpy()
    assert set(np.unique(shuffled_only)) == {0.0, 1.0}
    gains_only = recolouring(np.random.default_rng(3), rows, False, 0.3).numpy()
    assert all(np.count_nonzero(m - np.diag(np.diag(m))) == 0 for m in gains_only)
    assert recolouring(np.random.default_rng(3), rows, False, 0.0) is None
    with pytest.raises(ValueError, match="gain_sigma must be >= 0"):
        recolouring(np.random.default_rng(3), rows, True, -0.1)


def test_recolouring_per_limb_gives_each_patch_a_matrix_of_its_own():
    rows = np.array([5, 9, 2])
    per_frame = recolouring(np.random.default_rng(3), rows, True, 0.3)
    per_limb = recolouring(np.random.default_rng(3), rows, True, 0.3, per_limb=True, patches=16)
    assert tuple(per_limb.shape) == (3, 16, 3, 3)
    torch.testing.assert_close(per_limb[:, 0], per_frame, rtol=0, atol=0)  # the frame's stream, drawn on
    assert all(len({m.numpy().tobytes() for m in frame}) > 8 for frame in per_limb)
    alone = recolouring(np.random.default_rng(3), rows[2:], True, 0.3, per_limb=True, patches=16)
    torch.testing.assert_close(alone[0], per_limb[2], rtol=0, atol=0)
    one = recolouring(np.random.default_rng(3), rows, True, 0.3, per_limb=True, patches=1)
    torch.testing.assert_close(one[:, 0], per_frame, rtol=0, atol=0)  # uncropped_rgb: per frame either way
    assert recolouring(np.random.default_rng(3), rows, False, 0.0, per_limb=True, patches=16) is None


@pytest.mark.parametrize("name", ["rgb_seg", "rgb"])
def test_prepare_batch_recolours_each_patch_with_its_own_matrix(name):
    modality = get_modality(name)
    patches = torch.from_numpy(fake_patches(2, modality.num_patches, size=4))
    matrices = recolouring(np.random.default_rng(0), np.arange(2), True, 0.3, per_limb=True,
                           patches=modality.num_patches)  # fmt: skip
    recoloured = prepare_batch(patches, name, 4, "cpu", matrices)
    for patch in (0, 7, modality.num_patches - 1):
        one = prepare_batch(patches, name, 4, "cpu", matrices[:, patch])  # that patch's matrix on every patch
        c = modality.channels_per_patch
        torch.testing.assert_close(recoloured[:, patch * c : (patch + 1) * c], one[:, patch * c : (patch + 1) * c],
                                   rtol=0, atol=0)  # fmt: skip
    with pytest.raises(ValueError, match="recolour must be"):
        prepare_batch(patches, name, 4, "cpu", matrices[:, :3])


@pytest.mark.parametrize("name", list(MODALITIES))
def test_prepare_batch_recolours_the_frames_rgb_and_never_the_segmentation(name):
    modality = get_modality(name)
    patches = torch.from_numpy(fake_patches(2, modality.num_patches, size=4))
    swap = torch.tensor([[0.0, 0.0, 1.0], [0.0, 2.0, 0.0], [1.0, 0.0, 0.0]])  # R <- B, G doubled, B <- R
    recolour = torch.stack([swap, torch.eye(3)])
    plain, recoloured = (prepare_batch(patches, name, 4, "cpu", r) for r in (None, recolour))
    torch.testing.assert_close(recoloured[1], plain[1], rtol=0, atol=0)  # frame 1: identity
    c = modality.channels_per_patch
    if modality.channels[0] >= 3:  # seg: labels, untouched
        torch.testing.assert_close(recoloured, plain, rtol=0, atol=0)
        return
    raw = select_channels(patches.numpy(), name)[0].astype(float)  # frame 0, (P x c, R, R) 0..255
    for patch in range(modality.num_patches):
        r, g, b = (raw[patch * c + k, 0, 0] for k in range(3))
        for k, value in enumerate((b, min(2 * g, 255), r)):
            expected = (value / 255 - IMAGENET_MEAN[k]) / IMAGENET_STD[k]
            assert float(recoloured[0, patch * c + k, 0, 0]) == pytest.approx(expected, abs=1e-5)
        if c == 6:  # rgb_seg: the segmentation half of the patch as it was
            torch.testing.assert_close(recoloured[0, patch * c + 3 : patch * c + 6],
                                       plain[0, patch * c + 3 : patch * c + 6], rtol=0, atol=0)  # fmt: skip
    with pytest.raises(ValueError, match="recolour must be"):
        prepare_batch(patches, name, 4, "cpu", torch.eye(3)[None])


def test_normalise_boxes_golden():
    boxes = np.array([[[63.5, 63.5, 128, 64], [-0.5, 127.5, 32, 16]]])  # (1, 2, 4) frame px of a 128² frame
    expected = [[[0, 0, 2, 1], [-1, 1, 0.5, 0.25]]]
    np.testing.assert_allclose(normalise_boxes(boxes, (128, 128)), expected, atol=1e-7)
    with pytest.raises(ValueError, match=r"\(N, P, 4\)"):
        normalise_boxes(boxes[0], (128, 128))


# --- networks -------------------------------------------------------------------------------------


def _inputs(network, batch: int = 3, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, network.in_channels, SIZE, SIZE, generator=generator) if network.uses_images else None
    orientations = torch.randn(batch, OUTPUTS, generator=generator)
    boxes = torch.randn(batch, max(network.num_patches, 1), 4, generator=generator)
    return images, orientations, boxes


@pytest.mark.parametrize("conditioned", [False, True])
@pytest.mark.parametrize("architecture", ["resnet", "limb_encoder"])
@pytest.mark.parametrize("name", list(MODALITIES))
def test_every_network_and_modality_gives_48_numbers(architecture, conditioned, name):
    torch.manual_seed(0)
    network = build_network(settings(architecture, conditioned), name)
    assert network.in_channels == num_channels(name) and network.uses_boxes == conditioned
    out = network(*_inputs(network))
    assert out.shape == (3, OUTPUTS) and out.dtype == torch.float32 and torch.isfinite(out).all()
    images, orientations, boxes = _inputs(network)
    with pytest.raises(ValueError, match="images must be"):
        network(images[:, :-1], orientations, boxes)


def test_resnet50_and_pose_only_shapes():
    torch.manual_seed(0)
    resnet50 = build_network(settings("resnet", depth=50, width=0.125), "rgb")
    assert resnet50.trunk.num_features == 256 and resnet50(*_inputs(resnet50)).shape == (3, OUTPUTS)
    pose_only = build_network(variant_settings(settings("limb_encoder", conditioned=True), "pose_only"), None)
    assert not pose_only.uses_images and not pose_only.uses_boxes
    assert pose_only(None, torch.randn(3, OUTPUTS)).shape == (3, OUTPUTS)
    with pytest.raises(ValueError, match=r"initial_orientations must be \(B, 48\)"):
        pose_only(None, torch.randn(3, 47))


def test_the_pose_only_network_is_the_lifting_mlp_on_u_init_as_before():
    # the pose_only variant's network: LiftingMLP(48 -> 48) named mlp.*, initialised from the same random draws,
    # so its old model files load and its results do not change
    torch.manual_seed(7)
    network = build_network(variant_settings(settings(), "pose_only"), None)
    torch.manual_seed(7)
    reference = LiftingMLP(OUTPUTS, OUTPUTS, 16, 1, 0.1)
    expected = {f"mlp.{name}": value for name, value in reference.state_dict().items()}
    assert {name: tuple(v.shape) for name, v in network.state_dict().items()} == {
        name: tuple(v.shape) for name, v in expected.items()}  # fmt: skip
    assert all(torch.equal(network.state_dict()[name], value) for name, value in expected.items())
    assert network.num_patches == 0 and network.modality is None
    assert network.state_dict()["mlp.stem.0.weight"].shape == (16, OUTPUTS)


def test_the_pose_boxes_network_reads_u_init_and_the_boxes_and_no_pixels():
    torch.manual_seed(0)
    network = build_network(variant_settings(settings(), "pose_boxes"), "rgb_seg").eval()
    assert not network.uses_images and network.uses_boxes and network.num_patches == 16
    assert not any(isinstance(module, torch.nn.Conv2d) for module in network.modules())
    assert network.mlp.stem[0].in_features == OUTPUTS + 16 * 4
    generator = torch.Generator().manual_seed(1)
    orientations, boxes = torch.randn(3, OUTPUTS, generator=generator), torch.randn(3, 16, 4, generator=generator)
    with torch.no_grad():
        out = network(None, orientations, boxes)
        # its input is concat(U_init, boxes), the raw values the conditioned patch networks concatenate
        assert torch.equal(out, network.mlp(torch.cat([orientations, boxes.flatten(1)], dim=1)))
        assert torch.equal(network(torch.randn(3, 96, SIZE, SIZE), orientations, boxes), out)  # pixels unread
        moved = boxes.clone()
        moved[:, 3, :2] += 0.5  # one limb's box shifted
        assert not torch.allclose(network(None, orientations, moved), out)
        assert not torch.allclose(network(None, orientations + 0.1, boxes), out)
    with pytest.raises(ValueError, match=r"boxes must be \(B=3, 16, 4\)"):
        network(None, orientations, None)
    with pytest.raises(ValueError, match="needs the modality of its patch store"):
        build_network(variant_settings(settings(), "pose_boxes"), None)
    assert complexity(network, SIZE)["parameters"] == sum(p.numel() for p in network.parameters())


@pytest.mark.parametrize("architecture", ["resnet", "limb_encoder"])
def test_an_orientation_network_returns_its_orientation_less_u_init_and_never_reads_u_init(architecture):
    torch.manual_seed(0)
    network = build_network(settings(architecture) | {"predicts": "orientation"}, "rgb_seg").eval()
    assert network.predicts == "orientation" and tuple(network.orientation_offset.shape) == (OUTPUTS,)
    assert torch.equal(network.orientation_offset, torch.zeros(OUTPUTS))
    mean = torch.linspace(-1, 1, OUTPUTS)
    network.start_orientation_offset(mean)
    images, orientations, _ = _inputs(network)
    with torch.no_grad():
        out = network(images, orientations)
        learned = network.predict(images, orientations, None)
        shifted = network(images, orientations + 0.25)
    assert torch.allclose(out, learned + mean - orientations, atol=1e-6)
    assert torch.allclose(shifted, out - 0.25, atol=1e-6)  # U_init enters only through Eq. 1's subtraction
    # the residual network's weights, plus the offset (a parameter: it is trained)
    torch.manual_seed(0)
    residual = build_network(settings(architecture), "rgb_seg")
    assert residual.predicts == "residual" and not hasattr(residual, "orientation_offset")
    assert set(network.state_dict()) == set(residual.state_dict()) | {"orientation_offset"}
    assert any(parameter is network.orientation_offset for parameter in network.parameters())
    residual.start_orientation_offset(mean)  # nothing to start for a network that predicts ΔU
    assert set(residual.state_dict()) == set(network.state_dict()) - {"orientation_offset"}
    # under bf16 autocast (the CUDA path's AMP, here on the CPU) the subtraction stays in float32
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        learned, out = network.predict(images, orientations, None), network(images, orientations)
    assert learned.dtype == torch.bfloat16 and out.dtype == torch.float32
    assert torch.equal(out, learned.float() + mean - orientations)


def test_only_the_networks_that_read_the_patches_predict_orientations():
    model = settings() | {"predicts": "orientation"}
    for name in ("rgb_seg", "rgb", "seg", "uncropped_rgb", "rgb_seg_conditioned"):
        assert variant_settings(model, name)["predicts"] == "orientation"
    for name in ("pose_only", "pose_boxes"):  # no pixels: ΔU whatever the config
        assert variant_settings(model, name)["predicts"] == "residual"
        assert build_network(variant_settings(model, name), "rgb_seg").predicts == "residual"
    assert "predicts" not in variant_settings(settings(), "pose_only")  # model files written before the key
    with pytest.raises(ValueError, match="reads U_init alone"):
        build_network(settings("pose_only") | {"predicts": "orientation"}, None)
    with pytest.raises(ValueError, match="predicts must be one of"):
        build_network(settings() | {"predicts": "absolute"}, "rgb")


@pytest.mark.parametrize("architecture", ["resnet", "limb_encoder"])
def test_a_conditioned_orientation_network_reads_u_init_beside_the_patches(architecture):
    torch.manual_seed(0)
    model = settings(architecture, conditioned=True) | {"predicts": "orientation"}
    network = build_network(model, "rgb_seg").eval()
    mean = torch.linspace(-1, 1, OUTPUTS)
    network.start_orientation_offset(mean)
    images, orientations, boxes = _inputs(network)
    with torch.no_grad():
        out = network(images, orientations, boxes)
        learned = network.predict(images, orientations, boxes)
        shifted = network(images, orientations + 0.25, boxes)
    assert torch.allclose(out, learned + mean - orientations, atol=1e-6)
    assert not torch.allclose(shifted, out - 0.25, atol=1e-3)  # U_init is an input too, not only subtracted


@pytest.mark.parametrize("architecture", ["resnet", "limb_encoder"])
def test_conditioning_dropout_zeroes_u_init_and_boxes_of_whole_frames_in_training_only(architecture):
    torch.manual_seed(0)
    model = settings(architecture, conditioned=True) | {"conditioning_dropout": 0.5}
    network = build_network(model, "rgb_seg")
    assert network.conditioning_dropout == 0.5
    images, orientations, boxes = _inputs(network, batch=64)
    features = torch.randn(64, 5)
    network.train()
    torch.manual_seed(1)
    condition = network._condition(features, orientations, boxes)
    assert torch.equal(condition[:, :5], features)  # the image features are never dropped
    extra, whole = condition[:, 5:], torch.cat([orientations, boxes.flatten(1)], dim=1)
    dropped = (extra == 0).all(dim=1)
    assert torch.equal(extra[~dropped], whole[~dropped])  # a frame keeps all of U_init and its boxes, or none
    assert 16 <= int(dropped.sum()) <= 48  # about half of 64
    torch.manual_seed(1)
    assert torch.equal(network._condition(features, orientations, boxes), condition)  # the global generator
    network.eval()
    assert torch.equal(network._condition(features, orientations, boxes), torch.cat([features, whole], dim=1))
    with torch.no_grad():  # evaluation never draws: the same output whatever the generator's state
        torch.manual_seed(2)
        first = network(images, orientations, boxes)
        torch.manual_seed(3)
        assert torch.equal(network(images, orientations, boxes), first)
    assert build_network(settings(architecture, conditioned=True), "rgb_seg").conditioning_dropout == 0.0


def test_conditioning_dropout_is_for_conditioned_patch_networks_only():
    model = settings(conditioned=True) | {"conditioning_dropout": 0.3}
    assert variant_settings(model, "rgb_seg_conditioned")["conditioning_dropout"] == 0.3
    for name in ("rgb_seg", "rgb", "seg", "uncropped_rgb", "pose_only", "pose_boxes"):  # it would not act
        assert "conditioning_dropout" not in variant_settings(model, name)
        assert build_network(variant_settings(model, name), "rgb_seg").conditioning_dropout == 0.0
    with pytest.raises(ValueError, match="reads the patches alone"):
        build_network(settings() | {"conditioning_dropout": 0.3}, "rgb_seg")
    with pytest.raises(ValueError, match="reads no patches"):
        build_network(settings("pose_only", conditioned=True) | {"conditioning_dropout": 0.3}, "rgb_seg")
    for probability in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"conditioning_dropout must be in \[0, 1\)"):
            build_network(model | {"conditioning_dropout": probability}, "rgb_seg")


def test_settings_are_checked():
    with pytest.raises(ValueError, match="architecture must be one of"):
        build_network(settings() | {"architecture": "vgg"}, "rgb")
    with pytest.raises(ValueError, match=r"updater.model.limb_encoder: missing \['hidden'\], unknown \['hiden'\]"):
        model = settings()
        model["limb_encoder"]["hiden"] = model["limb_encoder"].pop("hidden")
        build_network(model, "rgb")
    with pytest.raises(ValueError, match="resnet depth must be one of"):
        build_network(settings("resnet", depth=101), "rgb")


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_trunk_is_torchvisions_resnet_without_fc(depth):
    reference = getattr(torchvision.models, f"resnet{depth}")().state_dict()
    trunk = ResNetTrunk(depth, 3).state_dict()
    assert {k: tuple(v.shape) for k, v in trunk.items()} == {
        k: tuple(v.shape) for k, v in reference.items() if not k.startswith("fc.")
    }


@pytest.mark.parametrize("conditioned", [False, True])
@pytest.mark.parametrize("architecture", ["resnet", "limb_encoder"])
def test_gradients_reach_every_parameter(architecture, conditioned):
    torch.manual_seed(0)
    network = build_network(settings(architecture, conditioned), "rgb_seg")
    images, orientations, boxes = _inputs(network)
    orientations.requires_grad_(True)
    boxes.requires_grad_(True)
    network(images, orientations, boxes).square().sum().backward()
    silent = [name for name, p in network.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert silent == []
    used = [orientations.grad is not None and orientations.grad.abs().sum() > 0,
            boxes.grad is not None and boxes.grad.abs().sum() > 0]  # fmt: skip
    assert used == [conditioned, conditioned]  # the pose and the boxes count exactly when conditioned


def test_limb_encoder_shares_one_cnn_across_limbs():
    torch.manual_seed(0)
    network = build_network(settings(), "rgb_seg").eval()
    assert network.encoder[0].in_channels == 6  # one limb's channels, not 96
    images = torch.randn(1, 96, SIZE, SIZE)
    swapped = images.clone()
    swapped[:, :6], swapped[:, 6:12] = images[:, 6:12], images[:, :6]
    features = network.encoder(images.view(16, 6, SIZE, SIZE))
    features_swapped = network.encoder(swapped.view(16, 6, SIZE, SIZE))
    torch.testing.assert_close(features_swapped[:2], features[[1, 0]])


def test_limb_encoder_pooled_side_averages_each_cell_of_the_grid():
    # the last feature map (8 x 8 here: two stride-2 stages at 32 px) averaged over the whole patch (side 1) or
    # over each cell of a 2 x 2 grid (side 2, row-major per channel), so with side 2 a feature at the top left
    # and the same feature at the bottom right give different tokens
    torch.manual_seed(0)
    images = torch.randn(3, 3, SIZE, SIZE)
    for side in (1, 2):
        network = build_network(settings(pooled_side=side), "seg").eval()
        assert network.token.in_features == 8 * side * side
        with torch.no_grad():
            maps = network.encoder[:-2](images)  # before the pooling and the flattening
            pooled = network.encoder(images)
        height = maps.shape[-1] // side
        cells = maps.unflatten(2, (side, height)).unflatten(4, (side, height)).mean(dim=(3, 5))
        torch.testing.assert_close(pooled, cells.flatten(1))
    with pytest.raises(ValueError, match="pooled_side"):
        build_network(settings(pooled_side=0), "seg")


@pytest.mark.parametrize("conditioned", [False, True])
def test_a_per_limb_head_reads_each_limbs_orientation_from_that_limbs_patch_alone(conditioned):
    # head: per_limb: a change to limb 5's patch (its 6 channels), or conditioned to its U_init or its box,
    # changes limb 5's 3 numbers and no other limb's; with the joint head the same change moves other limbs too
    torch.manual_seed(0)
    limb, rows = 5, slice(15, 18)
    for head in ("per_limb", "joint"):
        # 32 features a token, so no limb's token is all zeros after its ReLU (6 could be: nothing would move)
        network = build_network(settings(conditioned=conditioned, head=head, embedding=32), "rgb_seg").eval()
        images, orientations, boxes = _inputs(network)
        changed = {"patch": (images.clone(), orientations, boxes)}
        changed["patch"][0][:, 6 * limb : 6 * limb + 6] = torch.randn(3, 6, SIZE, SIZE)
        if conditioned:
            changed["U_init"] = (images, orientations.clone(), boxes)
            changed["U_init"][1][:, 3 * limb : 3 * limb + 3] += 0.5
            changed["box"] = (images, orientations, boxes.clone())
            changed["box"][2][:, limb] += 0.5
        with torch.no_grad():
            before = network(images, orientations, boxes)
            for what, inputs in changed.items():
                moved = network(*inputs) != before  # exactly: another limb's numbers are not even rounded anew
                others = torch.cat([moved[:, : rows.start], moved[:, rows.stop :]], dim=1)
                assert moved[:, rows].any(), (head, what)
                assert others.any() == (head == "joint"), (head, what)


@pytest.mark.parametrize("name", list(MODALITIES))
def test_a_per_limb_head_gives_48_numbers_and_the_single_patch_stays_joint(name):
    torch.manual_seed(0)
    network = build_network(settings(head="per_limb"), name)
    assert network.per_limb == (get_modality(name).num_patches == 16)
    assert network.head[-1].out_features == (3 if network.per_limb else OUTPUTS)
    assert network(*_inputs(network)).shape == (3, OUTPUTS)


@pytest.mark.parametrize("conditioned", [False, True])
def test_gradients_reach_every_parameter_of_a_per_limb_head(conditioned):
    torch.manual_seed(0)
    network = build_network(settings(conditioned=conditioned, head="per_limb"), "rgb_seg")
    images, orientations, boxes = _inputs(network)
    network(images, orientations, boxes).square().sum().backward()
    assert [name for name, p in network.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0] == []


def test_a_per_limb_head_needs_one_patch_per_limb(monkeypatch):
    # a modality of 4 patches (none in the table today) has no limb for each patch: refused by name
    from patchpose.updater import network as network_module
    from patchpose.updater.modalities import Modality

    monkeypatch.setattr(network_module, "get_modality", lambda name: Modality("four", "limbs", 4, (0, 1, 2)))
    with pytest.raises(ValueError, match=r"per_limb needs one patch per limb \(16\) or a single patch, four has 4"):
        build_network(settings(head="per_limb"), "four")
    assert build_network(settings(head="joint"), "four").num_patches == 4  # the joint head takes any count


def test_the_head_key_is_optional_and_checked():
    # a model file written before the key has no head: joint, the same network as head: joint, weight for weight
    without = settings()
    assert "head" not in without["limb_encoder"]
    torch.manual_seed(0)
    old = build_network(without, "rgb_seg").state_dict()
    torch.manual_seed(0)
    joint = build_network(settings(head="joint"), "rgb_seg")
    assert not joint.per_limb and old.keys() == joint.state_dict().keys()
    assert all(torch.equal(old[key], value) for key, value in joint.state_dict().items())
    with pytest.raises(ValueError, match=r"limb_encoder.head must be one of \('joint', 'per_limb'\), got 'local'"):
        build_network(settings(head="local"), "rgb_seg")
    with pytest.raises(ValueError, match=r"limb_encoder: missing \[\], unknown \['heads'\]"):
        build_network(settings(heads="joint"), "rgb_seg")


# --- pretrained weights -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


@pytest.mark.parametrize("name", ["rgb_seg", "rgb", "uncropped_rgb"])
def test_pretrained_weights_load_up_to_the_penultimate_layer(resnet18_file, name):
    reference = torch.load(resnet18_file, weights_only=True)
    network = build_network(settings("resnet", width=1.0, pretrained=str(resnet18_file)), name)
    loaded = network.trunk.state_dict()
    for key, value in reference.items():
        if key.startswith("fc."):
            continue
        if key == "conv1.weight":
            channels = num_channels(name)
            assert loaded[key].shape == (64, channels, 7, 7)
            for j in range(channels):
                torch.testing.assert_close(loaded[key][:, j], value[:, j % 3] * 3 / channels, rtol=1e-6, atol=0)
        else:
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert isinstance(network.head, torch.nn.Linear) and network.head.out_features == OUTPUTS


def test_first_conv_scaling_keeps_the_activation_magnitude(resnet18_file):
    """Every patch (RGB and segmentation) showing one image x: the spread conv1 responds as the RGB conv1 to x."""
    reference = torchvision.models.resnet18()
    reference.load_state_dict(torch.load(resnet18_file, weights_only=True))
    network = build_network(settings("resnet", width=1.0, pretrained=str(resnet18_file)), "rgb_seg")
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(network.trunk.conv1(x.repeat(1, 32, 1, 1)), reference.conv1(x),
                                   rtol=1e-4, atol=1e-5)  # fmt: skip
    with pytest.raises(ValueError, match="multiple of 3"):
        spread_first_conv(reference.conv1.weight, 4)


def test_pretrained_refusals_name_the_file(resnet18_file, tmp_path):
    def build(path, **block):
        return build_network(settings("resnet", **({"width": 1.0, "pretrained": str(path)} | block)), "rgb")

    missing = tmp_path / "nowhere" / "resnet18.pth"
    with pytest.raises(ValueError, match=f"{re.escape(str(missing))}: pretrained resnet18 weights not found"):
        build(missing)
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=f"{re.escape(str(garbage))}: not a readable torch state dict"):
        build(garbage)
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listed)
    with pytest.raises(ValueError, match=f"{re.escape(str(listed))}: not a state dict"):
        build(listed)
    for depth in (34, 50):
        other = tmp_path / f"resnet{depth}.pth"
        torch.save(getattr(torchvision.models, f"resnet{depth}")().state_dict(), other)
        with pytest.raises(ValueError, match=f"{re.escape(str(other))}: not the weights of a torchvision resnet18"):
            build(other)
    with pytest.raises(ValueError, match=f"{re.escape(str(resnet18_file))}: .*resnet50: missing"):
        build(resnet18_file, depth=50)
    with pytest.raises(ValueError, match="need resnet width 1"):
        build(resnet18_file, width=0.5)
    assert build_network(settings("resnet", width=1.0, pretrained=str(missing)), "rgb", load_weights=False)


# --- cost -----------------------------------------------------------------------------------------


def test_complexity_counts_flops_by_hand_and_leaves_the_network_alone():
    # one stage of 4 filters on an 8 px frame (3 channels): 4 x 4 outputs x 4 filters x 27 taps = 1728 MACs;
    # token 4 -> 2: 8; head 2 -> 3: 6 and 3 -> 48: 144. 1886 MACs = 3772 FLOPs per sample.
    network = build_network(settings(widths=[4], convs_per_stage=1, embedding=2, hidden=3), "uncropped_rgb")
    before = copy.deepcopy(network.state_dict())
    cost = complexity(network, 8)
    assert cost["forward_flops"] == 3772
    assert cost["parameters"] == 108 + 8 + (8 + 2) + 2 + (6 + 3) + 3 + 3 + (144 + 48)
    assert cost["training_flops"] > 2 * cost["forward_flops"]
    after = network.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert all(p.grad is None for p in network.parameters())
