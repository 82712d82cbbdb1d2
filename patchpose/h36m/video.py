"""Streamed decoding of one Human3.6M video with the frame-count rules.

Frame ``i`` of a video shows pose ``i`` of the sequence's pose file. Rules (``iter_video_frames``):

* the video may have MORE frames than poses (a few, in the release): the extra frames are dropped and
  counted;
* a video with FEWER frames than poses is damaged: ``H36MVideoError`` naming the file;
* a file OpenCV cannot open, or whose frames have another size than the camera's resolution, is an error
  naming the file.

Only the wanted frames are decoded (``grab`` skips the rest, ``retrieve`` decodes); one frame is in memory at
a time, so memory does not grow with the video's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

__all__ = ["H36MVideoError", "VideoStats", "iter_video_frames"]


class H36MVideoError(ValueError):
    """A video that is missing, unreadable, too short or of the wrong size; the message names the file."""


class VideoStats:
    """Filled while ``iter_video_frames`` runs: frames decoded in the video and extra frames dropped."""

    def __init__(self) -> None:
        self.video_frames = 0
        self.extra_frames = 0


def iter_video_frames(
    path: str | Path, num_poses: int, wanted: np.ndarray, size: tuple[int, int], stats: VideoStats | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, rgb)`` for each index in ``wanted`` (sorted, each < ``num_poses``).

    rgb: (H, W, 3) uint8 RGB with ``(W, H) = size``. After the last wanted frame the rest of the video is
    grabbed (not decoded) to count it; the generator raises ``H36MVideoError`` at the end if the video
    holds fewer than ``num_poses`` frames. Consume it fully.
    """
    path = Path(path)
    stats = stats if stats is not None else VideoStats()
    wanted = np.asarray(wanted, dtype=np.int64)
    if wanted.size and (np.any(np.diff(wanted) <= 0) or wanted[0] < 0 or wanted[-1] >= num_poses):
        raise ValueError(f"{path}: wanted frames must be sorted, unique and in [0, {num_poses})")
    if not path.is_file():
        raise H36MVideoError(f"{path}: video not found")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise H36MVideoError(f"{path}: OpenCV cannot open the video (corrupt or unsupported)")
        position, next_wanted = 0, 0
        while True:
            if not capture.grab():
                break
            if next_wanted < wanted.size and position == wanted[next_wanted]:
                ok, frame = capture.retrieve()
                if not ok or frame is None:
                    raise H36MVideoError(f"{path}: frame {position} cannot be decoded (corrupt video)")
                if (frame.shape[1], frame.shape[0]) != tuple(size):
                    raise H36MVideoError(
                        f"{path}: frame {position} is {frame.shape[1]}x{frame.shape[0]} px, the camera's "
                        f"resolution is {size[0]}x{size[1]}"
                    )
                next_wanted += 1
                yield position, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            position += 1
        stats.video_frames = position
        stats.extra_frames = max(0, position - num_poses)
        if position < num_poses:
            raise H36MVideoError(
                f"{path}: the video has {position} frames but the pose file {num_poses} (truncated or corrupt video)"
            )
    finally:
        capture.release()
