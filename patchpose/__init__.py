"""patchpose: patch-based 3D human pose refinement (Wan, Qiu, Yuille, CVPRW 2019)."""

__version__ = "0.1.0"
