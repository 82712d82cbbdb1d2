"""The evaluation every 3D prediction file goes through, baseline or refined (numpy only, no torch).

* ``frame_errors``: per-frame errors of a prediction file against a dataset store (MPJPE, PA-MPJPE and the
  17 joint errors per frame, with the frame's subject, action, subaction, camera and index), written to and
  read back from ``*_frame_errors.npz``. Everything below is computed from this table.
* ``tables``: the per-action table (``mpjpe_per_action.csv``) and ``evaluate_prediction_file``, the call the
  ``evaluate_baseline`` rule makes.
* ``groups``: which frames belong together: the views of one pose, and the clusters the bootstrap resamples.
* ``bootstrap``: paired, cluster-resampled, seeded bootstrap intervals of an improvement (initial - refined).
* ``rarity``: how far each test pose is from the training poses (viewpoint removed), and errors by decile.
* ``claims``: "refined lower on average, interval excludes 0" as a dict for ``claims.json``.

Spec of the files: docs/predictions_format.md (section "Evaluation"). The package ``__init__`` imports
nothing, so a rule's code digest (``patchpose.provenance``) covers only the modules its script uses.
"""
