"""3D pose predictions: the file format every baseline's predictions use, its readers and writers,
and validation against a dataset. Spec: docs/predictions_format.md. Evaluation: ``patchpose.evaluation``.

Producers call ``write_predictions``; consumers call ``read_predictions`` then ``canonicalise`` (mm, ``H36M``
order, root-relative) and ``align_to_store`` (rows of a dataset store). Every problem raises
``PredictionFileError``, whose message starts with the file.
"""

from patchpose.poses3d.errors import PredictionFileError
from patchpose.poses3d.files import read_predictions, write_predictions
from patchpose.poses3d.format import FORMAT_VERSION, Predictions
from patchpose.poses3d.importer import import_external_split
from patchpose.poses3d.info import read_baseline_info, write_baseline_info
from patchpose.poses3d.joints import NAMED_ORDERS, VIDEOPOSE3D_JOINT_NAMES
from patchpose.poses3d.loading import load_for_store
from patchpose.poses3d.matching import align_to_store
from patchpose.poses3d.normalise import canonicalise

__all__ = [
    "FORMAT_VERSION",
    "NAMED_ORDERS",
    "VIDEOPOSE3D_JOINT_NAMES",
    "PredictionFileError",
    "Predictions",
    "align_to_store",
    "canonicalise",
    "import_external_split",
    "load_for_store",
    "read_baseline_info",
    "read_predictions",
    "write_baseline_info",
    "write_predictions",
]
