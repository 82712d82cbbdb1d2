"""The patches stage: the paper's limb patches (§3.2, §4.1) cut from RGB and segmentation, cached on disk.

- ``geometry``: where each patch is cut (limb boxes, square padding, whole frame), as affines.
- ``sampler``: batched bilinear cutting of both modalities in one pass.
- ``store``: the patch cache (zarr v3, one sample per chunk), written atomically, read validated.
- ``stage``: a split's store from the dataset, segmentation and 2D joint inputs.
- ``contact_sheet``: a picture of what a store holds.
"""
