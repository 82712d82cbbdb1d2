"""Stage 2b: NBF-style body-part segmentation, colour-encoded as the paper's segmentation channel S."""
