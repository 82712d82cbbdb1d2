"""The updater's networks (paper §3.2, §4.1): a frame's patches (and its initial pose) -> ΔU, the residual limb
orientation, (B, 48) = 16 limbs x (x, y, z), unitless (``patchpose.orientation``), limb-major.

One forward signature for all, so the training loop never special-cases one:

    network(images, initial_orientations, boxes) -> (B, 48)

images: (B, C, S, S) float32 from ``patchpose.updater.inputs.prepare_batch`` (C = the modality's channels), or
None for ``pose_only``; initial_orientations: (B, 48) U_init = ``encode_orientation`` of the initial pose,
flattened; boxes: (B, P, 4) the store's boxes of the P patches, unitless (``inputs.normalise_boxes``), or None
unless conditioned. ``uses_images`` / ``uses_boxes`` say what a network reads, so a caller can skip reading it.

Architectures (``build_network(model_settings, modality)``; ``model_settings`` = the config's ``updater.model``):

* ``resnet``: the paper's: a torchvision ResNet 18/34/50 (``patchpose.updater.resnet``) taking all C channels
  at once, its last layer a fully connected 48-way one; optionally ImageNet weights from a local file.
* ``limb_encoder``: ONE small CNN shared by all P patches (each patch's c channels alone: stride-2 3 x 3
  conv + BN + ReLU stages, then average pooling to a ``pooled_side`` x ``pooled_side`` grid: 1 is global
  average pooling, which keeps what the patch shows but not where; a larger grid keeps where, e.g. which end
  of the limb is the brighter), a per-patch token ``ReLU(W f_p + e_p)`` with a learned embedding e_p of patch
  p, the P tokens concatenated -> MLP -> 48 (``head: joint``). The paper's per-part idea (one limb's
  appearance, shared between poses) at a fraction of a ResNet's cost; P = 1 (the uncropped frame) works too.
  ``head: per_limb``: no MLP over all the tokens; ONE MLP, shared by the limbs, maps each limb's own token
  (conditioned: with that limb's U_init (3) and box (4) beside it) to that limb's 3 numbers, so a limb's
  orientation is read from its own patch alone (the embedding e_p still tells the MLP which limb it is), never
  from what the other limbs show: a rare pose made of common limbs is then nothing new to it. Needs one patch
  per limb (P = 16); a modality of one patch (the uncropped frame) has one token, so its head stays joint.
* ``pose_only``: a control the paper does not have: a residual MLP (``LiftingMLP``) on U_init alone, no image;
  same training and targets; it measures what a refiner can do without the patches. Conditioned (the
  ``pose_boxes`` control), the MLP reads ``concat(U_init, boxes)`` (48 + 4P; the modality gives P), still no
  pixels: what a refiner can do with the boxes the patches are cut from but not what they show.

Conditioned (``condition_on_initial_pose: true``; ``resnet`` and ``limb_encoder``; ``pose_only`` as above):
the pooled image features are concatenated with U_init (48) and the boxes (P x 4) before an MLP head (linear,
batch norm, ReLU, linear), so the residual can depend on the pose it corrects. Unconditioned, U_init and the
boxes are ignored (the paper's ΔU from the patches alone). ``conditioning_dropout`` p: in training, each frame's
U_init and boxes are all set to 0 together with probability p (never in evaluation), so the head also learns to
read the pose from the patches alone instead of leaning on U_init; conditioned image networks only (a control
has nothing but U_init and the boxes to read).

What an image network's last layer predicts (``predicts``): ``residual``, ΔU itself (the paper's Eq. 2 as
written); ``orientation``, the limb orientations U themselves, and the network returns ΔU = (its output + a
learned offset, ``orientation_offset``, which the training stage starts at the training split's mean U_gt) -
U_init. Unconditioned, the learned part never sees U_init; only Eq. 1's subtraction does, so what it cannot tell
from a patch is left to U_init rather than guessed from the patch. Conditioned, it reads U_init as one more
input beside the patches. The controls (``pose_only``, no pixels) predict ΔU either way
(``variants.variant_settings``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from patchpose.baselines.lifting.model import LiftingMLP
from patchpose.skeleton import H36M
from patchpose.updater.modalities import get_modality
from patchpose.updater.resnet import ResNetTrunk, load_pretrained

__all__ = [
    "OUTPUTS",
    "ARCHITECTURES",
    "HEADS",
    "PREDICTS",
    "Updater",
    "ResNetUpdater",
    "LimbEncoderUpdater",
    "PoseOnlyUpdater",
    "build_network",
    "complexity",
]

OUTPUTS = 3 * H36M.num_limbs  # ΔU and U_init: 16 limbs x (x, y, z)
ARCHITECTURES = ("resnet", "limb_encoder", "pose_only")
HEADS = ("joint", "per_limb")  # limb_encoder's head: one MLP over all the tokens, or one per limb's token, shared
PREDICTS = ("residual", "orientation")  # what an image network's last layer predicts
SETTINGS = {  # the keys of each architecture's block of ``updater.model``
    "resnet": ("depth", "width", "pretrained", "hidden"),
    "limb_encoder": ("widths", "convs_per_stage", "pooled_side", "embedding", "hidden"),
    "pose_only": ("width", "blocks", "dropout"),
}
# Keys an architecture's block may leave out, with the value they then take (model files written before the key
# existed lack it and mean that value).
OPTIONAL_SETTINGS = {"limb_encoder": {"head": "joint"}}


def _pose_and_boxes(initial_orientations, boxes, dtype) -> list[torch.Tensor]:
    """What a conditioned network receives besides its images: U_init (B, 48) and the boxes flattened (B, 4P),
    as ``dtype``."""
    return [initial_orientations.to(dtype), boxes.flatten(1).to(dtype)]


def _head(inputs: int, hidden: int, outputs: int = OUTPUTS) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, outputs))  # fmt: skip


class Updater(nn.Module):
    """The common part: input checks, the conditioning vector (``conditioning_dropout``: see the module
    docstring) and ``predicts: orientation`` (``set_predicts``). Subclasses set ``modality`` (or None),
    ``uses_images``, ``uses_boxes`` and implement ``predict``."""

    uses_images: bool = True
    uses_boxes: bool = False
    predicts: str = "residual"
    conditioning_dropout: float = 0.0

    def __init__(self, modality: str | None):
        super().__init__()
        self.modality = modality
        self.num_patches = get_modality(modality).num_patches if modality is not None else 0
        self.in_channels = get_modality(modality).num_channels if modality is not None else 0

    def _check(self, images, initial_orientations, boxes) -> None:
        if initial_orientations is None or initial_orientations.ndim != 2 or initial_orientations.shape[1] != OUTPUTS:
            got = None if initial_orientations is None else tuple(initial_orientations.shape)
            raise ValueError(f"initial_orientations must be (B, {OUTPUTS}), got {got}")
        batch = initial_orientations.shape[0]
        if self.uses_images:
            if images is None or images.ndim != 4 or images.shape[:2] != (batch, self.in_channels):
                got = None if images is None else tuple(images.shape)
                raise ValueError(f"{self.modality} images must be (B={batch}, {self.in_channels}, S, S), got {got}")
        if self.uses_boxes and (boxes is None or tuple(boxes.shape) != (batch, self.num_patches, 4)):
            got = None if boxes is None else tuple(boxes.shape)
            raise ValueError(f"boxes must be (B={batch}, {self.num_patches}, 4), got {got}")

    def set_predicts(self, predicts: str) -> None:
        """``residual`` (the default) or ``orientation``: the last layer predicts U, offset by the parameter
        ``orientation_offset`` (48, zeros here; ``start_orientation_offset``), and ΔU = U - U_init. Only for a
        network that reads the patches (the controls predict ΔU)."""
        if predicts not in PREDICTS:
            raise ValueError(f"updater.model.predicts must be one of {PREDICTS}, got {predicts!r}")
        if predicts == "orientation" and not self.uses_images:
            raise ValueError("updater.model.predicts: orientation is for a network that reads the patches; "
                             "this one (pose_only) reads U_init alone and predicts ΔU")  # fmt: skip
        self.predicts = predicts
        if predicts == "orientation":
            self.orientation_offset = nn.Parameter(torch.zeros(OUTPUTS))

    @torch.no_grad()
    def start_orientation_offset(self, mean_orientation: torch.Tensor) -> None:
        """Start ``orientation_offset`` at ``mean_orientation`` (48: the training split's mean U_gt), so training
        starts from predicting the mean orientation, not 0. Nothing for a network that predicts ΔU."""
        if self.predicts == "orientation":
            self.orientation_offset.copy_(torch.as_tensor(mean_orientation, dtype=self.orientation_offset.dtype))

    def forward(self, images, initial_orientations, boxes=None) -> torch.Tensor:
        """(B, C, S, S) or None, (B, 48), (B, P, 4) or None -> (B, 48) ΔU; see the module docstring."""
        self._check(images, initial_orientations, boxes)
        output = self.predict(images, initial_orientations, boxes)
        if self.predicts == "orientation":  # in float32 even under bf16 autocast: ΔU is a small difference of two Us
            output = output.float() + self.orientation_offset.float() - initial_orientations.float()
        return output

    def predict(self, images, initial_orientations, boxes) -> torch.Tensor:
        raise NotImplementedError

    def set_conditioning_dropout(self, probability: float) -> None:
        """In training, set each frame's U_init and boxes to 0 with ``probability`` (0 <= p < 1), all together;
        a conditioned image network's only (see the module docstring)."""
        probability = float(probability)
        if not 0.0 <= probability < 1.0:
            raise ValueError(f"updater.model.conditioning_dropout must be in [0, 1), got {probability}")
        if probability > 0 and not (self.uses_images and self.uses_boxes):
            reads = "the patches alone" if self.uses_images else "no patches"
            raise ValueError(f"updater.model.conditioning_dropout is for a conditioned network that reads the "
                             f"patches; this one reads {reads}")  # fmt: skip
        self.conditioning_dropout = probability

    def _condition(self, features: torch.Tensor, initial_orientations, boxes) -> torch.Tensor:
        if not self.uses_boxes:
            return features
        condition = torch.cat(_pose_and_boxes(initial_orientations, boxes, features.dtype), dim=1)
        if self.training and self.conditioning_dropout > 0:  # the global generator, as nn.Dropout's
            kept = torch.rand(condition.shape[0], 1, device=condition.device) >= self.conditioning_dropout
            condition = condition * kept.to(condition.dtype)
        return torch.cat([features, condition], dim=1)

    def _conditioning_size(self) -> int:
        return OUTPUTS + 4 * self.num_patches


class ResNetUpdater(Updater):
    """``resnet``: (B, C, S, S) -> ResNet trunk -> fc 48 (the paper), or -> [features, U_init, boxes] -> MLP
    head of ``hidden`` features -> 48 (conditioned)."""

    def __init__(self, modality: str, depth: int, width: float, hidden: int, conditioned: bool):
        super().__init__(modality)
        self.uses_boxes = bool(conditioned)
        self.trunk = ResNetTrunk(depth, self.in_channels, width)
        features = self.trunk.num_features
        self.head = _head(features + self._conditioning_size(), hidden) if conditioned else nn.Linear(features, OUTPUTS)

    def predict(self, images, initial_orientations, boxes) -> torch.Tensor:
        return self.head(self._condition(self.trunk(images), initial_orientations, boxes))


def _conv_block(inputs: int, outputs: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True)]


class LimbEncoderUpdater(Updater):
    """``limb_encoder``: each of the P patches' c channels -> shared CNN (one stage per ``widths`` entry: a
    stride-2 conv block then ``convs_per_stage`` - 1 stride-1 ones; average pooling to a ``pooled_side``²
    grid, flattened) -> token ReLU(W f_p + e_p) of ``embedding`` features -> P tokens [+ U_init, boxes] -> MLP
    of ``hidden`` -> 48 (``head: joint``); or, ``head: per_limb`` with P = 16, each token p [+ U_init of limb p,
    box p] -> one MLP of ``hidden`` shared by the limbs -> limb p's 3 (P = 1: joint)."""

    def __init__(self, modality: str, widths, convs_per_stage: int, embedding: int, hidden: int, conditioned: bool,
                 pooled_side: int = 1, head: str = "joint"):  # fmt: skip
        super().__init__(modality)
        widths = [int(width) for width in widths]
        if not widths or min(widths) < 1 or min(convs_per_stage, pooled_side, embedding, hidden) < 1:
            raise ValueError(f"limb_encoder needs widths >= 1 (at least one), convs_per_stage, pooled_side, embedding "
                             f"and hidden >= 1, got {widths}, {convs_per_stage}, {pooled_side}, {embedding}, "
                             f"{hidden}")  # fmt: skip
        if head not in HEADS:
            raise ValueError(f"updater.model.limb_encoder.head must be one of {HEADS}, got {head!r}")
        if head == "per_limb" and self.num_patches not in (1, H36M.num_limbs):
            raise ValueError(f"updater.model.limb_encoder.head: per_limb needs one patch per limb "
                             f"({H36M.num_limbs}) or a single patch, {modality} has {self.num_patches}")  # fmt: skip
        self.per_limb = head == "per_limb" and self.num_patches == H36M.num_limbs
        self.uses_boxes = bool(conditioned)
        self.channels_per_patch = get_modality(modality).channels_per_patch
        layers, previous = [], self.channels_per_patch
        for width in widths:
            layers += _conv_block(previous, width, 2)
            for _ in range(convs_per_stage - 1):
                layers += _conv_block(width, width, 1)
            previous = width
        self.encoder = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(int(pooled_side)), nn.Flatten())
        self.token = nn.Linear(previous * int(pooled_side) ** 2, embedding)
        self.patch_embedding = nn.Parameter(torch.zeros(self.num_patches, embedding))
        if self.per_limb:  # one limb's token [+ its U_init (3) and box (4)] -> its 3 numbers
            self.head = _head(embedding + (3 + 4 if conditioned else 0), hidden, 3)
        else:
            self.head = _head(self.num_patches * embedding + (self._conditioning_size() if conditioned else 0), hidden)

    def predict(self, images, initial_orientations, boxes) -> torch.Tensor:
        batch, size = images.shape[0], images.shape[-1]
        per_patch = images.reshape(batch * self.num_patches, self.channels_per_patch, size, size)
        features = self.encoder(per_patch).view(batch, self.num_patches, -1)
        tokens = torch.relu(self.token(features) + self.patch_embedding)
        if not self.per_limb:
            return self.head(self._condition(tokens.flatten(1), initial_orientations, boxes))
        if self.uses_boxes:  # each limb's own U_init and box beside its token, dropped together per frame
            condition = self._condition(tokens.new_zeros(batch, 0), initial_orientations, boxes)
            pose, limb_boxes = condition[:, :OUTPUTS], condition[:, OUTPUTS:]
            tokens = torch.cat([tokens, pose.view(batch, -1, 3), limb_boxes.view(batch, -1, 4)], dim=2)
        return self.head(tokens.flatten(0, 1)).view(batch, OUTPUTS)


class PoseOnlyUpdater(Updater):
    """``pose_only``: (B, 48) U_init -> residual MLP -> (B, 48), or conditioned (``modality`` needed for P)
    (B, 48 + 4P) concat(U_init, boxes flattened) -> residual MLP -> (B, 48). Images are never read; the boxes
    only when conditioned."""

    uses_images = False

    def __init__(self, width: int, blocks: int, dropout: float, modality: str | None = None, conditioned=False):
        if conditioned and modality is None:
            raise ValueError("the conditioned pose_only updater reads the limb boxes: it needs the modality of its "
                             "patch store (how many boxes per frame)")  # fmt: skip
        super().__init__(modality if conditioned else None)
        self.uses_boxes = bool(conditioned)
        inputs = OUTPUTS + (4 * self.num_patches if conditioned else 0)
        self.mlp = LiftingMLP(inputs, OUTPUTS, width, blocks, dropout)

    def predict(self, images, initial_orientations, boxes) -> torch.Tensor:
        if not self.uses_boxes:
            return self.mlp(initial_orientations)
        return self.mlp(torch.cat(_pose_and_boxes(initial_orientations, boxes, initial_orientations.dtype), dim=1))


def _block(model_settings: dict, architecture: str) -> dict:
    block = model_settings.get(architecture)
    if not isinstance(block, dict):
        raise ValueError(f"updater.model: architecture {architecture!r} needs its settings block "
                         f"updater.model.{architecture}")  # fmt: skip
    required, optional = set(SETTINGS[architecture]), OPTIONAL_SETTINGS.get(architecture, {})
    if not required <= set(block) <= required | set(optional):
        raise ValueError(f"updater.model.{architecture}: missing {sorted(required - set(block))}, "
                         f"unknown {sorted(set(block) - required - set(optional))}")  # fmt: skip
    return {**optional, **block}


def build_network(model_settings: dict, modality: str, *, load_weights: bool = True) -> Updater:
    """The network of ``model_settings`` (``updater.model``: ``architecture``, ``condition_on_initial_pose``,
    ``predicts`` (absent: ``residual``, as in model files written before it), ``conditioning_dropout`` (absent:
    0) and the architecture's block; the other architectures' blocks are not read) for input ``modality``
    (``pose_only`` reads it only conditioned, for the number of boxes; None: no patch store).

    load_weights: read ``resnet.pretrained`` (a local torchvision state dict, or null); False when the weights
    come from a trained model file anyway.
    """
    architecture = model_settings.get("architecture")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"updater.model.architecture must be one of {ARCHITECTURES}, got {architecture!r}")
    block = _block(model_settings, architecture)
    conditioned = model_settings.get("condition_on_initial_pose")
    if not isinstance(conditioned, bool):
        raise ValueError(f"updater.model.condition_on_initial_pose must be true or false, got {conditioned!r}")
    if architecture == "pose_only":
        network = PoseOnlyUpdater(block["width"], block["blocks"], block["dropout"], modality, conditioned)
    elif architecture == "resnet":
        network = ResNetUpdater(modality, block["depth"], block["width"], block["hidden"], conditioned)
        if load_weights and block["pretrained"] is not None:
            load_pretrained(network.trunk, block["pretrained"])
    else:
        network = LimbEncoderUpdater(modality, block["widths"], block["convs_per_stage"], block["embedding"],
                                     block["hidden"], conditioned, block["pooled_side"], block["head"])  # fmt: skip
    network.set_predicts(model_settings.get("predicts", "residual"))
    network.set_conditioning_dropout(model_settings.get("conditioning_dropout", 0.0))
    return network


def _example_inputs(network: Updater, input_size: int, batch: int):
    parameter = next(network.parameters())
    images = None
    if network.uses_images:
        images = torch.zeros(batch, network.in_channels, input_size, input_size, device=parameter.device)
    boxes = torch.zeros(batch, network.num_patches, 4, device=parameter.device) if network.uses_boxes else None
    return images, torch.zeros(batch, OUTPUTS, device=parameter.device), boxes


def complexity(network: Updater, input_size: int) -> dict[str, int]:
    """``parameters`` (learnable), and ``forward_flops`` / ``training_flops`` (forward + backward) per sample at
    ``input_size`` px, counted by ``torch.utils.flop_counter.FlopCounterMode`` (a multiply-add is 2 FLOPs;
    convolutions and matrix products only) on a copy of ``network`` (it is left untouched)."""
    batch, probe = 2, copy.deepcopy(network)  # batch norm needs two samples in training mode
    inputs = _example_inputs(probe, input_size, batch)
    probe.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        probe(*inputs)
    forward = counter.get_total_flops()
    probe.train()
    with FlopCounterMode(display=False) as counter:
        probe(*inputs).square().sum().backward()
    return {
        "parameters": sum(p.numel() for p in network.parameters() if p.requires_grad),
        "forward_flops": forward // batch,
        "training_flops": counter.get_total_flops() // batch,
    }
