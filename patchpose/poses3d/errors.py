"""The one exception every 3D prediction file problem raises: it names the file and the problem."""

from __future__ import annotations

import os

__all__ = ["PredictionFileError", "preview"]


class PredictionFileError(ValueError):
    """A 3D prediction file that cannot be used; the message is ``"<file>: <problem>"``.

    ``path`` holds the file (as given), ``problem`` the text after the colon.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def preview(items, limit: int = 5) -> str:
    """``"a, b, c, ... (+7 more)"``: the first ``limit`` items of a sequence for an error message."""
    items = [str(item) for item in items]
    shown = ", ".join(items[:limit])
    return shown + (f", ... (+{len(items) - limit} more)" if len(items) > limit else "")
