"""The ``integral3d`` baseline: RGB crop -> volumetric heatmaps -> 3D soft-argmax."""
