"""The keypoints2d stage: 2D keypoints by a stacked hourglass with integral (soft-argmax) regression (and, by
default, a part-segmentation head on the same trunk)."""
