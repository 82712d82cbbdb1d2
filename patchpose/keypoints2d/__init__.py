"""Stage 2a: 2D keypoints by a stacked hourglass with integral (soft-argmax) regression."""
