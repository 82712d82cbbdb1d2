"""The updater (paper §3.2, §4.1): from a frame's patches and its initial pose, the residual limb orientation
ΔU (16 limbs x xyz = 48 numbers, ``patchpose.orientation``) that refines the initial pose (Eq. 1-2).

- ``modalities``: the patch inputs (``rgb_seg``, ``rgb``, ``seg``, ``uncropped_rgb``) as one frozen table:
  which patch store, which channels; torch-free, so the workflow's wildcard constraints import it.
- ``inputs``: a batch of cached uint8 patches -> the network's float input on the device (channel selection,
  normalisation, the zoom to the input size); limb boxes -> the network's unitless box inputs.
- ``network``: the networks (``resnet``, ``limb_encoder``, ``pose_only``), one forward signature for all.
- ``resnet``: the ResNet trunk built from torchvision's blocks and its ImageNet weights from a local file.
- ``loader``: patch batches streamed from a store in a seeded order, optionally by loader processes.
"""
