"""Human3.6M: extraction from the official release (and VideoPose3D's preprocessed 3D poses) into the
common dataset format. See docs/h36m.md."""
