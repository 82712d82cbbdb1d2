"""The segmentation stage: body-part segmentation, colour-encoded as the paper's segmentation channel S (by the
keypoints2d hourglass's part head, or an NBF-style network of its own)."""
