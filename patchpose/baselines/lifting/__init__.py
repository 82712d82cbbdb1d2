"""The ``lifting`` baseline: a residual MLP lifting predicted 2D joints to a root-relative 3D pose."""
