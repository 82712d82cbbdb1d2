"""The in-pipeline baselines: initial 3D poses the pipeline trains itself (paper §3.1: any method's
output can be refined), one subpackage per kind, each with ``stage.train_fold`` / ``stage.predict_split``.

* ``lifting``: predicted 2D joints -> 3D by a residual MLP (Martinez et al. 2017).
* ``integral3d``: the RGB crop -> 3D by volumetric heatmaps and soft-argmax (Sun et al. 2018, integral
  regression; Pavlakos et al. 2017, volumetric heatmaps).

Shared: ``common`` (folds, validation, early stopping, prediction files), ``geometry`` (the ray frame,
3D augmentation), ``curves`` (learning-curve plot).
"""
